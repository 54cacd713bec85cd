"""irms_site.settings read from the environment, each case in a fresh Python process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The settings also read an optional .env beside manage.py; these tests must not depend on
# whether a developer has one, so the child process skips it and sees only the environment given.
START = (
    "import environ; environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)\n"
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'irms_site.settings'; django.setup()\n"
)
SHOW = "from django.conf import settings; import json; print(json.dumps({}))\n"
# Only the settings module, no django.setup(): for reading a configuration whose database
# driver is a stand-in (setup would import the real backend).
READ_ONLY = (
    "import environ; environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)\n"
    "import importlib, json; settings = importlib.import_module('irms_site.settings')\n"
)
KEY = "a-test-secret-key-that-is-long-enough-0123456789abcdefghijklmnop"


# The MySQL driver as the child process sees it, whatever this machine has installed:
# present (a bare module is all the settings module imports; nothing connects) or missing.
DRIVER_PRESENT = "import sys, types; sys.modules['MySQLdb'] = types.ModuleType('MySQLdb')\n"
DRIVER_MISSING = "import sys; sys.modules['MySQLdb'] = None\n"


def start_django(show="{}", driver="", setup=True, **variables):
    """Run django.setup() with irms_site.settings in a child process; print `show` as JSON."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SECRET_KEY", "DATABASE_URL", "EMAIL_URL", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    env["DEBUG"] = "false"
    env.update(variables)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            driver + (START + SHOW if setup else READ_ONLY + "print(json.dumps({}))\n").format(show),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("variables", [pytest.param({}, id="unset"), pytest.param({"SECRET_KEY": ""}, id="empty")])
def test_refuses_to_start_without_secret_key_when_debug_is_off(variables):
    # when
    process = start_django(**variables)

    # then
    assert process.returncode != 0
    assert process.stdout == ""
    lines = process.stderr.splitlines()
    assert len(lines) == 1
    assert "SECRET_KEY" in lines[0]
    assert "Traceback" not in process.stderr


def test_starts_without_secret_key_when_debug_is_on():
    # when
    process = start_django('{"debug": settings.DEBUG, "key_set": bool(settings.SECRET_KEY)}', DEBUG="true")

    # then
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {"debug": True, "key_set": True}


def test_starts_with_secret_key_when_debug_is_off():
    # when
    process = start_django('{"debug": settings.DEBUG, "key": settings.SECRET_KEY}', SECRET_KEY=KEY)

    # then
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {"debug": False, "key": KEY}


def test_mysql_database_url_uses_utf8mb4_strict_mode_and_health_checks():
    # when
    process = start_django(
        '{"db": settings.DATABASES["default"]}',
        driver=DRIVER_PRESENT,
        setup=False,
        SECRET_KEY=KEY,
        DATABASE_URL="mysql://u:p@127.0.0.1:3306/x",
    )

    # then
    assert process.returncode == 0, process.stderr
    db = json.loads(process.stdout)["db"]
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("x", "u", "p", "127.0.0.1", 3306)
    assert db["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in db["OPTIONS"]["init_command"]
    assert db["CONN_HEALTH_CHECKS"] is True


def test_mysql_without_its_driver_stops_with_a_one_line_hint():
    # when
    process = start_django(driver=DRIVER_MISSING, SECRET_KEY=KEY, DATABASE_URL="mysql://u:p@127.0.0.1:3306/x")

    # then
    assert process.returncode != 0
    lines = process.stderr.splitlines()
    assert len(lines) == 1
    assert "mysqlclient" in lines[0] and "libmariadb-dev" in lines[0]
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(
            {"EMAIL_URL": "smtp+tls://u:p@mail.example:587"},
            {
                "backend": "django.core.mail.backends.smtp.EmailBackend",
                "host": "mail.example",
                "port": 587,
                "user": "u",
                "tls": True,
            },
            id="smtp-tls",
        ),
        pytest.param(
            {},
            {"backend": "django.core.mail.backends.console.EmailBackend", "tls": False},
            id="default-console",
        ),
    ],
)
def test_email_url_selects_the_mail_backend(variables, expected):
    # when
    process = start_django(
        '{"backend": settings.EMAIL_BACKEND, "host": settings.EMAIL_HOST, "port": settings.EMAIL_PORT,'
        ' "user": settings.EMAIL_HOST_USER, "tls": settings.EMAIL_USE_TLS}',
        SECRET_KEY=KEY,
        **variables,
    )

    # then
    assert process.returncode == 0, process.stderr
    shown = json.loads(process.stdout)
    assert {name: shown[name] for name in expected} == expected


