"""Send one request the lean way (leadchat.hotpaths) and the full way, and compare the answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import cache
from django.test import Client


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    lean: bool  # whether the request took the hot path


def answer_of(response) -> Answer:
    return Answer(
        status=response.status_code,
        body=response.content,
        headers={name.lower(): value for name, value in response.headers.items()},
        lean=hasattr(response.wsgi_request, "hot_path_route"),
    )


def both_ways(settings, send: Callable[[Client], object]) -> tuple[Answer, Answer]:
    """(lean answer, full answer) of `send(client)`, each on a new client (the middleware is
    built again with the settings of the moment) and fresh rate-limit counters."""
    answers = []
    for lean in (True, False):
        settings.LEAN_HOT_PATHS = lean
        cache.clear()
        answers.append(answer_of(send(Client())))
    settings.LEAN_HOT_PATHS = True
    return answers[0], answers[1]


def assert_same_answer(settings, send: Callable[[Client], object], *, lean: bool = True) -> Answer:
    """Both ways answer the same status, bytes and headers; the first took the hot path
    (unless `lean=False`: a request the hot path must leave to the full stack)."""
    hot, full = both_ways(settings, send)
    assert not full.lean
    assert hot.lean is lean
    assert (hot.status, hot.body) == (full.status, full.body)
    assert hot.headers == full.headers
    return hot
