"""The JSON parser of every API (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES).

Its own module, not leadchat.api: DRF reads DEFAULT_PARSER_CLASSES while importing
rest_framework.views, which leadchat.api imports.
"""

import math
from collections.abc import Iterator
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body our APIs take (n8n's error details are a few levels); far below Python's
# recursion limit, so neither the JSON decoder nor a serializer walking the data can hit it.
MAX_JSON_DEPTH = 32


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing what would otherwise end in a 500 further in.

    - Nesting deeper than MAX_JSON_DEPTH: 12 KB of `[` is enough to make the decoder (or a
      serializer) raise RecursionError.
    - NUL characters: PostgreSQL refuses them in text and in jsonb.
    - Lone surrogates (`"\\ud800"`): valid JSON escapes, but not encodable as UTF-8, so the
      database driver (or any encoder) fails on them.
    - Numbers too large for a float (`1e400`): Python reads them as infinity, which no JSON
      column takes back (json.dumps writes `Infinity`; PostgreSQL's jsonb and SQLite's
      JSON_VALID check refuse it), so storing one was a 500.

    Each refusal is a ParseError (400) naming where in the body the bad value is. The whole
    document is checked, keys included, before any view or serializer sees it, so every API
    that parses JSON (the default parser of REST_FRAMEWORK) gets the same rules.
    """

    # A subclass may leave NUL characters to its serializers (the widget drops them from the
    # page context a browser sends; DRF's CharField refuses them everywhere else).
    allow_nul = False

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        problem = json_problem(data, allow_nul=self.allow_nul)
        if problem is not None:
            raise ParseError(f"JSON parse error - {problem}")
        return data


def _walk(data: Any) -> Iterator[tuple[str, int, Any]]:
    """(path, depth, value) of every value and key in `data`, without recursion."""
    stack: list[tuple[str, int, Any]] = [("", 0, data)]
    while stack:
        path, depth, value = stack.pop()
        yield path, depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                yield child, depth + 1, key
                stack.append((child, depth + 1, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", depth + 1, item) for i, item in enumerate(value))


def json_problem(data: Any, *, allow_nul: bool = False) -> str | None:
    """Why parsed JSON is refused (too deep, NUL, lone surrogate), naming the place; else None."""
    for path, depth, value in _walk(data):
        problem = _value_problem(depth, value, allow_nul)
        if problem is not None:
            # Only a refusal names its place: escaping every path of a body that is fine was
            # a third of the Messenger webhook's CPU (bench/messenger_intake.py).
            return f"{_printable(path) or 'the body'}: {problem}"
    return None


def _value_problem(depth: int, value: Any, allow_nul: bool) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"nested deeper than {MAX_JSON_DEPTH} levels."
    if isinstance(value, str):
        if not allow_nul and "\x00" in value:
            return "NUL characters are not allowed."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogate escapes (\\ud800-\\udfff) are not allowed."
    elif isinstance(value, float) and not math.isfinite(value):
        return "the number is too large."
    return None


def _printable(path: str) -> str:
    """The path as safe text: a key may itself hold a NUL, a surrogate or a newline (shown
    escaped), or be 10 KB long."""
    text = "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in path[:200]
    )
    return text if len(path) <= 200 else text + "..."
