"""OpenAPI schema tweaks."""


def canonical_paths(endpoints):
    """Publish the original paths, without a trailing slash (both forms are served)."""
    return [(path.rstrip("/") or path, regex, method, callback) for path, regex, method, callback in endpoints]
