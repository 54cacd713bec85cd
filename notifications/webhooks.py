"""The webhook channel: signing (Standard Webhooks) and one safe HTTP POST per attempt.

What a delivery row carries was decided when it was queued (URL, body, extra headers);
who it is for is an opaque `destination` key that the owning app resolves through
`settings.WEBHOOK_DESTINATIONS` (a dotted path to an object with `secrets(key)` and
`attempted(key, ok=...)`), so this app knows no domain.

Safety, at every attempt whatever was checked when the URL was saved:
- `https://` only, unless WEBHOOK_ALLOW_HTTP;
- the address the socket actually connected to (not the one a first DNS answer gave: a
  name that resolves elsewhere the second time, DNS rebinding, gains nothing) must be a
  global unicast address — no loopback, private, link-local, shared, reserved or
  multicast one — unless WEBHOOK_ALLOW_PRIVATE;
- redirects are never followed (a 3xx is a failed attempt like any non-2xx);
- one attempt takes at most WEBHOOK_TIMEOUT seconds (10) from connect to the last byte read;
- no proxy from the environment is used (http.client reads none).
"""

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string
from standardwebhooks.webhooks import Webhook

from .models import WebhookAttempt, WebhookDelivery

USER_AGENT = "IRMS-Webhooks/1"
EXCERPT_BYTES = 1024
DEFAULT_TIMEOUT_SECONDS = 10


class BlockedAddress(ConnectionError):
    """The destination is (or connected to) an address webhooks may not reach."""


class DeliveryRefused(Exception):
    """The receiver answered, but not with a 2xx: the attempt failed (retried later)."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    excerpt: str


def destinations():
    """The object that knows the destinations (settings.WEBHOOK_DESTINATIONS)."""
    return import_string(settings.WEBHOOK_DESTINATIONS)


# --- Addresses and URLs ---------------------------------------------------------------------


def address_allowed(address: str) -> bool:
    """May a webhook connect to `address` (an IP literal)? Global unicast only, unless
    WEBHOOK_ALLOW_PRIVATE. An IPv4 address mapped into IPv6 is judged as IPv4."""
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None:
        ip = embedded
    return ip.is_global and not ip.is_multicast


# IPv6 prefixes that carry an IPv4 address the traffic ends up at (NAT64, RFC 6052 and
# 8215): Python counts them as global, yet 64:ff9b::a00:1 reaches 10.0.0.1 through a NAT64
# gateway.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any:
    it is judged instead, so no IPv6 spelling of an internal address gets through."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_url(url: str) -> None:
    """Raise ValidationError unless `url` may be a webhook destination now: its scheme
    (https, or http with WEBHOOK_ALLOW_HTTP), no credentials in it, and every address its
    host resolves to allowed (`address_allowed`). Delivery checks again, at connect time."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    allowed_schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed_schemes:
        raise ValidationError("The URL must start with https://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("The URL has no host.", code="invalid")
    if parts.username or parts.password:
        raise ValidationError("Credentials may not be part of the URL.", code="credentials")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        raise ValidationError(f"The host {parts.hostname} does not resolve.", code="unresolvable") from None
    blocked = sorted(address for address in addresses if not address_allowed(address))
    if blocked:
        raise ValidationError(
            f"{parts.hostname} resolves to {', '.join(blocked)}: a loopback, private, link-local or multicast "
            "address, which webhooks may not reach.",
            code="private_address",
        )


def _checked_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
    """socket.create_connection, then the check of the address actually connected to,
    before a byte (or a TLS hello) is sent."""
    sock = socket.create_connection(address, timeout, source_address, **kwargs)
    peer = sock.getpeername()[0]
    if not address_allowed(peer):
        sock.close()
        raise BlockedAddress(f"{address[0]} connected to {peer}, an address webhooks may not reach")
    return sock


# --- Signing --------------------------------------------------------------------------------


def signature_headers(*, webhook_id: str, body: str, secrets: list[str], at: datetime | None = None) -> dict:
    """The Standard Webhooks headers for `body`: one `v1,` signature per secret (the
    current one first, then any previous one still honoured), space-separated."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    signatures = [Webhook(secret).sign(webhook_id, at, body) for secret in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# --- One attempt ----------------------------------------------------------------------------


def post(url: str, body: bytes, headers: dict, *, renew=lambda: None) -> Outcome:
    """One POST of `body` to `url` under the safety rules above; returns what the receiver
    answered (any status: the caller decides). Raises on a refused scheme or address, a
    connection error or a timeout. `renew()` is called once connected, before the request."""
    timeout = getattr(settings, "WEBHOOK_TIMEOUT", None) or DEFAULT_TIMEOUT_SECONDS
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and settings.WEBHOOK_ALLOW_HTTP):
        raise BlockedAddress(f"{parts.scheme}:// URLs are not allowed (https only)")
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection._create_connection = _checked_connection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    watchdog, expired = None, threading.Event()
    try:
        connection.connect()
        # The timeout bounds the whole attempt, not each read: a receiver trickling a byte
        # a second does not hold a worker for minutes. At the deadline the socket is shut.
        sock = connection.sock
        watchdog = threading.Timer(max(0.01, timeout - (time.monotonic() - started)), _expire, args=(sock, expired))
        watchdog.daemon = True
        watchdog.start()
        renew()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")
        if expired.is_set():
            raise TimeoutError(f"the receiver took longer than {timeout} s")
        return Outcome(response.status, int((time.monotonic() - started) * 1000), excerpt)
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set() and not isinstance(error, TimeoutError):
            raise TimeoutError(f"the receiver took longer than {timeout} s") from error
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()


def _expire(sock, expired: threading.Event) -> None:
    """End a conversation that ran out of time (harmless if it ended already); `expired`
    is set first, so the failure the shutdown causes is reported as the timeout it is."""
    expired.set()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def send(row: WebhookDelivery, renew=lambda: None) -> None:
    """Deliver `row` once (the channel's `send`): sign it with the destination's secrets as
    they are now, POST it to the destination's URL as it is now, log the attempt; raises
    unless the receiver answered 2xx."""
    known = destinations()
    secrets = known.secrets(row.destination)
    if not secrets:
        raise LookupError(f"the destination {row.destination} is disabled or gone")
    # The address as it is now, if the destination says (staff may have replaced a leaked
    # chat URL since this was queued); else the one it was queued with.
    url = getattr(known, "url", lambda key: None)(row.destination) or row.url
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **row.headers,
        **signature_headers(webhook_id=row.webhook_id, body=row.body, secrets=secrets),
    }
    started, began = time.monotonic(), datetime.now(UTC)
    outcome, error = None, ""
    try:
        outcome = post(url, row.body.encode(), headers, renew=renew)
        if not 200 <= outcome.status_code < 300:
            raise DeliveryRefused(f"the receiver answered {outcome.status_code}")
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"[:2000]
        raise
    finally:
        WebhookAttempt.objects.create(
            delivery=row,
            number=row.attempts,
            started_at=began,
            status_code=outcome.status_code if outcome else None,
            duration_ms=outcome.duration_ms if outcome else int((time.monotonic() - started) * 1000),
            response_excerpt=outcome.excerpt if outcome else "",
            error=error,
        )
        WebhookDelivery.objects.filter(pk=row.pk).update(last_status_code=outcome.status_code if outcome else None)


def dumps(payload) -> str:
    """The JSON text of a body (compact, UTF-8 kept as is): what is signed is what is sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
