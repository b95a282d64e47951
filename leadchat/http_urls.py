"""The one test of "an absolute http(s) URL": what may become a link, be stored as one, or be
posted to.

Parsed with `urlsplit`, which reads a string the way a browser does before it looks at the
scheme (leading spaces and C0 controls ignored, tabs and line breaks dropped anywhere), so
"java\\tscript:" is judged as `javascript:` and refused, and the scheme is compared without
case (`HTTPS://` is an https URL). A host is required: `http://`, `http:foo` or `http://:80`
lead nowhere and must not pass as a link or a webhook. A prefix check (`startswith("http")`)
gets both of these wrong.
"""

from urllib.parse import urlsplit

HTTP_SCHEMES = frozenset({"http", "https"})


def is_http_url(value: str) -> bool:
    """True when `value` is an absolute http:// or https:// URL with a host."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(host)
