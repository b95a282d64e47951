"""Staff API: every endpoint for each role, filters, search, pagination, bad parameters."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app import services
from sessions_app.models import ArchiveStatus, CompletionStatus, QAStatus
from sessions_app.selectors import CHANGES_OVERLAP, ChangesCursor
from sessions_app.tests.factories import (
    AutomationErrorFactory,
    ChatMessageFactory,
    ChatSessionFactory,
)
from widget.tests.factories import SiteFactory

LIST = reverse("staff-api:sessions")
CHANGES = reverse("staff-api:sessions-changes")
BULK = reverse("staff-api:sessions-bulk")
STATS = reverse("staff-api:stats")
ERRORS = reverse("staff-api:errors")
EXPORT_CSV = reverse("staff-api:export-csv")
EXPORT_JSONL = reverse("staff-api:export-jsonl")


def detail(session):
    return reverse("staff-api:session", args=[session.public_id])


def action(session, name):
    return reverse("staff-api:session-move", args=[session.public_id, name])


def ids(response):
    return {row["id"] for row in response.json()["results"]}


# --- Roles --------------------------------------------------------------------------------------

READ_ENDPOINTS = ["list", "detail", "changes", "stats", "errors", "export_csv", "export_jsonl"]


def _read(client, which, session):
    url = {
        "list": LIST,
        "detail": detail(session),
        "changes": CHANGES,
        "stats": STATS,
        "errors": ERRORS,
        "export_csv": EXPORT_CSV,
        "export_jsonl": EXPORT_JSONL,
    }[which]
    return client.get(url)


@pytest.mark.django_db
@pytest.mark.parametrize("which", READ_ENDPOINTS)
@pytest.mark.parametrize("role", ["agent", "admin", "qa"])
def test_read_endpoints_allowed_for_dashboard_roles(api, make_user, which, role):
    session = ChatSessionFactory()
    response = _read(api(make_user(role)), which, session)
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("which", READ_ENDPOINTS)
def test_read_endpoints_refuse_anonymous_with_401(api, which):
    response = _read(api(), which, ChatSessionFactory())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("which", READ_ENDPOINTS)
def test_read_endpoints_refuse_a_user_without_a_role(api, no_role_user, which):
    response = _read(api(no_role_user), which, ChatSessionFactory())
    assert response.status_code == 403
    assert "role" in response.json()["error"]


@pytest.mark.django_db
def test_token_auth_works_for_scripts(token_client, agent_user):
    ChatSessionFactory()
    response = token_client(agent_user).get(LIST)
    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.django_db
def test_bad_token_is_401(api):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(LIST).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "admin"])
def test_archive_delete_restore_allowed_for_agents_and_admins(api, make_user, role):
    client = api(make_user(role))
    session = ChatSessionFactory()
    for name, check in [
        ("archive", lambda s: s.archive_status == ArchiveStatus.ARCHIVED),
        ("unarchive", lambda s: s.archive_status == ArchiveStatus.ACTIVE),
        ("delete", lambda s: s.deleted_at is not None),
        ("restore", lambda s: s.deleted_at is None),
    ]:
        response = client.post(action(session, name))
        assert response.status_code == 200, response.json()
        session.refresh_from_db()
        assert check(session)
        assert response.json()["id"] == str(session.public_id)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["archive", "unarchive", "delete", "restore"])
def test_qa_reviewers_may_not_archive_delete_or_restore(api, qa_user, name):
    session = ChatSessionFactory()
    response = api(qa_user).post(action(session, name))
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ACTIVE and session.deleted_at is None


@pytest.mark.django_db
def test_qa_reviewers_may_not_bulk_act(api, qa_user):
    session = ChatSessionFactory()
    response = api(qa_user).post(
        BULK, {"action": "archive", "ids": [str(session.public_id)]}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_anonymous_may_not_act(api):
    session = ChatSessionFactory()
    assert api().post(action(session, "archive")).status_code == 401


@pytest.mark.django_db
def test_session_writes_need_csrf_with_session_auth(agent_user):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(agent_user)
    session = ChatSessionFactory()
    response = client.post(action(session, "archive"))
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


# --- Actions ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_archive_twice_is_a_clear_409(api, agent_user):
    session = ChatSessionFactory()
    client = api(agent_user)
    client.post(action(session, "archive"))
    response = client.post(action(session, "archive"))
    assert response.status_code == 409
    assert "archive status" in response.json()["error"]


@pytest.mark.django_db
def test_archiving_a_session_in_the_trash_is_409(api, agent_user):
    session = ChatSessionFactory()
    services.session_delete(session=session, by=None)
    response = api(agent_user).post(action(session, "archive"))
    assert response.status_code == 409
    assert "trash" in response.json()["error"]


@pytest.mark.django_db
def test_action_on_unknown_session_is_404(api, agent_user):
    url = reverse("staff-api:session-move", args=[uuid.uuid4(), "archive"])
    response = api(agent_user).post(url)
    assert response.status_code == 404
    assert response.json()["error"] == "No session with this id."


@pytest.mark.django_db
def test_action_records_who_did_it(api, agent_user):
    session = ChatSessionFactory()
    api(agent_user).post(action(session, "delete"))
    session.refresh_from_db()
    assert session.deleted_by == agent_user


@pytest.mark.django_db
def test_bulk_archive_reports_each_session(api, agent_user):
    a, b = ChatSessionFactory(), ChatSessionFactory()
    services.session_archive(session=b, by=None)
    missing = uuid.uuid4()
    response = api(agent_user).post(
        BULK,
        {"action": "archive", "ids": [str(a.public_id), str(b.public_id), str(missing)]},
        format="json",
    )
    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["results"]}
    assert results[str(a.public_id)]["ok"] is True
    assert results[str(a.public_id)]["session"]["archive_status"] == "archived"
    assert results[str(b.public_id)]["ok"] is False
    assert "archive status" in results[str(b.public_id)]["error"]
    assert results[str(missing)] == {
        "id": str(missing),
        "ok": False,
        "error": "No session with this id.",
        "session": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "explode", "ids": [str(uuid.uuid4())]},
        {"action": "archive", "ids": []},
        {"action": "archive", "ids": ["not-a-uuid"]},
        {"action": "archive", "ids": [str(uuid.uuid4())] * 201},
        {"action": "archive", "ids": "abc"},
        {"action": "archive", "ids": [False]},
        {"action": "archive", "ids": [12345]},
    ],
)
def test_bulk_bad_input_is_400(api, agent_user, body):
    response = api(agent_user).post(BULK, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.django_db
def test_bulk_refuses_non_json(api, agent_user):
    response = api(agent_user).post(BULK, "action=archive", content_type="text/plain")
    assert response.status_code == 415


# --- List: filters, search, ordering, pagination ------------------------------------------------


@pytest.fixture
def catalogue(db):
    """A small, varied set of sessions; names say what makes each one special."""
    now = timezone.now()
    site_a, site_b = SiteFactory(name="A"), SiteFactory(name="B")
    s = {}
    s["complete"] = ChatSessionFactory(
        site=site_a,
        completion_status=CompletionStatus.COMPLETE,
        lead_name="Grace Hopper",
        lead_email="grace@navy.example",
        lead_captured_at=now,
        started_at=now - timedelta(hours=1),
        message_count=5,
    )
    s["incomplete"] = ChatSessionFactory(
        site=site_b,
        completion_status=CompletionStatus.INCOMPLETE,
        started_at=now - timedelta(days=3),
        channel="messenger",
    )
    s["in_progress"] = ChatSessionFactory(site=site_a, started_at=now - timedelta(minutes=5))
    s["archived"] = ChatSessionFactory(
        site=site_a, archive_status=ArchiveStatus.ARCHIVED, started_at=now - timedelta(days=1)
    )
    s["deleted"] = ChatSessionFactory(site=site_a, deleted_at=now, started_at=now)
    s["qa_issue"] = ChatSessionFactory(
        site=site_b, qa_status=QAStatus.ISSUE, started_at=now - timedelta(days=10)
    )
    ChatMessageFactory(session=s["in_progress"], text="Do you ship to Reykjavik?")
    s["sites"] = (site_a, site_b)
    return s


def _ids(*sessions):
    return {str(x.public_id) for x in sessions}


@pytest.mark.django_db
def test_default_list_hides_archived_and_deleted_newest_first(api, agent_user, catalogue):
    response = api(agent_user).get(LIST)
    body = response.json()
    assert ids(response) == _ids(
        catalogue["complete"],
        catalogue["incomplete"],
        catalogue["in_progress"],
        catalogue["qa_issue"],
    )
    started = [row["started_at"] for row in body["results"]]
    assert started == sorted(started, reverse=True)
    assert body["count"] == 4 and body["page"] == 1 and body["num_pages"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, expected",
    [
        ({"completion": "complete"}, ["complete"]),
        ({"completion": "complete,incomplete"}, ["complete", "incomplete"]),
        ({"archive": "archived"}, ["archived"]),
        (
            {"archive": "all"},
            ["complete", "incomplete", "in_progress", "archived", "qa_issue"],
        ),
        ({"trash": "true"}, ["deleted"]),
        ({"qa_status": "issue"}, ["qa_issue"]),
        ({"channel": "messenger"}, ["incomplete"]),
        ({"has_lead": "true"}, ["complete"]),
        ({"has_lead": "false"}, ["incomplete", "in_progress", "qa_issue"]),
        ({"q": "grace"}, ["complete"]),
        ({"q": "NAVY.example"}, ["complete"]),
        ({"q": "reykjavik"}, ["in_progress"]),
        ({"q": "nothing like this"}, []),
    ],
)
def test_list_filters_and_search(api, agent_user, catalogue, query, expected):
    response = api(agent_user).get(LIST, query)
    assert response.status_code == 200, response.json()
    assert ids(response) == _ids(*(catalogue[name] for name in expected))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "q, expected",
    [
        # Every word, in any order and any of the fields (the phrase is in none of them).
        ("hopper grace", ["complete"]),
        ("grace navy.example", ["complete"]),
        ("  GRACE   hopper ", ["complete"]),
        # Each word matches, but in two different sessions.
        ("grace reykjavik", []),
        ("ship reykjavik", ["in_progress"]),
    ],
)
def test_list_search_needs_every_word_not_the_phrase(api, agent_user, catalogue, q, expected):
    response = api(agent_user).get(LIST, {"q": q})
    assert response.status_code == 200, response.json()
    assert ids(response) == _ids(*(catalogue[name] for name in expected))


@pytest.mark.django_db
def test_list_search_finds_a_session_by_its_id(api, agent_user, catalogue):
    session = catalogue["in_progress"]
    response = api(agent_user).get(LIST, {"q": f"{session.public_id} reykjavik"})
    assert ids(response) == _ids(session)


@pytest.mark.django_db
def test_list_filters_by_site(api, agent_user, catalogue):
    site_b = catalogue["sites"][1]
    response = api(agent_user).get(LIST, {"site": site_b.pk})
    assert ids(response) == _ids(catalogue["incomplete"], catalogue["qa_issue"])


@pytest.mark.django_db
def test_list_filters_by_date_range_in_the_users_time_zone(api, agent_user):
    # 03:30 UTC on 10 March is still 9 March in New York (UTC-5 then).
    from datetime import datetime
    from zoneinfo import ZoneInfo

    utc = ZoneInfo("UTC")
    late = ChatSessionFactory(started_at=datetime(2026, 3, 10, 3, 30, tzinfo=utc))
    next_day = ChatSessionFactory(started_at=datetime(2026, 3, 10, 15, 0, tzinfo=utc))
    client = api(agent_user)
    ny = client.get(
        LIST, {"date_from": "2026-03-09", "date_to": "2026-03-09", "tz": "America/New_York"}
    )
    assert ids(ny) == _ids(late)
    in_utc = client.get(LIST, {"date_from": "2026-03-10", "date_to": "2026-03-10", "tz": "UTC"})
    assert ids(in_utc) == _ids(late, next_day)


@pytest.mark.django_db
def test_list_ordering(api, agent_user, catalogue):
    response = api(agent_user).get(LIST, {"ordering": "-message_count"})
    assert response.json()["results"][0]["id"] == str(catalogue["complete"].public_id)
    oldest = api(agent_user).get(LIST, {"ordering": "started_at"}).json()["results"][0]
    assert oldest["id"] == str(catalogue["qa_issue"].public_id)


@pytest.mark.django_db
def test_list_pagination(api, agent_user):
    ChatSessionFactory.create_batch(7)
    client = api(agent_user)
    first = client.get(LIST, {"page_size": 3}).json()
    third = client.get(LIST, {"page_size": 3, "page": 3}).json()
    assert (first["count"], first["num_pages"], len(first["results"])) == (7, 3, 3)
    assert len(third["results"]) == 1
    all_ids = set()
    for page in (1, 2, 3):
        all_ids |= {
            r["id"] for r in client.get(LIST, {"page_size": 3, "page": page}).json()["results"]
        }
    assert len(all_ids) == 7


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, field",
    [
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "-1"}, "page_size"),
        ({"completion": "done"}, "completion"),
        ({"archive": "maybe"}, "archive"),
        ({"qa_status": "passed,bogus"}, "qa_status"),
        ({"site": "x"}, "site"),
        ({"site": "99999999999999"}, "site"),
        ({"channel": "fax"}, "channel"),
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_from"),
        ({"has_lead": "perhaps"}, "has_lead"),
        ({"ordering": "password"}, "ordering"),
        ({"ordering": "-site__agent_secret"}, "ordering"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"trash": "sometimes"}, "trash"),
    ],
)
def test_list_bad_parameters_are_a_clear_400(api, agent_user, query, field):
    ChatSessionFactory()
    response = api(agent_user).get(LIST, query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith(f"{field}:")
    assert field in body["fields"]


@pytest.mark.django_db
def test_list_query_count_is_independent_of_data_size(
    api, agent_user, django_assert_max_num_queries
):
    client = api(agent_user)
    for session in ChatSessionFactory.create_batch(2):
        ChatMessageFactory(session=session)
    client.get(LIST)
    with django_assert_max_num_queries(6) as small:
        assert len(client.get(LIST, {"q": "message"}).json()["results"]) == 2
    for session in ChatSessionFactory.create_batch(30):
        AutomationErrorFactory(session=session)
        ChatMessageFactory(session=session)
    with django_assert_max_num_queries(6) as large:
        response = client.get(LIST, {"q": "message", "page_size": 50})
    assert len(response.json()["results"]) == 32
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_list_shows_open_error_counts(api, agent_user):
    session = ChatSessionFactory()
    AutomationErrorFactory.create_batch(2, session=session)
    AutomationErrorFactory(session=session, resolved=True)
    row = api(agent_user).get(LIST).json()["results"][0]
    assert row["error_count"] == 2


# --- Detail -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_has_transcript_lead_qa_and_errors(api, agent_user):
    session = ChatSessionFactory(lead_name="Ada", lead_email="ada@example.com", qa_notes="Good")
    ChatMessageFactory(session=session, text="first", metadata={"latency_ms": 800})
    ChatMessageFactory(session=session, text="second")
    AutomationErrorFactory(session=session, message="n8n failed")
    body = api(agent_user).get(detail(session)).json()
    assert [m["text"] for m in body["messages"]] == ["first", "second"]
    assert body["messages"][0]["metadata"] == {"latency_ms": 800}
    assert body["lead"]["name"] == "Ada" and body["lead"]["email"] == "ada@example.com"
    assert body["qa"]["status"] == "unchecked" and body["qa"]["notes"] == "Good"
    assert body["automation_errors"][0]["message"] == "n8n failed"
    assert body["error_count"] == 1


@pytest.mark.django_db
def test_detail_of_unknown_session_is_404(api, agent_user):
    response = api(agent_user).get(reverse("staff-api:session", args=[uuid.uuid4()]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_detail_refuses_writes_to_qa_fields(api, agent_user):
    session = ChatSessionFactory()
    client = api(agent_user)
    for method in (client.patch, client.put):
        response = method(detail(session), {"qa_status": "passed"}, format="json")
        assert response.status_code == 405
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED


@pytest.mark.django_db
def test_detail_query_count_is_independent_of_transcript_length(
    api, agent_user, django_assert_max_num_queries
):
    session = ChatSessionFactory()
    client = api(agent_user)
    client.get(detail(session))
    ChatMessageFactory.create_batch(50, session=session)
    AutomationErrorFactory.create_batch(5, session=session, resolved_by=agent_user, resolved=True)
    # 4 are the request's own: session row, user, user and group permissions.
    with django_assert_max_num_queries(7):
        assert len(client.get(detail(session)).json()["messages"]) == 50


# --- Changes feed -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_changes_without_cursor_gives_a_cursor_and_no_rows(api, agent_user):
    ChatSessionFactory()
    body = api(agent_user).get(CHANGES).json()
    assert body["results"] == [] and body["cursor"]


@pytest.mark.django_db
def test_changes_reports_new_and_changed_sessions_with_match_flags(api, agent_user):
    client = api(agent_user)
    old = ChatSessionFactory(updated_at=timezone.now() - timedelta(hours=1))
    cursor = client.get(CHANGES).json()["cursor"]
    new, _ = services.session_start(page_url="https://landing.example.com/x")
    services.session_archive(session=old, by=agent_user)
    body = client.get(CHANGES, {"since": cursor}).json()
    rows = {row["id"]: row for row in body["results"]}
    assert rows[str(new.public_id)]["matches"] is True
    assert rows[str(old.public_id)]["matches"] is False  # archived: gone from the default list
    assert rows[str(old.public_id)]["archive_status"] == "archived"
    archived_view = client.get(CHANGES, {"since": cursor, "archive": "archived"}).json()
    flags = {row["id"]: row["matches"] for row in archived_view["results"]}
    assert flags == {str(new.public_id): False, str(old.public_id): True}


@pytest.mark.django_db
def test_changes_cursor_moves_forward_and_skips_old_rows(api, agent_user):
    client = api(agent_user)
    ChatSessionFactory(updated_at=timezone.now() - timedelta(hours=2))
    start = ChangesCursor(updated_at=timezone.now() - timedelta(hours=1)).encode()
    body = client.get(CHANGES, {"since": start}).json()
    assert body["results"] == []
    assert ChangesCursor.decode(body["cursor"]).updated_at > ChangesCursor.decode(start).updated_at


@pytest.mark.django_db
def test_changes_resends_the_overlap_window_so_late_commits_are_not_missed(api, agent_user):
    client = api(agent_user)
    cursor = client.get(CHANGES).json()["cursor"]
    # A transaction that began before the cursor was issued commits only now.
    late = ChatSessionFactory(updated_at=timezone.now() - CHANGES_OVERLAP / 2)
    assert str(late.public_id) in ids(client.get(CHANGES, {"since": cursor}))


@pytest.mark.django_db
def test_changes_pages_through_bursts(api, agent_user, monkeypatch):
    from sessions_app import selectors

    monkeypatch.setattr(selectors, "CHANGES_LIMIT", 3)
    monkeypatch.setattr(
        selectors.sessions_changed_since, "__kwdefaults__", {"limit": 3, "now": None}
    )
    client = api(agent_user)
    start = ChangesCursor(updated_at=timezone.now() - timedelta(minutes=5)).encode()
    made = {str(s.public_id) for s in ChatSessionFactory.create_batch(5)}
    first = client.get(CHANGES, {"since": start}).json()
    assert first["truncated"] is True and len(first["results"]) == 3
    second = client.get(CHANGES, {"since": first["cursor"]}).json()
    assert second["truncated"] is False
    assert {r["id"] for r in first["results"] + second["results"]} == made


@pytest.mark.django_db
@pytest.mark.parametrize("since", ["yesterday", "12-", "-1", "1-2-3", "9" * 30 + "-1"])
def test_changes_bad_cursor_is_400(api, agent_user, since):
    response = api(agent_user).get(CHANGES, {"since": since})
    assert response.status_code == 400
    assert response.json()["error"].startswith("since:")


@pytest.mark.django_db
def test_changes_query_count_is_bounded(api, agent_user, django_assert_max_num_queries):
    client = api(agent_user)
    start = ChangesCursor(updated_at=timezone.now() - timedelta(minutes=5)).encode()
    ChatSessionFactory.create_batch(25)
    with django_assert_max_num_queries(6):
        assert len(client.get(CHANGES, {"since": start}).json()["results"]) == 25


# --- Automation errors --------------------------------------------------------------------------


@pytest.mark.django_db
def test_errors_list_filters_and_resolve(api, agent_user):
    session = ChatSessionFactory()
    open_error = AutomationErrorFactory(session=session, source="n8n")
    AutomationErrorFactory(source="webhook", resolved=True)
    client = api(agent_user)
    assert client.get(ERRORS).json()["count"] == 2
    only_open = client.get(ERRORS, {"resolved": "false"}).json()["results"]
    assert [e["id"] for e in only_open] == [open_error.pk]
    assert only_open[0]["session"] == str(session.public_id)
    assert client.get(ERRORS, {"source": "webhook"}).json()["count"] == 1
    assert client.get(ERRORS, {"session": str(session.public_id)}).json()["count"] == 1
    url = reverse("staff-api:error-resolve", args=[open_error.pk])
    body = client.post(url).json()
    assert body["resolved"] is True and body["resolved_by"] == agent_user.username
    assert client.post(url).status_code == 200  # resolving again is harmless


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", [{"resolved": "maybe"}, {"source": "fax"}, {"session": "nope"}, {"page": "0"}]
)
def test_errors_list_bad_parameters_are_400(api, agent_user, query):
    assert api(agent_user).get(ERRORS, query).status_code == 400


@pytest.mark.django_db
def test_errors_resolve_unknown_is_404_and_roles_apply(api, agent_user, no_role_user):
    assert api(agent_user).post(reverse("staff-api:error-resolve", args=[999])).status_code == 404
    error = AutomationErrorFactory()
    url = reverse("staff-api:error-resolve", args=[error.pk])
    assert api(no_role_user).post(url).status_code == 403
    assert api().post(url).status_code == 401
    error.refresh_from_db()
    assert error.resolved is False


@pytest.mark.django_db
def test_errors_list_query_count_is_bounded(api, agent_user, django_assert_max_num_queries):
    client = api(agent_user)
    for _ in range(20):
        AutomationErrorFactory(session=ChatSessionFactory(), resolved=True, resolved_by=agent_user)
    with django_assert_max_num_queries(6):
        assert len(client.get(ERRORS).json()["results"]) == 20


# --- Schema -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schema_documents_every_staff_endpoint_with_its_errors(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]
    expected = {
        "/api/sessions/": {"get": {"200", "400", "401", "403"}},
        "/api/sessions/{public_id}/": {"get": {"200", "401", "403", "404"}},
        "/api/sessions/{public_id}/archive/": {"post": {"200", "401", "403", "404", "409"}},
        "/api/sessions/bulk/": {"post": {"200", "400", "401", "403"}},
        "/api/sessions/changes/": {"get": {"200", "400", "401", "403"}},
        "/api/stats/": {"get": {"200", "400", "401", "403"}},
        "/api/automation-errors/": {"get": {"200", "400", "401", "403"}},
        "/api/automation-errors/{id}/resolve/": {"post": {"200", "401", "403", "404"}},
        "/api/exports/sessions.csv": {"get": {"200", "400", "401", "403"}},
        "/api/exports/sessions.jsonl": {"get": {"200", "400", "401", "403"}},
    }
    for path, methods in expected.items():
        for method, codes in methods.items():
            # 414: the HTTP server's answer to a too-long URL, on every operation (leadchat.schema).
            assert set(paths[path][method]["responses"]) == codes | {"414"}, path
    assert "text/csv" in paths["/api/exports/sessions.csv"]["get"]["responses"]["200"]["content"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/sessions/null,null/",
        "/api/sessions/null/archive/",
        "/api/automation-errors/abc/resolve/",
        "/api/exports/sessions.xlsx",
    ],
)
def test_malformed_ids_get_a_json_404(api, agent_user, url):
    client = api(agent_user)
    response = (
        client.get(url) if "resolve" not in url and "archive" not in url else client.post(url)
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
