"""IRMS settings: one module, every value from the environment (or an optional .env).

`.env.example` lists each variable with a comment and the README has the same table.
Production needs only environment variables; nothing here is edited per deployment.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# An optional .env beside manage.py; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# `EMAIL_URL=console://` reads better than django-environ's `consolemail://`.
environ.Env.EMAIL_SCHEMES.setdefault("console", "django.core.mail.backends.console.EmailBackend")


def _stop(message: str) -> None:
    """Refuse to start with one readable line instead of a traceback."""
    sys.stderr.write(f"IRMS configuration error: {message}\n")
    raise SystemExit(2)


# --- Core -----------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        _stop(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=true for local development."
        )
    # Development only: never used when DEBUG is off.
    SECRET_KEY = "django-insecure-development-key-only-used-with-DEBUG-on"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute links in e-mail are built from this, never from the request's Host header.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "irms_site.apps.IRMSAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "csp",
    "notifications",
    "accounts",
    "incidents",
]

MIDDLEWARE = [
    "irms_site.security.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Above the guard, so its 413/415 answers carry the header too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "irms_site.security.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "irms_site.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last, so it sees the sign-in views' results (django-axes' documented position).
    "axes.middleware.AxesMiddleware",
    # After authentication: a user's writes pin their next reads to the primary.
    "incidents.replica.ReadYourWritesMiddleware",
]

ROOT_URLCONF = "irms_site.urls"
WSGI_APPLICATION = "irms_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "incidents.context_processors.roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# An empty value (a half-filled .env) means the default, like an absent one.
try:
    DATABASES = {
        "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    }
    _email = env.email_url_config(env.str("EMAIL_URL", default="") or "console://")
except Exception as error:  # django-environ raises a variety of errors for malformed URLs
    _stop(f"DATABASE_URL or EMAIL_URL is not a valid URL ({error}).")
_db = DATABASES["default"]
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.mysql":
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        _stop(
            "DATABASE_URL names MySQL but mysqlclient is not installed: "
            "apt-get install pkg-config libmariadb-dev && pip install -r requirements-mysql.txt"
        )
    _db.setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # Strict mode: too-long or invalid values are errors, never silently truncated.
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'",
            "isolation_level": "read committed",
            # Fail fast when the database is down: a 503 in seconds, not a hung worker.
            "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=3),
        }
    )
    # A database that stops answering must not hold a worker until gunicorn kills it: reads
    # and writes give up after this many seconds (the client library may retry twice), and
    # the request gets the 503 page. 0 turns it off, e.g. for a long migration.
    _io_timeout = env.int("DATABASE_IO_TIMEOUT", default=5)
    if _io_timeout:
        _db["OPTIONS"].update(read_timeout=_io_timeout, write_timeout=_io_timeout)
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # The web server and the task worker write concurrently: WAL lets readers
            # proceed, IMMEDIATE avoids lock-upgrade deadlocks, timeout waits instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

# --- Read replica (optional) ----------------------------------------------------------
# A MariaDB/MySQL replica of DATABASE_URL: list pages and the dashboard's counts read from
# it (incidents/replica.py), except for a user's requests in the REPLICA_STICKY_SECONDS
# after they changed something (they see their own writes) and anything in a transaction.
_replica_url = env.str("DATABASE_REPLICA_URL", default="")
if _replica_url:
    try:
        _replica = env.db_url_config(_replica_url)
    except Exception as error:
        _stop(f"DATABASE_REPLICA_URL is not a valid URL ({error}).")
    if _replica["ENGINE"] != _db["ENGINE"]:
        _stop("DATABASE_REPLICA_URL must name the same kind of database as DATABASE_URL.")
    # The primary's options (charset, strict mode, timeouts) apply to the replica too.
    DATABASES["replica"] = {
        **_db,
        **{key: value for key, value in _replica.items() if key not in ("OPTIONS", "TEST")},
        "OPTIONS": {**_db.get("OPTIONS", {}), **_replica.get("OPTIONS", {})},
        # Tests see one database: the replica is the primary under another name.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["incidents.replica.ReplicaRouter"]
REPLICA_STICKY_SECONDS = env.int("REPLICA_STICKY_SECONDS", default=10)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttling state shared by every worker process and machine) -------------
# The database cache needs no extra service (`manage.py createcachetable`, run by
# `make run` and by the test database set-up); redis://127.0.0.1:6379/0 works too.
# Every app server and worker must share it (throttles count in it): several servers on a
# local-memory cache each count alone, which the `irms.W001` system check warns about.
try:
    _cache = env.cache_url_config(env.str("CACHE_URL", default="") or "dbcache://irms_cache")
except Exception as error:
    _stop(f"CACHE_URL is not a valid cache URL ({error}).")
# django-environ lower-cases Django's own keys for Redis (`?key_prefix=irms` would be
# ignored): give them back their names, so servers sharing one Redis can keep apart.
for _key in ("key_prefix", "timeout", "version", "key_function"):
    if _key in _cache:
        _cache[_key.upper()] = _cache.pop(_key)
CACHES = {"default": _cache}

# --- Authentication -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses sign-in while a username+address is locked out (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.UsernameOrEmailBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"
# A reset link is valid for this many seconds (and for one use only).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 3)
# A link confirming a new e-mail address is valid for this many seconds (and one use).
EMAIL_CHANGE_TIMEOUT = env.int("EMAIL_CHANGE_TIMEOUT", default=60 * 60 * 24)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Brute-force protection (django-axes; state in the database, shared by all workers) --
# Failures per account (however its login was spelt) and address; then per address alone,
# across accounts (password spraying). A success clears only that account's failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_IP_FAILURE_LIMIT = env.int("AXES_IP_FAILURE_LIMIT", default=50)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_HANDLER = "accounts.lockout.AccountAndAddressHandler"
# The account a login names, not what was typed (cut to its 255-character column).
AXES_USERNAME_CALLABLE = "accounts.lockout.axes_username"
# Behind a reverse proxy, the client address comes from X-Forwarded-For (set NUM_PROXIES).
AXES_IPWARE_PROXY_COUNT = env.int("NUM_PROXIES", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if env.int("NUM_PROXIES", default=0) else ("REMOTE_ADDR",)
)

# --- Request limits ---------------------------------------------------------------------
# No IRMS request needs more: the longest field is 20,000 characters.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# --- Content-Security-Policy (django-csp): no inline script, no script from elsewhere ---
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# DEBUG (and the tests) serve straight from static/ with no collectstatic step.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed names in production so far-future caching is safe;
        # DEBUG serves the files as they are, with no collectstatic step.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}

# --- E-mail ---------------------------------------------------------------------------
vars().update(_email)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="IRMS <irms@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)

# --- Reply by e-mail (incidents/replies.py, `manage.py mail_ingest`) ---------------------
# Off when empty. `{token}` becomes a signed token for one (incident, recipient) pair, e.g.
# `irms+{token}@example.org`: the MTA must deliver every such address to the ingester.
REPLY_TO_ADDRESS = env.str("REPLY_TO_ADDRESS", default="")
if REPLY_TO_ADDRESS and (REPLY_TO_ADDRESS.count("{token}") != 1 or "@" not in REPLY_TO_ADDRESS.partition("{token}")[2]):
    _stop("REPLY_TO_ADDRESS must contain {token} once, in the local part, e.g. irms+{token}@example.org.")
# Days a reply address keeps working after the mail that carried it was queued.
REPLY_TO_MAX_AGE_DAYS = env.int("REPLY_TO_MAX_AGE_DAYS", default=30)
# The mailbox `mail_ingest --imap` polls (imaps://user:pw@host[:port]/INBOX; imap:// only on
# a trusted network), and how often.
EMAIL_INBOX_URL = env.str("EMAIL_INBOX_URL", default="")
EMAIL_INBOX_POLL_SECONDS = env.int("EMAIL_INBOX_POLL_SECONDS", default=60)

# --- Background tasks (e-mail) ----------------------------------------------------------
# Tasks are rows in the database, written in the same transaction as the change they
# report; `python manage.py db_worker` runs them. No broker to run.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# What every `mail_worker` runs beside its tasks, every --recover-every seconds (30): take
# back messages dead workers left behind, and escalate SLA clocks whose task was lost.
WORKER_SWEEPS = ["notifications.outbox.requeue_orphans", "incidents.services.escalate_overdue"]

# --- Outbound webhooks (notifications/webhooks.py, incidents/webhooks.py) ---------------
# Seconds one delivery attempt may take, connect to last byte (a delivery is retried later).
WEBHOOK_TIMEOUT = env.int("WEBHOOK_TIMEOUT", default=10)
# Plain http:// destinations (a receiver on a trusted network); https only by default.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Destinations on loopback, private, link-local or multicast addresses (SSRF guard off).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# Who resolves a delivery's destination key to its secrets and hears of each attempt's
# result: the incidents app's endpoints (notifications imports no domain app).
WEBHOOK_DESTINATIONS = "incidents.webhooks.destinations"

# --- SLA clocks (incidents/sla.py) ------------------------------------------------------
# The working week of policies that count business hours only, in TIME_ZONE:
# "mon-fri 09:00-17:00", groups with ";", several windows per group with spaces.
SLA_BUSINESS_HOURS = env.str("SLA_BUSINESS_HOURS", default="mon-fri 09:00-17:00")
# A clock is "at risk" (shown, not mailed) once this share of its window is left.
SLA_AT_RISK_FRACTION = env.float("SLA_AT_RISK_FRACTION", default=0.2)
if not 0 <= SLA_AT_RISK_FRACTION < 1:
    _stop("SLA_AT_RISK_FRACTION must be at least 0 and less than 1 (0.2 = the last fifth of the window).")

# --- HTTPS and cookies (turned on by environment in production) -----------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "irms_site.views.csrf_failure"

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated request then gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.PasswordBoundTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON, written by orjson (the list's hot path: bench/README.md).
    "DEFAULT_RENDERER_CLASSES": ["incidents.api.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["incidents.api.parsers.SafeJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["incidents.api.filters.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "incidents.api.pagination.LinkHeaderCursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "incidents.api.errors.exception_handler",
    # DRF's scopes and rates, counted with a counter instead of a request history.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.AnonRateThrottle",
        "accounts.throttling.UserRateThrottle",
        "accounts.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "auth": env.str("API_THROTTLE_AUTH", default="10/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IRMS API",
    "DESCRIPTION": (
        "Incident Response Management System. Authenticate with `Authorization: Token <key>` "
        "(from POST /api/auth/token) or a browser session. Lists are bare JSON arrays paginated "
        "by RFC 8288 `Link` headers."
    ),
    "VERSION": "1.0.0",
    # Relative: the API is served by whichever IRMS serves this schema.
    "SERVERS": [{"url": "/", "description": "This IRMS server"}],
    "CONTACT": {"name": "IRMS operators", "url": f"{SITE_URL}/"},
    # IRMS ships no open-source licence: each installation's operators set the terms.
    "LICENSE": {"name": "Proprietary", "url": f"{SITE_URL}/"},
    # Every tag an operation uses, declared with what it groups (the schema lint test fails
    # on an undeclared one: irms_site/tests/test_openapi_lint.py).
    "TAGS": [
        {"name": "attachments", "description": "An incident's files: upload one, list them, download one."},
        {"name": "auth", "description": "Exchange a password for an API token."},
        {"name": "categories", "description": "What an incident can be reported under, and the team each goes to."},
        {"name": "incidents", "description": "Incidents the caller reported: report one, list, read and change them."},
        {"name": "metrics", "description": "How fast incidents are acknowledged and resolved (team members, staff)."},
        {"name": "publicIncidents", "description": "Incidents reported by others that the caller may see."},
        {"name": "responses", "description": "An incident's responses: read them, add one."},
        {"name": "teams", "description": "The teams incidents can be routed to."},
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["incidents.api.schema.canonical_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "incidents.api.schema.strict_request_bodies",
        "incidents.api.schema.signed_out_operations",
        "incidents.api.schema.uri_too_long",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "incidents.models.Status",
        "SeverityEnum": "incidents.models.Severity",
        "VisibilityEnum": "incidents.models.Visibility",
    },
}
# Browser clients on other origins (off unless listed), for the API only.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"

# --- Forms ----------------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Logging (stdout, for the process manager to collect) -----------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "irms_site.security.RequestIdLogFilter"},
        "redact": {"()": "irms_site.security.RedactSecretsLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": sys.stdout,
            "formatter": "plain",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # Its start-up banner is noise on every management command.
        "axes": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
    },
}

# --- Attachments (evidence on reports and responses) ------------------------------------
# Files are stored through STORAGES["attachments"] and only ever served by the checked
# download view (incidents/api/views.py): MEDIA_ROOT is never published at a URL.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
ATTACHMENT_MAX_FILES = env.int("ATTACHMENT_MAX_FILES", default=5)
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
# Decided from each file's content (libmagic), never from its name or the client's word.
# SVG, HTML, scripts and executables are refused whatever this says (incidents/attachments.py).
ATTACHMENT_TYPES = env.list(
    "ATTACHMENT_TYPES",
    default=[
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/heic",
        "image/heif",
        "application/pdf",
        "text/plain",
        "text/csv",
        "message/rfc822",
    ],
)
# Images are re-encoded without EXIF, GPS and XMP (orientation applied first).
ATTACHMENT_STRIP_METADATA = env.bool("ATTACHMENT_STRIP_METADATA", default=True)
# Uploads stream to temporary files, each written no further than ATTACHMENT_MAX_BYTES.
FILE_UPLOAD_HANDLERS = ["incidents.uploads.LimitedTemporaryFileUploadHandler"]


def _attachment_storage() -> dict:
    """S3-compatible object storage (django-storages) when ATTACHMENT_STORAGE_URL
    (`s3://bucket/prefix?endpoint_url=...&region_name=...`) or AWS_STORAGE_BUCKET_NAME is
    set; the local file system under MEDIA_ROOT otherwise. Credentials come from
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or boto3's other usual sources)."""
    from urllib.parse import parse_qsl, urlsplit

    url = env.str("ATTACHMENT_STORAGE_URL", default="")
    bucket = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    if not url and not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    options = {
        "bucket_name": bucket,
        "location": env.str("AWS_LOCATION", default=""),
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        # Nothing is public: objects are private and only the download view reads them.
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    if url:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            _stop("ATTACHMENT_STORAGE_URL must look like s3://bucket/prefix?endpoint_url=https://...")
        query = dict(parse_qsl(parts.query))
        options.update(bucket_name=parts.netloc, location=parts.path.strip("/"))
        options.update({key: query[key] for key in ("endpoint_url", "region_name") if query.get(key)})
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


STORAGES["attachments"] = _attachment_storage()
