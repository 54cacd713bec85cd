"""OpenAPI schema tweaks."""


def canonical_paths(endpoints):
    """Publish the original paths, without a trailing slash (both forms are served)."""
    return [(path.rstrip("/") or path, regex, method, callback) for path, regex, method, callback in endpoints]


# Request bodies whose serializers refuse unknown fields (serializers.StrictInputSerializer).
STRICT_REQUEST_COMPONENTS = (
    "IncidentCreateRequest",
    "PatchedIncidentUpdateRequest",
    "ResponseCreateRequest",
    "AttachmentCreateRequest",
)


def strict_request_bodies(result, generator, request, public):
    """Say in the schema what the server does: unknown fields in these bodies are a 400."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in STRICT_REQUEST_COMPONENTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result


# Operations a client calls before it has credentials, by path (wherever their view lives).
SIGNED_OUT_OPERATIONS = {("/api/auth/token", "post")}


def signed_out_operations(result, generator, request, public):
    """Say that these operations need no credentials (an empty `security` list), rather
    than leave clients and linters to guess from its absence."""
    paths = result.get("paths", {})
    for path, method in SIGNED_OUT_OPERATIONS:
        if method in paths.get(path, {}):
            paths[path][method]["security"] = []
    return result


def uri_too_long(result, generator, request, public):
    """Every operation may meet the HTTP server's request-line limit (gunicorn answers 414
    above 4,094 bytes, before IRMS sees the request): say so, since clients can hit it."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            operation.setdefault("responses", {}).setdefault(
                "414", {"description": "The URL is longer than the server accepts (4,094 bytes under gunicorn)."}
            )
    return result