def test_attachments_live_on_the_file_system_by_default():
    # when
    process = start_django('settings.STORAGES["attachments"]', SECRET_KEY=KEY)

    # then
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_attachment_storage_url_selects_private_s3_storage():
    # when
    process = start_django(
        'settings.STORAGES["attachments"]',
        SECRET_KEY=KEY,
        ATTACHMENT_STORAGE_URL="s3://evidence/irms/prod?endpoint_url=https://s3.example.org&region_name=eu-west-1",
    )

    # then
    assert process.returncode == 0, process.stderr
    storage = json.loads(process.stdout)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"] == {
        "bucket_name": "evidence",
        "location": "irms/prod",
        "endpoint_url": "https://s3.example.org",
        "region_name": "eu-west-1",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }


def test_aws_variables_select_s3_storage_too():
    # when
    process = start_django(
        'settings.STORAGES["attachments"]["OPTIONS"]["bucket_name"]',
        SECRET_KEY=KEY,
        AWS_STORAGE_BUCKET_NAME="evidence",
    )

    # then
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == "evidence"


def test_a_malformed_attachment_storage_url_stops_with_one_line():
    # when
    process = start_django(SECRET_KEY=KEY, ATTACHMENT_STORAGE_URL="ftp://nowhere")

    # then
    assert process.returncode != 0
    assert "ATTACHMENT_STORAGE_URL" in process.stderr
    assert "Traceback" not in process.stderr


def test_reply_by_mail_is_off_by_default_and_read_from_the_environment():
    show = "[settings.REPLY_TO_ADDRESS, settings.REPLY_TO_MAX_AGE_DAYS, settings.EMAIL_INBOX_URL, settings.EMAIL_INBOX_POLL_SECONDS]"
    assert json.loads(start_django(show, SECRET_KEY=KEY).stdout) == ["", 30, "", 60]
    process = start_django(
        show,
        SECRET_KEY=KEY,
        REPLY_TO_ADDRESS="irms+{token}@example.org",
        REPLY_TO_MAX_AGE_DAYS="7",
        EMAIL_INBOX_URL="imaps://u:p@mail.example.org/INBOX",
        EMAIL_INBOX_POLL_SECONDS="15",
    )
    assert json.loads(process.stdout) == ["irms+{token}@example.org", 7, "imaps://u:p@mail.example.org/INBOX", 15]


@pytest.mark.parametrize("address", ["irms@example.org", "{token}{token}@example.org", "irms@example.org+{token}"])
def test_a_reply_address_without_one_token_in_its_local_part_stops_with_one_line(address):
    process = start_django(SECRET_KEY=KEY, REPLY_TO_ADDRESS=address)
    assert process.returncode != 0
    assert "REPLY_TO_ADDRESS" in process.stderr
    assert "Traceback" not in process.stderr


def test_a_redis_cache_url_keeps_its_key_prefix():
    # when several deployments share one Redis, each under its own prefix
    process = start_django(
        '{"cache": settings.CACHES["default"]}', SECRET_KEY=KEY, CACHE_URL="redis://127.0.0.1:6379/7?key_prefix=irms"
    )

    # then Django sees the prefix under its own name (django-environ lower-cases it)
    assert process.returncode == 0, process.stderr
    cache = json.loads(process.stdout)["cache"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/7"
    assert cache["KEY_PREFIX"] == "irms"
    assert "key_prefix" not in cache


def test_a_malformed_cache_url_stops_with_one_line():
    process = start_django("{}", SECRET_KEY=KEY, CACHE_URL="nosuch://x")
    assert process.returncode == 2
    assert process.stderr.startswith("IRMS configuration error: CACHE_URL is not a valid cache URL")
