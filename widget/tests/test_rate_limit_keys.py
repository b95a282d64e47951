"""Issue 11 point 15: the per-session message limit holds whatever spelling of the session id
the URL uses, and failed lookups (unknown session, wrong token) count toward the IP limit.

Against the running app (live_server, real HTTP); the agent is a counting fake, so the test
sees how many paid agent calls each attack would have made.
"""

import uuid

import pytest
import requests

from widget import backends
from widget.backends.fake import FakeBackend
from widget.tests.conftest import ORIGIN
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db(transaction=True)


def spellings(session_id: str) -> list[str]:
    """Ways uuid.UUID() reads the same id."""
    value = uuid.UUID(session_id)
    return [
        str(value),
        str(value).upper(),
        value.hex,
        value.hex.upper(),
        f"urn:uuid:{value}",
        f"{{{value}}}",
    ]


def start(base: str, site_key: str) -> tuple[str, str]:
    response = requests.post(
        f"{base}/api/widget/sessions/",
        json={"site_key": site_key, "page_url": f"{ORIGIN}/"},
        headers={"Origin": ORIGIN},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    data = response.json()
    return data["session_id"], data["visitor_token"]


def say(base: str, session_path: str, token: str, text: str) -> requests.Response:
    return requests.post(
        f"{base}/api/widget/sessions/{session_path}/messages/",
        json={"text": text},
        headers={"Origin": ORIGIN, "X-Visitor-Token": token},
        timeout=10,
    )


def test_another_spelling_of_the_session_id_gets_no_extra_messages(live_server, settings):
    settings.WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = 3
    site = SiteFactory(allowed_origins=[ORIGIN])
    session_id, token = start(live_server.url, site.public_key)
    agent = FakeBackend()

    with backends.override("scripted", agent):
        statuses = [
            say(live_server.url, path, token, f"message {i}").status_code
            for i, path in enumerate(spellings(session_id) * 2)
        ]

    assert statuses.count(201) == 3
    assert statuses == [201, 201, 201] + [429] * (len(statuses) - 3)
    assert len(agent.conversations) == 3


def test_failed_lookups_count_toward_the_ip_limit(live_server, settings):
    settings.WIDGET_REQUESTS_PER_IP_PER_MINUTE = 6
    site = SiteFactory(allowed_origins=[ORIGIN])
    session_id, token = start(live_server.url, site.public_key)  # 1 request

    unknown = say(live_server.url, str(uuid.uuid4()), token, "hi").status_code  # 2
    malformed = say(live_server.url, "not-a-session", token, "hi").status_code  # 3
    guesses = [say(live_server.url, session_id, f"guess-{i}", "hi").status_code for i in range(3)]

    assert (unknown, malformed, guesses) == (404, 404, [403, 403, 403])  # 4..6
    # The budget is gone: even the right token waits now, and so does any further guess.
    blocked = say(live_server.url, session_id, token, "hi")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert say(live_server.url, str(uuid.uuid4()), token, "hi").status_code == 429
