"""gunicorn settings for IRMS: `gunicorn -c deploy/gunicorn.conf.py irms_site.wsgi:application`.

The same file serves the systemd unit, the Docker image, the two-server tests
(irms_site/tests/test_scale_out.py) and the cluster drill. Every value can be overridden
on the command line (`--bind`, `--workers`) or through GUNICORN_CMD_ARGS.

Sync workers: one request per process, so a slow client holds a whole worker. Never put
this on the internet bare: HAProxy (`option http-buffer-request`, `timeout http-request`)
or nginx (request and response buffering, both on by default) in front takes whole
requests from slow clients and hands gunicorn only complete ones (deploy/haproxy.cfg,
deploy/nginx.conf).
"""

import multiprocessing
import os

# Loopback by default: the balancer or proxy on the same host (or a container's port
# mapping, `GUNICORN_BIND=0.0.0.0:8000`) is what the world reaches.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# gunicorn's own advice, (2 x cores) + 1, capped: IRMS's requests mostly wait on the
# database, and each worker holds one database connection (CONN_MAX_AGE).
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 12)))
worker_class = "sync"

# A request that runs longer than this is killed (and logged): the database gives up
# after DATABASE_IO_TIMEOUT (5 s) and SMTP never happens in a request, so 30 s is a hang.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On SIGTERM or SIGHUP (a restart), workers finish what they have for this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
# Behind a balancer that keeps connections open; longer than gunicorn's 2 s default,
# shorter than HAProxy's `timeout http-keep-alive` would let it race.
keepalive = 5
# Recycle workers now and then (with jitter so they do not all restart together): a slow
# leak in any library never grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = 200

# Access log on stdout with the request id IRMS puts on every response (and every log
# line), so one id finds a request in the balancer's, gunicorn's and Django's logs.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s ua="%(a)s"'

# The balancer's address is the client's; X-Forwarded-* are only trusted from it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
