"""A real HTTP receiver on loopback for the webhook tests (http.server in a thread). It
answers each POST as `script` says (a list of behaviours used in turn, the last one
repeated): a status code, a pause before answering, a redirect."""

import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    status: int = 204
    delay: float = 0.0
    location: str = ""
    body: bytes = b""


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    port: int
    script: list = field(default_factory=lambda: [Answer()])
    received: list = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def next_answer(self) -> Answer:
        with self.lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def setup(self):
            with receiver.lock:
                receiver.connections += 1
            super().setup()

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            answer = receiver.next_answer()
            with receiver.lock:
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if answer.delay:
                threading.Event().wait(answer.delay)
            self.send_response(answer.status)
            if answer.location:
                self.send_header("Location", answer.location)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args):  # quiet
            pass

    return Handler


@contextmanager
def receiving(*answers: Answer, port: int | None = None):
    """A `Receiver` listening on loopback (`port`, or a free one) until the block ends."""
    receiver = Receiver(port=port or free_port(), script=list(answers) or [Answer()])
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
