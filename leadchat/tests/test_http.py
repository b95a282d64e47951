from django.test import RequestFactory

from leadchat.http import client_ip


def request(remote="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_socket_address_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request(forwarded="1.1.1.1")) == "203.0.113.9"


def test_behind_one_proxy_its_appended_address_counts_and_forgeries_do_not(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request(forwarded="6.6.6.6, 198.51.100.5")) == "198.51.100.5"


def test_behind_two_proxies_the_outer_ones_view_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request(forwarded="6.6.6.6, 198.51.100.5, 10.0.0.2")) == "198.51.100.5"


def test_a_header_shorter_than_the_proxy_chain_falls_back_to_the_socket(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request(forwarded="198.51.100.5")) == "203.0.113.9"
    assert client_ip(request(forwarded=" , ")) == "203.0.113.9"
