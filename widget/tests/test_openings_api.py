"""The embed script's availability check and the openings counter (issue 16).

Availability: the script asks before it draws the launcher; every refusal says what the site
owner must fix, readable from any origin. Openings: counted per site and hour after the same
checks as every widget request; bad input is a 4xx with a message and counts nothing.
"""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from sessions_app.models import ChatSession, WidgetOpening
from sessions_app.services import widget_opening_count
from widget.tests.conftest import ORIGIN
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

OPENINGS = "/api/widget/openings/"
NOT_ALLOWED = "This website is not allowed to use this widget."


def availability(client, key="test-site", **headers):
    return client.get(f"/api/widget/sites/{key}/", **headers)


def _assert_refusal(response, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == message
    # Readable by the page that asked, whatever its origin: the message is for its owner.
    # (django-cors-headers names an active site's origin instead of "*": as good.)
    assert response["Access-Control-Allow-Origin"] in {"*", response.wsgi_request.headers["Origin"]}


def test_availability_from_an_allowed_origin_is_yes_with_the_colour(client, site):
    response = availability(client, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert response.json() == {
        "available": True,
        "color": site.theme_color,
        "labels": {
            "open": "Open chat",
            "close": "Close chat",
            "unread": "Open chat (%(count)s unread)",
            "frame": "Chat",
        },
    }
    assert "no-store" in response["Cache-Control"]  # a fixed site's answer shows at once
    assert "Origin" in response["Vary"]


def test_availability_brings_the_launchers_texts_in_the_sites_language(client, site):
    site.language = "fr"
    site.save(update_fields=["language"])

    labels = availability(client, HTTP_ORIGIN=ORIGIN).json()["labels"]

    assert labels == {
        "open": "Ouvrir le chat",
        "close": "Fermer la conversation",
        "unread": "Ouvrir le chat (%(count)s non lus)",
        "frame": "Chat",
    }


def test_availability_of_an_unknown_key_says_to_copy_the_embed_code(client, site):
    _assert_refusal(
        availability(client, "test-sit", HTTP_ORIGIN=ORIGIN),
        404,
        'the site key "test-sit" is unknown; copy the embed code again from the admin '
        "(Widget > Sites).",
    )


def test_availability_of_a_switched_off_site_says_where_to_switch_it_on(client, site):
    site.is_active = False
    site.save()

    _assert_refusal(
        availability(client, HTTP_ORIGIN=ORIGIN),
        403,
        'the site "Acme" is switched off, so the chat is hidden; tick "Is active" for it in '
        "the admin (Widget > Sites) to show it.",
    )


def test_availability_from_an_origin_not_allowed_names_the_origin_and_the_site(client, site):
    _assert_refusal(
        availability(client, HTTP_ORIGIN="https://x.test"),
        403,
        'this page\'s origin https://x.test is not in the allowed origins of site "Acme"; add '
        "it in the admin (Widget > Sites).",
    )


def test_availability_from_a_file_page_says_to_serve_it_over_http(client, site):
    response = availability(client, HTTP_ORIGIN="null")

    assert response.status_code == 403
    assert response.json()["error"].startswith(
        'this page has no web origin the chat can be allowed for ("null": a file:// page'
    )


def test_availability_of_a_same_origin_page_is_judged_by_its_referer(client, site):
    # A same-origin GET carries no Origin header: the Referer says which page asks.
    own_page = availability(client, HTTP_REFERER="http://testserver/landing")
    allowed_page = availability(client, HTTP_REFERER=f"{ORIGIN}/pricing")

    assert own_page.status_code == 403  # this server is not among the site's allowed origins
    assert "http://testserver is not in the allowed origins" in own_page.json()["error"]
    assert allowed_page.status_code == 200


def test_availability_echoes_a_long_key_shortened_on_one_line(client, site):
    response = availability(client, "k" * 80, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 404
    assert f'"{"k" * 64}…"' in response.json()["error"]


def test_availability_is_rate_limited_per_ip_in_a_budget_of_its_own(
    client, site, widget_client, settings
):
    settings.WIDGET_AVAILABILITY_PER_IP_PER_MINUTE = 2
    settings.WIDGET_REQUESTS_PER_IP_PER_MINUTE = 2
    availability(client, HTTP_ORIGIN=ORIGIN)
    availability(client, HTTP_ORIGIN=ORIGIN)

    response = availability(client, HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 429
    assert response.json()["error"].startswith("Too many requests.")
    assert response["Access-Control-Allow-Origin"] in {"*", ORIGIN}
    # Page views used up their own budget, not the one visitors need to chat.
    session_id, token = widget_client.started()
    assert widget_client.say(session_id, token, "Hello").status_code == 201


# --- Openings ----------------------------------------------------------------------------------


def open_chat(client, *, site_key="test-site", page_url=f"{ORIGIN}/pricing", origin=ORIGIN):
    body = {"site_key": site_key}
    if page_url is not None:
        body["page_url"] = page_url
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.post(OPENINGS, body, content_type="application/json", **headers)


def counted() -> list[tuple[int, int]]:
    return list(WidgetOpening.objects.values_list("site_id", "count"))


def test_an_opening_is_counted_for_its_site_and_creates_no_session(client, site):
    assert open_chat(client).status_code == 204
    # From the frame itself (this server's origin), with the embedding page's address.
    assert open_chat(client, origin="http://testserver").status_code == 204

    assert counted() == [(site.pk, 2)]
    assert not ChatSession.objects.exists()


def test_the_frame_page_on_its_own_counts_its_openings(client, site):
    response = open_chat(client, origin="http://testserver", page_url="http://testserver/widget/x/")

    assert response.status_code == 204
    assert counted() == [(site.pk, 1)]


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"site_key": "nope"}, 404, "Unknown site key."),
        ({"origin": "https://evil.example"}, 403, NOT_ALLOWED),
        ({"origin": "null"}, 403, NOT_ALLOWED),
        (
            {"origin": "http://testserver", "page_url": "https://evil.example/"},
            403,
            "The page the chat was opened on is not on an allowed origin of this site.",
        ),
        (
            {"page_url": None},
            400,
            "page_url: page_url (the page the chat was opened on) is missing.",
        ),
        (
            {"page_url": "javascript:alert(1)"},
            400,
            "page_url: Expected the http(s) address of the page.",
        ),
        ({"site_key": ""}, 400, "site_key: This field may not be blank."),
    ],
)
def test_bad_openings_are_4xx_with_a_message_and_not_counted(client, site, kwargs, status, message):
    response = open_chat(client, **kwargs)

    assert response.status_code == status, response.content
    assert response.json()["error"] == message
    assert counted() == []


