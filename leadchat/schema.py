"""Post-processing of the OpenAPI schema (drf-spectacular POSTPROCESSING_HOOKS)."""

from __future__ import annotations

from typing import Any

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}

# Answered by the HTTP server in front of Django (gunicorn's limit_request_line, 4094 bytes by
# default; Django's development and test server at 65,536) before any view runs, so no view's
# schema mentions it. Its body is the server's own (plain text or HTML), hence no content here.
URI_TOO_LONG = {
    "description": "Request line (method, path and query string) longer than the HTTP "
    "server accepts; shorten the query. Sent by the server before the app, without a JSON body."
}


def document_server_answers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add the answers every operation can get from the server itself (414) to each one, and
    the `TimeZone` component the `tz` parameters refer to (once, not inlined per parameter)."""
    from sessions_app.api.params import time_zone_choices

    result.setdefault("components", {}).setdefault("schemas", {})["TimeZone"] = {
        "type": "string",
        "enum": time_zone_choices(),
        "description": "An IANA time zone name known to the server, or empty for the default.",
    }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                operation.setdefault("responses", {}).setdefault("414", URI_TOO_LONG)
    return result
