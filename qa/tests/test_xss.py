"""Stored text is rendered as text: an XSS corpus stored through the services stays inert.

Every page is parsed (html.parser, as a browser tokenizer would) and checked structurally: no
script element without a static src, no event-handler attribute, no URL attribute with a
scheme other than http(s), no element the payloads tried to inject; and the payloads show up as
visible text.
"""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from qa import services
from qa.display import safe_http_url
from sessions_app.models import ChatSession, MessageRole, QAStatus
from sessions_app.services import (
    automation_error_record,
    lead_capture,
    message_add,
    session_archive,
    session_start,
)
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "<script>alert('xss-1')</script>",
    '<img src=x onerror="alert(2)">',
    '"><svg onload=alert(3)>',
    "</textarea><script>alert(4)</script>",
    '<a href="javascript:alert(5)">click me</a>',
    "<iframe src=javascript:alert(6)></iframe>",
    "{{ request.user.password }} {% debug %}",
    "<style>body{display:none}</style>",
    "' onmouseover='alert(7)",
]
HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    " JaVaScRiPt:alert(8)",
    "java\tscript:alert(9)",
    "data:text/html,<script>alert(10)</script>",
    "vbscript:msgbox(11)",
]
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}
INJECTED_TAGS = {"iframe", "style", "object", "embed", "base"}


class PageAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self.textarea: list[str] = []
        # The text of each <span class="qa-unsafe-url">: a stored URL shown as text, not a link.
        self.unsafe_urls: list[str] = []
        self._in_script = False
        self._in_textarea = False
        self._in_unsafe_url = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler <{tag} {name}={value!r}>")
            if name in URL_ATTRIBUTES and value:
                scheme = urlsplit(value.strip().replace("\t", "")).scheme.lower()
                if scheme and scheme not in {"http", "https", "mailto"}:
                    self.problems.append(f"{scheme}: URL in <{tag} {name}={value!r}>")
        if tag == "script":
            src = attributes.get("src") or ""
            if not (src.startswith("/static/") or src.startswith("/admin/jsi18n/")):
                self.problems.append(f"script element {attrs!r}")
            self._in_script = True
        if tag in INJECTED_TAGS:
            self.problems.append(f"injected <{tag} {attrs!r}>")
        # The admin's own images (boolean icons) come from /static/; a payload's do not.
        if tag == "img" and not (attributes.get("src") or "").startswith("/static/"):
            self.problems.append(f"injected <img {attrs!r}>")
        # The admin draws its icons with <svg>; an injected one would need an on* handler
        # (caught above) or a script child (caught below) to do harm.
        if tag == "textarea":
            self._in_textarea = True
        if tag == "span" and "qa-unsafe-url" in (attributes.get("class") or "").split():
            self._in_unsafe_url = True
            self.unsafe_urls.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag == "textarea":
            self._in_textarea = False
        if tag == "span":
            self._in_unsafe_url = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script {data[:80]!r}")
        (self.textarea if self._in_textarea else self.text).append(data)
        if self._in_unsafe_url:
            self.unsafe_urls[-1] += data


def audit(response) -> PageAudit:
    assert response.status_code == 200, response.status_code
    page = PageAudit()
    page.feed(response.content.decode())
    page.close()
    assert page.problems == []
    return page