def test_openings_of_a_switched_off_site_are_refused(client, site):
    site.is_active = False
    site.save()

    response = open_chat(client)

    assert response.status_code == 403
    assert counted() == []


def test_openings_are_rate_limited_per_ip(client, site, settings):
    settings.WIDGET_OPENINGS_PER_IP_PER_HOUR = 3
    for _ in range(3):
        assert open_chat(client).status_code == 204

    response = open_chat(client)

    assert response.status_code == 429
    assert 3000 < int(response["Retry-After"]) <= 3600
    assert counted() == [(site.pk, 3)]


def test_openings_are_kept_per_site_and_hour():
    a, b = SiteFactory(), SiteFactory()
    for moment in ["2026-03-09T10:05", "2026-03-09T10:59:59", "2026-03-09T11:00"]:
        widget_opening_count(site_id=a.pk, now=datetime.fromisoformat(moment).replace(tzinfo=UTC))
    widget_opening_count(site_id=b.pk, now=datetime(2026, 3, 9, 10, 30, tzinfo=UTC))

    rows = WidgetOpening.objects.order_by("site_id", "hour").values_list("site_id", "hour", "count")
    assert list(rows) == [
        (a.pk, datetime(2026, 3, 9, 10, tzinfo=UTC), 2),
        (a.pk, datetime(2026, 3, 9, 11, tzinfo=UTC), 1),
        (b.pk, datetime(2026, 3, 9, 10, tzinfo=UTC), 1),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_all_count_on_postgresql():
    site = SiteFactory()
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            start.wait()
            for _ in range(25):
                widget_opening_count(site_id=site.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(WidgetOpening.objects.values_list("count", flat=True)) == 200
