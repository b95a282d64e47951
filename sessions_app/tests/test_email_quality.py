"""Email beyond syntax, against a real DNS server on loopback (never the network)."""

import time

import pytest
from django.core.cache import cache

from leadchat import cache_guard
from leadchat.testing_dns import LoopbackDNSServer, Zone
from sessions_app.email_quality import (
    EmailCheck,
    domain_mail_status,
    email_check,
    email_refusal,
    typo_suggestion,
)
from sessions_app.models import EmailQuality


def lead_zone() -> Zone:
    zone = Zone()
    zone.add("mx.test", "MX", "10 mail.mx.test.")
    zone.add("mail.mx.test", "A", "192.0.2.10")
    zone.add("aonly.test", "A", "192.0.2.20")  # no MX: mail goes to the A record (RFC 5321)
    zone.add("v6only.test", "AAAA", "2001:db8::1")
    zone.names.add("bare.test")  # exists, no MX, no A, no AAAA
    zone.add("nullmx.test", "MX", "0 .")
    zone.silent.add("slow.test")
    return zone


@pytest.fixture
def dns_server(settings):
    with LoopbackDNSServer(lead_zone()) as server:
        settings.LEAD_EMAIL_DNS_CHECK = True
        settings.LEAD_EMAIL_DNS_NAMESERVERS = [server.nameserver]
        settings.LEAD_EMAIL_DNS_TIMEOUT = 1.5
        yield server


def test_domain_with_mx_is_valid(dns_server):
    assert email_check("ana@mx.test").quality == EmailQuality.VALID
    assert dns_server.queries == [("mx.test", "MX")]


def test_domain_without_mx_but_with_a_record_takes_mail(dns_server):
    assert email_check("ana@aonly.test").quality == EmailQuality.VALID
    assert dns_server.queries == [("aonly.test", "MX"), ("aonly.test", "A")]


def test_domain_with_only_aaaa_takes_mail(dns_server):
    assert email_check("ana@v6only.test").quality == EmailQuality.VALID


def test_domain_with_neither_mx_nor_address_is_no_mx(dns_server):
    assert email_check("ana@bare.test").quality == EmailQuality.NO_MX
    assert dns_server.queries == [("bare.test", "MX"), ("bare.test", "A"), ("bare.test", "AAAA")]


def test_domain_that_does_not_exist_is_no_mx(dns_server):
    assert email_check("ana@nowhere.test").quality == EmailQuality.NO_MX
    assert dns_server.queries == [("nowhere.test", "MX")]


def test_null_mx_says_no_mail(dns_server):
    assert email_check("ana@nullmx.test").quality == EmailQuality.NO_MX


def test_timeout_is_unverifiable_within_the_budget(dns_server, settings):
    settings.LEAD_EMAIL_DNS_TIMEOUT = 0.4
    started = time.monotonic()
    assert email_check("ana@slow.test").quality == EmailQuality.UNVERIFIABLE
    elapsed = time.monotonic() - started
    assert 0.3 < elapsed < 0.8, elapsed


def test_a_dead_nameserver_is_unverifiable_not_an_error(settings):
    # Nobody listens on this port: the resolver gets ICMP refusals or silence.
    with LoopbackDNSServer(Zone()) as server:
        nameserver = server.nameserver
    settings.LEAD_EMAIL_DNS_CHECK = True
    settings.LEAD_EMAIL_DNS_NAMESERVERS = [nameserver]
    settings.LEAD_EMAIL_DNS_TIMEOUT = 0.3
    assert domain_mail_status("mx.test") == EmailQuality.UNVERIFIABLE


def test_second_check_of_a_domain_is_answered_by_the_cache(dns_server):
    assert email_check("ana@mx.test").quality == EmailQuality.VALID
    assert email_check("bob@MX.test").quality == EmailQuality.VALID
    assert dns_server.queries == [("mx.test", "MX")]


def test_unverifiable_answer_is_cached_too(dns_server, settings):
    settings.LEAD_EMAIL_DNS_TIMEOUT = 0.2
    email_check("ana@slow.test")
    email_check("ana@slow.test")
    assert dns_server.queries == [("slow.test", "MX")]


def test_cache_outage_costs_a_lookup_not_the_check(dns_server, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis is away")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    monkeypatch.setattr(cache_guard, "_last_logged", 0.0)
    assert email_check("ana@mx.test").quality == EmailQuality.VALID
    assert email_check("ana@mx.test").quality == EmailQuality.VALID
    assert dns_server.queries == [("mx.test", "MX"), ("mx.test", "MX")]


def test_dns_check_off_makes_no_query(dns_server, settings):
    settings.LEAD_EMAIL_DNS_CHECK = False
    assert email_check("ana@bare.test").quality == EmailQuality.VALID
    assert dns_server.queries == []


def test_disposable_domain_is_flagged_without_dns(dns_server):
    assert email_check("ana@mailinator.com").quality == EmailQuality.DISPOSABLE
    assert email_check("ana@inbox.mailinator.com").quality == EmailQuality.DISPOSABLE
    assert dns_server.queries == []


@pytest.mark.parametrize("local", ["info", "sales", "admin", "support", "Sales+web"])
def test_role_address_is_flagged(dns_server, local):
    assert email_check(f"{local}@mx.test").quality == EmailQuality.ROLE


def test_role_address_on_a_dead_domain_is_no_mx(dns_server):
    assert email_check("info@bare.test").quality == EmailQuality.NO_MX


@pytest.mark.parametrize(
    ("email", "suggestion"),
    [
        ("ana@gmial.com", "ana@gmail.com"),
        ("ana@gmail.con", "ana@gmail.con".replace(".con", ".com")),
        ("ana@hotmial.com", "ana@hotmail.com"),
        ("ana@yaho.com", "ana@yahoo.com"),
        ("ana@outlok.com", "ana@outlook.com"),
        ("ana@acme.con", "ana@acme.com"),
        ("ana@gmail.com", None),
        ("ana@mail.com", None),
        ("ana@ymail.com", None),
        ("ana@acme.com", None),
        ("ana@hotmail.it", None),  # as close to hotmail.fr as to hotmail.es: no guess
    ],
)
def test_typo_suggestion_for_common_domains(email, suggestion):
    assert typo_suggestion(email) == suggestion


def test_check_carries_the_suggestion():
    assert email_check("ana@gmial.com").suggestion == "ana@gmail.com"


@pytest.mark.parametrize(
    ("quality", "no_mx", "disposable", "refused"),
    [
        (EmailQuality.NO_MX, True, False, True),
        (EmailQuality.NO_MX, False, True, False),
        (EmailQuality.DISPOSABLE, False, True, True),
        (EmailQuality.DISPOSABLE, True, False, False),
        (EmailQuality.UNVERIFIABLE, True, True, False),
        (EmailQuality.ROLE, True, True, False),
    ],
)
def test_site_policy_refuses_only_what_it_names(quality, no_mx, disposable, refused):
    check = EmailCheck(email="ana@x.test", quality=str(quality))
    reason = email_refusal(check, refuse_no_mx=no_mx, refuse_disposable=disposable)
    assert (reason is not None) is refused
    if refused:
        assert "x.test" in reason
