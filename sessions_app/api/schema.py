"""Pre-processing of the staff API's OpenAPI schema (drf-spectacular PREPROCESSING_HOOKS)."""

from __future__ import annotations

from typing import Any

from sessions_app.api.views import MOVES, SessionMoveApi

Endpoint = tuple[str, str, str, Any]  # path, route, method, view callback


def one_path_per_session_move(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The one URL pattern of the session moves documented as the four paths clients call.

    `/api/sessions/{public_id}/archive/` and its siblings stay separate operations with their
    own ids and descriptions (SessionMoveSchema), as they were when each had its own view, so
    clients generated from the schema keep working.
    """
    expanded: list[Endpoint] = []
    for path, route, method, callback in endpoints:
        if getattr(callback, "cls", None) is not SessionMoveApi:
            expanded.append((path, route, method, callback))
            continue
        for move in MOVES:
            expanded.append(
                (
                    path.replace("{action}", move),
                    route.replace("<session_move:action>", move),
                    method,
                    callback,
                )
            )
    return expanded