@pytest.fixture
def hostile_session(qa_user, admin_role_user):
    site = SiteFactory(name="<b>Evil site</b><script>alert('site')</script>")
    session, _ = session_start(
        site=site,
        page_url=HOSTILE_URLS[0],
        referrer=HOSTILE_URLS[1],
        utm={"utm_source": PAYLOADS[1], "utm_campaign": PAYLOADS[2]},
        user_agent=PAYLOADS[0],
        greeting=PAYLOADS[3],
    )
    for payload in PAYLOADS:
        message_add(session=session, role=MessageRole.VISITOR, text=payload)
        message_add(
            session=session,
            role=MessageRole.AI,
            text=payload,
            metadata={"backend": PAYLOADS[0], "model": PAYLOADS[1], "latency_ms": PAYLOADS[2]},
        )
    lead_capture(
        session=session,
        name=PAYLOADS[2],
        email="victim@example.com",
        phone='"><script>alert(12)</script>',
        data={PAYLOADS[0]: PAYLOADS[1], "website": HOSTILE_URLS[2]},
    )
    services.qa_mark_issue(session=session, by=qa_user, note=PAYLOADS[3])
    services.qa_feedback_save(session=session, by=admin_role_user, feedback=PAYLOADS[0])
    for index, url in enumerate(HOSTILE_URLS):
        automation_error_record(
            message=PAYLOADS[index],
            workflow=PAYLOADS[1],
            node=PAYLOADS[2],
            execution_id=f"exec-{index}",
            execution_url=url,
            details={"html": PAYLOADS[0], PAYLOADS[1]: url},
            session=session,
        )
    session.refresh_from_db()
    return session


def test_changelist_renders_stored_payloads_inert(admin_client_role, hostile_session):
    url = reverse("admin:sessions_app_chatsession_changelist")
    page = audit(admin_client_role.get(url, {"qa_status": "all"}))
    text = "".join(page.text)
    assert PAYLOADS[2] in text  # the lead name, shown as text
    assert "<b>Evil site</b>" in text
    # The search box echoes what was searched for, as text too.
    audit(admin_client_role.get(url, {"qa_status": "all", "q": PAYLOADS[0]}))


def test_change_view_renders_stored_payloads_inert(admin_client_role, hostile_session):
    url = reverse("admin:sessions_app_chatsession_change", args=[hostile_session.pk])
    page = audit(admin_client_role.get(url))
    text = "".join(page.text)
    for payload in PAYLOADS:
        assert payload.replace("\n", "") in text, payload
    # Unsafe landing page / referrer URLs are shown as text, never as links.
    assert "javascript:alert(document.cookie)" in text
    assert "JaVaScRiPt:alert(8)" in text
    # The QA note sits inside its textarea as text, and cannot close it early.
    assert "".join(page.textarea).count(PAYLOADS[3]) == 1
    assert "{{ request.user.password }}" in text  # stored text is never a template


def test_change_view_for_a_reviewer_renders_payloads_inert(qa_client, hostile_session):
    url = reverse("admin:sessions_app_chatsession_change", args=[hostile_session.pk])
    text = "".join(audit(qa_client.get(url)).text)
    assert PAYLOADS[0] in text  # developer feedback, read-only for reviewers


def test_flag_issue_confirmation_renders_payloads_inert(qa_client, hostile_session, qa_user):
    hostile_session.qa_status = QAStatus.PASSED
    hostile_session.save(update_fields=["qa_status"])
    response = qa_client.post(
        reverse("admin:sessions_app_chatsession_changelist") + "?qa_status=all",
        {"action": "flag_issue", ACTION_CHECKBOX_NAME: [hostile_session.pk], "index": 0},
    )
    audit(response)


def test_automation_error_pages_render_payloads_inert(admin_client_role, hostile_session):
    list_url = reverse("admin:sessions_app_automationerror_changelist")
    audit(admin_client_role.get(list_url))
    for error in hostile_session.automation_errors.all():
        url = reverse("admin:sessions_app_automationerror_change", args=[error.pk])
        page = audit(admin_client_role.get(url))
        # Verbatim, the tab of "java\tscript:" included (a browser drops it and would run the
        # link), in the field that shows an unsafe URL as text; the details JSON also holds the
        # URL, so a search of the whole page's text would pass even if this field were gone.
        assert page.unsafe_urls == [error.execution_url]


NOT_LINKS = [*HOSTILE_URLS, "//evil.example.com/x", "http://", "", "https:/x", "ftp://x.org/"]


@pytest.mark.parametrize("url", NOT_LINKS)
def test_only_absolute_http_urls_become_links(url):
    assert safe_http_url(url) is None


