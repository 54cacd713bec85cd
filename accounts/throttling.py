"""API rate limits that keep a counter, not a history.

DRF's throttles keep every request time of the window in the cache: at `600/min` that is
a list of up to 600 floats read, unpickled, trimmed, pickled and written back on every
request (with the database cache, a row rewritten each time). These keep one small entry
per caller and scope, `(window start, count in this window, count in the previous one)`,
and judge the rate by a sliding window: the previous window's count weighs by how much of
it still overlaps the last `duration` seconds. A caller's window starts at their first
request, so a burst of N requests from a quiet start is counted exactly.

Like DRF's, the read and the write are two cache operations, not one atomic step: two
requests at the same instant may both be counted as one. Rates, scopes, cache keys and
the 429 with Retry-After are DRF's (`DEFAULT_THROTTLE_RATES`, `throttle_scope`).
"""

from rest_framework import throttling


class CountingThrottle(throttling.SimpleRateThrottle):
    # Not DRF's `throttle_%(scope)s_%(ident)s`: while workers of both kinds share a cache
    # (a rolling deploy), each reads only entries of its own shape.
    cache_format = "throttle_count_%(scope)s_%(ident)s"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        start, current, previous = self.stored() or (self.now, 0, 0)
        if self.now >= start + self.duration:
            # The window rolled over: the one just ended becomes the previous window; after a
            # gap of more than a whole window nothing is left to weigh.
            windows = int((self.now - start) // self.duration)
            previous = current if windows == 1 else 0
            start, current = start + windows * self.duration, 0
        self.window = (start, current, previous)
        if self.estimate() >= self.num_requests:
            return self.throttle_failure()
        # Kept until the window after this one ends, while its count still weighs.
        self.cache.set(self.key, (start, current + 1, previous), start + 2 * self.duration - self.now)
        return self.throttle_success()

    def throttle_success(self):
        return True

    def stored(self) -> tuple | None:
        """This caller's entry, or None when there is none or it is not of this shape."""
        entry = self.cache.get(self.key)
        if (
            isinstance(entry, tuple)
            and len(entry) == 3
            and all(isinstance(n, int | float) and not isinstance(n, bool) for n in entry)
        ):
            return entry
        return None

    def elapsed(self) -> float:
        """How much of the current window has passed, 0 to 1."""
        return (self.now - self.window[0]) / self.duration

    def estimate(self) -> float:
        """Requests in the last `duration` seconds, as the sliding window counts them."""
        _, current, previous = self.window
        return previous * (1 - self.elapsed()) + current

    def wait(self):
        """Seconds until the estimate falls below the rate again."""
        start, current, previous = self.window
        if current < self.num_requests and previous:
            # Within this window: the previous window's weight has to fade enough.
            until = start + (1 - (self.num_requests - current) / previous) * self.duration
        else:
            # This window is full: wait for it to become the previous one and fade enough.
            fraction = 1 - self.num_requests / current if current else 0.0
            until = start + (1 + max(fraction, 0.0)) * self.duration
        # Never "retry after 0 seconds": DRF rounds up, so this says one second.
        return max(until - self.now, 0.001)


class AnonRateThrottle(throttling.AnonRateThrottle, CountingThrottle):
    """Signed-out callers, by address (DRF's `anon` scope)."""


class UserRateThrottle(throttling.UserRateThrottle, CountingThrottle):
    """Signed-in callers, by account (DRF's `user` scope)."""


class ScopedRateThrottle(throttling.ScopedRateThrottle, CountingThrottle):
    """Views with a `throttle_scope` (the token endpoint's `auth`)."""
