"""The hot paths' set-up (leadchat.hotpaths): what they take, what they leave, and the database
connection they reuse without a health check."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.urls import resolve

from leadchat.hotpaths import SKIPPED, HotPathMiddleware, without_health_check


def _middleware() -> HotPathMiddleware:
    return HotPathMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]


def test_the_hot_paths_are_the_urls_of_the_views_they_replace():
    from widget.api import MessagePostView
    from widget.channels.messenger.views import messenger_webhook

    middleware = _middleware()
    (webhook,) = middleware._exact
    assert resolve(webhook).func is messenger_webhook
    assert middleware._poll is not None
    prefix, suffix, _ = middleware._poll
    assert resolve(f"{prefix}any-session{suffix}").func.view_class is MessagePostView


def test_the_lean_chain_keeps_every_middleware_but_the_skipped_ones(settings):
    """A middleware added to MIDDLEWARE later is on the hot paths too unless someone decides
    otherwise in SKIPPED: the list of what is left out is short and each entry is explained."""
    assert set(SKIPPED) == {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    }
    kept = [path for path in django_settings.MIDDLEWARE[1:] if path not in SKIPPED]
    assert "django.middleware.security.SecurityMiddleware" in kept
    assert "corsheaders.middleware.CorsMiddleware" in kept
    assert "leadchat.http.RequestBodyLimitMiddleware" in kept
    assert "leadchat.middleware.DatabaseUnavailableMiddleware" in kept
    middleware = _middleware()
    # DatabaseUnavailableMiddleware's JSON 503 is an exception hook: it must be collected.
    assert [hook.__self__.__class__.__name__ for hook in middleware._exception_middleware] == [
        "DatabaseUnavailableMiddleware"
    ]


def test_the_hot_path_middleware_must_come_first(settings):
    settings.MIDDLEWARE = [*django_settings.MIDDLEWARE[1:], "leadchat.hotpaths.HotPathMiddleware"]
    with pytest.raises(ImproperlyConfigured, match="must come first"):
        _middleware()


@pytest.mark.django_db(transaction=True)
def test_a_dead_reused_connection_is_replaced_without_a_health_check_query():
    """The server ended our connection between two requests (a restart, an idle timeout):
    the work runs again on a new connection instead of failing, as the skipped SELECT 1 would
    have arranged."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (pg_terminate_backend); the suite's CI database")
    connection.ensure_connection()
    connection.health_check_done = False  # as at the start of a request
    old_pid = connection.connection.info.backend_pid
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    finally:
        killer.close()

    def work():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    assert without_health_check(work) != old_pid


@pytest.mark.django_db(transaction=True)
def test_no_health_check_query_runs_on_a_reused_connection(monkeypatch):
    checks: list[int] = []
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.ensure_connection()
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)

    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 + 1")

    connection.health_check_done = False  # as at the start of a request
    without_health_check(query)
    assert checks == [] and connection.health_check_done
    connection.health_check_done = False
    query()  # Django's own way: the health check first
    assert checks == [1]