@pytest.mark.parametrize(
    "url", ["https://landing.example.com/offer?utm=1", "http://example.com", " HTTPS://a.b/"]
)
def test_http_urls_are_kept(url):
    assert safe_http_url(url) == url.strip()


@pytest.mark.parametrize("url", ["http://:8080/x", "https://user@/x", "http:///path"])
def test_urls_without_a_host_are_not_links(url):
    # Checking the netloc let "http://:8080/x" become a link that leads nowhere.
    assert safe_http_url(url) is None


def test_audit_catches_an_unescaped_payload():
    """The checker itself must fail on a live payload (a test that cannot fail is a defect)."""

    class Fake:
        status_code = 200
        content = b'<p><img src=x onerror="alert(1)"><a href="javascript:alert(2)">x</a></p>'

    with pytest.raises(AssertionError):
        audit(Fake())


def test_payloads_posted_through_the_widget_api_render_inert_in_the_console(
    client, admin_client_role
):
    """The whole path a hostile visitor has: the public widget HTTP API, then the console."""
    origin = "https://landing.example.com"
    site = SiteFactory(allowed_origins=[origin])
    started = client.post(
        "/api/widget/sessions/",
        {
            "site_key": site.public_key,
            "page_url": "https://landing.example.com/?q=<script>alert(1)</script>",
            "referrer": HOSTILE_URLS[0],
            "utm_source": PAYLOADS[1],
            "utm_campaign": PAYLOADS[2],
        },
        content_type="application/json",
        HTTP_ORIGIN=origin,
    )
    assert started.status_code == 201, started.content
    body = started.json()
    headers = {"HTTP_X_VISITOR_TOKEN": body["visitor_token"], "HTTP_ORIGIN": origin}
    url = f"/api/widget/sessions/{body['session_id']}/messages/"
    for text in [*PAYLOADS, f"I'm {PAYLOADS[0][:40]}", "my email is ana@example.com"]:
        response = client.post(url, {"text": text}, content_type="application/json", **headers)
        assert response.status_code == 201, response.content

    session = ChatSession.objects.get(public_id=body["session_id"])
    assert session.referrer == ""  # only http(s) URLs are kept
    change = reverse("admin:sessions_app_chatsession_change", args=[session.pk])
    page_text = "".join(audit(admin_client_role.get(change)).text)
    for payload in PAYLOADS[:3]:
        assert payload in page_text
    changelist = reverse("admin:sessions_app_chatsession_changelist")
    audit(admin_client_role.get(changelist, {"qa_status": "all"}))


def history_panel(html: str, start: str) -> PageAudit:
    """The History panel alone (from `start`, its opening tag, to its </section>), audited."""
    panel = html[html.index(start) :]
    page = PageAudit()
    page.feed(panel[: panel.index("</section>")])
    page.close()
    assert page.problems == []
    return page


def test_history_panels_render_stored_notes_inert(
    admin_client_role, hostile_session, admin_role_user
):
    """The QA note and the developer feedback, shown as text in both pages' History panels
    (beside the lifecycle rows), not only where the rest of the page shows them."""
    session_archive(session=hostile_session, by=admin_role_user)
    console = admin_client_role.get(
        reverse("admin:sessions_app_chatsession_change", args=[hostile_session.pk])
    )
    dashboard = admin_client_role.get(
        reverse("dashboard:session", args=[hostile_session.public_id])
    )
    for response, start in [
        (console, '<section class="module qa-panel qa-panel--history"'),
        (dashboard, '<section class="card" aria-labelledby="panel-history-title"'),
    ]:
        assert response.status_code == 200
        text = "".join(history_panel(response.content.decode(), start).text)
        assert PAYLOADS[3] in text  # the QA note of the issue move
        assert PAYLOADS[0] in text  # the developer feedback saved
        assert "Active → Archived" in text


def test_history_panel_audit_catches_an_unescaped_note():
    with pytest.raises(AssertionError):
        history_panel('<section class="h"><td>x</td><img src=x onerror="alert(1)"></section>', "<")
