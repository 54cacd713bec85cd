"""OpenAPI schema tweaks."""


def canonical_paths(endpoints):
    """Publish the original paths, without a trailing slash (both forms are served)."""
    return [(path.rstrip("/") or path, regex, method, callback) for path, regex, method, callback in endpoints]


# Request bodies whose serializers refuse unknown fields (serializers.StrictInputSerializer).
STRICT_REQUEST_COMPONENTS = ("IncidentCreateRequest", "PatchedIncidentUpdateRequest", "ResponseCreateRequest")


def strict_request_bodies(result, generator, request, public):
    """Say in the schema what the server does: unknown fields in these bodies are a 400."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in STRICT_REQUEST_COMPONENTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result
