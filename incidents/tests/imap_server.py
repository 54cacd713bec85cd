"""A real IMAP server for the reply-by-mail tests: Debian's Dovecot, run in the foreground
with a configuration of its own under a temporary folder, on a free loopback port, with a
passwd-file user and a throwaway maildir. Nothing of the machine's own Dovecot (if any) is
used or touched."""

import getpass
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER, PASSWORD = "irms", "inbox-secret-42"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = irms-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
# Loopback only, for a test: plaintext passwords are fine here and nowhere else.
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dovecot:
    def __init__(self):
        # Not under pytest's temporary folders: they are private to the test's user (0700)
        # and Dovecot's own unprivileged processes must reach the passwd file and maildir.
        self.root = root = Path(tempfile.mkdtemp(prefix="irms-dovecot-"))
        root.chmod(0o755)
        self.port = free_port()
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        assert os.path.exists(binary), "Dovecot is needed: apt-get install dovecot-imapd (.ci/run does)"
        if os.geteuid() == 0:
            # As root, Dovecot runs mail processes as its own unprivileged user.
            entry = pwd.getpwnam("dovecot")
            uid, gid = entry.pw_uid, entry.pw_gid
            users = ""
        else:
            uid, gid = os.getuid(), os.getgid()
            me = getpass.getuser()
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        for folder in ("run", "state", "mail", "home"):
            (root / folder).mkdir(parents=True)
        for folder in ("mail", "home"):
            os.chown(root / folder, uid, gid)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        config = root / "dovecot.conf"
        config.write_text(CONFIG.format(root=root, port=self.port, uid=uid, gid=gid, users=users))
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                client = self.client()
            except OSError:
                time.sleep(0.1)
                continue
            client.logout()
            return
        raise AssertionError(f"Dovecot did not answer on port {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    @property
    def url(self) -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        client.select("INBOX")
        return client

    def deliver(self, *raw_messages: bytes) -> None:
        client = self.client()
        try:
            for raw in raw_messages:
                status, data = client.append("INBOX", None, None, raw)
                assert status == "OK", data
        finally:
            client.logout()

    def flags(self) -> list[set[str]]:
        """Each message's flags, in mailbox order."""
        client = self.client()
        try:
            status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            assert status == "OK", data
            found = []
            for line in data:
                if not line:
                    continue
                text = line.decode()
                inside = text[text.index("FLAGS (") + 7 :].split(")")[0]
                found.append(set(inside.split()))
            return found
        finally:
            client.logout()

    def empty(self) -> None:
        client = self.client()
        try:
            status, data = client.uid("SEARCH", "ALL")
            if data[0]:
                client.uid("STORE", b",".join(data[0].split()), "+FLAGS", "(\\Deleted)")
                client.expunge()
        finally:
            client.logout()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
