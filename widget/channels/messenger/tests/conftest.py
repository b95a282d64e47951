"""Meta's side for the Messenger tests: documented webhook payloads, signed with a test app
secret, and a loopback Graph API that records and checks every Send API call.

The payload shapes follow Meta's "Webhook Events Reference" (messages, messaging_postbacks,
message_echoes, message_deliveries, message_reads): `{"object": "page", "entry": [{"id":
PAGE_ID, "time": ..., "messaging": [{"sender": {"id": ...}, "recipient": {"id": ...},
"timestamp": ..., <event>}]}]}`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from widget.channels.messenger.intake import sign
from widget.tests.factories import SiteFactory

APP_SECRET = "test-app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
PAGE_ID = "1122334455"
PAGE_TOKEN = "EAAPAGETOKEN123"
PSID = "7001002003"
WEBHOOK = "/channels/messenger/webhook/"

# (body, signature: "sign" to sign it, or the header to send, status): bodies the webhook
# refuses, each with its reason's status.
REFUSED_BODIES = [
    (b'{"object": "page", "entry": []}', None, 403),
    (b'{"object": "page", "entry": []}', "sha256=" + "0" * 64, 403),
    (b"{not json", "sign", 400),
    (b"[" * 40 + b"]" * 40, "sign", 400),
    (b'{"object": "page", "entry": [{"id": "a\\u0000b"}]}', "sign", 400),
    (b'{"object": "instagram", "entry": []}', "sign", 400),
    (b'"page"', "sign", 400),
]

_mids = itertools.count(1)


def run_worker() -> int:
    """One in-process pass of the delivery worker (its Messenger job included)."""
    from sessions_app.delivery import DeliveryWorker

    worker = DeliveryWorker(name="test-worker", close_idle_sessions=False, log=lambda _l: None)
    return worker.run(once=True)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_mid() -> str:
    return f"m_test{next(_mids):06d}_{time.monotonic_ns()}"


def messaging(event: dict[str, Any], *, psid: str = PSID, page_id: str = PAGE_ID) -> dict:
    return {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": now_ms(),
        **event,
    }


def text_event(text: str, *, mid: str | None = None, **kwargs: Any) -> dict:
    return messaging({"message": {"mid": mid or new_mid(), "text": text}}, **kwargs)


def quick_reply_event(title: str, payload: str, **kwargs: Any) -> dict:
    return messaging(
        {"message": {"mid": new_mid(), "text": title, "quick_reply": {"payload": payload}}},
        **kwargs,
    )


def postback_event(title: str = "Get Started", payload: str = "GET_STARTED", **kw: Any) -> dict:
    return messaging({"postback": {"mid": new_mid(), "title": title, "payload": payload}}, **kw)


def attachment_event(kind: str = "image", url: str = "https://scontent.xx.fbcdn.net/a.jpg"):
    return messaging(
        {"message": {"mid": new_mid(), "attachments": [{"type": kind, "payload": {"url": url}}]}}
    )


def echo_event(text: str, *, metadata: str | None = None, app_id: int = 263902037430900):
    message: dict[str, Any] = {"is_echo": True, "app_id": app_id, "mid": new_mid(), "text": text}
    if metadata is not None:
        message["metadata"] = metadata
    # An echo goes from the page to the person.
    return {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": PSID},
        "timestamp": now_ms(),
        "message": message,
    }


def delivery_event() -> dict:
    return messaging({"delivery": {"mids": [new_mid()], "watermark": now_ms()}})


def read_event() -> dict:
    return messaging({"read": {"watermark": now_ms()}})


def webhook_body(*events: dict, page_id: str = PAGE_ID) -> dict:
    return {
        "object": "page",
        "entry": [{"id": page_id, "time": now_ms(), "messaging": list(events)}],
    }


@pytest.fixture(autouse=True)
def messenger_settings(settings):
    settings.MESSENGER_APP_SECRET = APP_SECRET
    settings.MESSENGER_VERIFY_TOKEN = VERIFY_TOKEN
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def page_site(db):
    return SiteFactory(
        name="Acme on Facebook", messenger_page_id=PAGE_ID, messenger_page_token=PAGE_TOKEN
    )


@pytest.fixture
def post_webhook(client):
    """POST a body to the webhook as Meta does: raw JSON bytes, signed with the app secret."""

    def post(body: Any, *, secret: str = APP_SECRET, signature: str | None = None, **headers):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        header = signature if signature is not None else sign(raw, secret)
        extra = {"HTTP_X_HUB_SIGNATURE_256": header} if header else {}
        return client.post(WEBHOOK, raw, content_type="application/json", **extra, **headers)

    return post


@dataclass
class GraphApi:
    """A loopback Graph API: records each call, checks its shape, answers as told.

    `answers` is a list of Replies used in turn for Send API message calls (then 200).
    `problems` collects every call that does not look like Meta's Send API wants it.
    """

    token: str = PAGE_TOKEN
    answers: list[Reply] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    page_name: str = "Acme Page"
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: RecordedRequest) -> Reply:
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        token = (query.get("access_token") or [""])[0]
        with self.lock:
            if token != self.token:
                self.problems.append(f"wrong access_token {token!r}")
                return Reply(
                    401,
                    {"error": {"message": "Invalid OAuth access token.", "code": 190}},
                )
            if request.method == "GET":
                if url.path.endswith(f"/{PAGE_ID}") and query.get("fields") == ["name"]:
                    return Reply(200, {"name": self.page_name, "id": PAGE_ID})
                return Reply(404, {"error": {"message": "Unknown path", "code": 100}})
            body = request.json()
            call = {"path": url.path, "body": body}
            self.calls.append(call)
            if not url.path.endswith("/me/messages"):
                self.problems.append(f"wrong path {url.path}")
            if not isinstance(body.get("recipient"), dict) or not body["recipient"].get("id"):
                self.problems.append(f"no recipient.id in {body}")
            if "sender_action" in body:
                return Reply(200, {"recipient_id": body["recipient"]["id"]})
            if body.get("messaging_type") == "MESSAGE_TAG":
                # A person's reply after 24 hours (sessions_app.takeover): only this tag.
                if body.get("tag") != "HUMAN_AGENT":
                    self.problems.append(f"tag {body.get('tag')!r}")
            elif body.get("messaging_type") != "RESPONSE":
                self.problems.append(f"messaging_type {body.get('messaging_type')!r}")
            message = body.get("message") or {}
            if not isinstance(message.get("text"), str) or not message["text"]:
                self.problems.append(f"no message.text in {body}")
            if self.answers:
                return self.answers.pop(0)
            return Reply(
                200,
                {"recipient_id": body["recipient"]["id"], "message_id": f"m_out{next(self._sent)}"},
            )

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [c["body"] for c in self.calls if "message" in c["body"]]

    @property
    def texts(self) -> list[str]:
        return [m["message"]["text"] for m in self.messages]

    @property
    def actions(self) -> list[str]:
        return [c["body"]["sender_action"] for c in self.calls if "sender_action" in c["body"]]


@pytest.fixture
def graph(settings) -> Iterator[GraphApi]:
    api = GraphApi()
    with LoopbackServer(api) as server:
        settings.MESSENGER_GRAPH_API_URL = f"{server.url}/v23.0"
        api.url = server.url  # type: ignore[attr-defined]
        yield api


def graph_error(code: int, status: int = 400, subcode: int | None = None) -> Reply:
    error: dict[str, Any] = {"message": f"Error {code}", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEf"
    return Reply(status, {"error": error})
