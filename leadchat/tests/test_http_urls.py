"""`is_http_url`, the one test of an absolute http(s) URL (links, stored URLs, agent settings)."""

import pytest

from leadchat.http_urls import is_http_url

HTTP_URLS = [
    "https://landing.example.com/offer?utm=1",
    "http://example.com",
    "HTTPS://EXAMPLE.COM/",  # the scheme is compared without case
    "http://127.0.0.1:8000",
    "http://[::1]:5678/webhook",
    "https://user:pw@example.com/x",
    " https://example.com/",  # a browser ignores the leading space, and so does urlsplit
]
NOT_HTTP_URLS = [
    "",
    "javascript:alert(1)",
    "java\tscript:alert(1)",  # a browser drops the tab and would run it
    " javascript:alert(1)",
    "data:text/html,x",
    "ftp://example.com/",
    "//example.com/x",  # scheme-relative
    "/relative/path",
    "example.com",
    "http://",  # no host
    "https://?q=1",
    "http:foo",
    "http:///path",
    "http://:8080/",
    "http://user@/",
    "http://[::1",  # an unclosed IPv6 bracket: urlsplit raises
]


@pytest.mark.parametrize("url", HTTP_URLS)
def test_absolute_http_urls_with_a_host_pass(url):
    assert is_http_url(url) is True


@pytest.mark.parametrize("url", NOT_HTTP_URLS)
def test_other_schemes_relative_urls_and_hostless_urls_fail(url):
    assert is_http_url(url) is False
