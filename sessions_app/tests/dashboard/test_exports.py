"""Exports: streamed from a generator, content round-trips, same filters as the list."""

import csv
import io
import json
import types

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse
from django.urls import reverse

from sessions_app.exports import COLUMNS
from sessions_app.models import CompletionStatus
from sessions_app.tests.factories import (
    AutomationErrorFactory,
    ChatMessageFactory,
    ChatSessionFactory,
)

EXPORT_CSV = reverse("staff-api:export-csv")
EXPORT_JSONL = reverse("staff-api:export-jsonl")


@pytest.fixture
def leads(db):
    rich = ChatSessionFactory(
        lead_name='Zoë Ünïcode, "Quoted"\nNewline',
        lead_email="zoe@example.com",
        lead_phone="+49 30 123",
        lead_data={"company": "Acme"},
        completion_status=CompletionStatus.COMPLETE,
        utm_source="news,letter",
    )
    ChatMessageFactory(session=rich, role="ai", text="Hello, how can I help?")
    ChatMessageFactory(session=rich, role="visitor", text='=HYPERLINK("http://evil")')
    AutomationErrorFactory(session=rich)
    AutomationErrorFactory(session=rich, resolved=True)
    plain = ChatSessionFactory()
    archived = ChatSessionFactory(archive_status="archived")
    return {"rich": rich, "plain": plain, "archived": archived}


def _body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return response.getvalue().decode()


@pytest.mark.django_db
def test_csv_export_is_a_streamed_generator(api, agent_user, leads):
    response = api(agent_user).get(EXPORT_CSV)
    assert response.status_code == 200
    assert response.streaming
    # The view hands Django a generator: nothing is read from the database until iterated.
    assert isinstance(response._iterator, types.GeneratorType)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leadchat-sessions-')


@pytest.mark.django_db
def test_csv_export_round_trips(api, agent_user, leads):
    text = _body(api(agent_user).get(EXPORT_CSV, {"transcript": "true"}))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == [*COLUMNS, "transcript"]
    assert {r["id"] for r in rows} == {str(leads["rich"].public_id), str(leads["plain"].public_id)}
    rich = next(r for r in rows if r["id"] == str(leads["rich"].public_id))
    assert rich["lead_name"] == leads["rich"].lead_name  # commas, quotes, newline, accents
    assert rich["lead_email"] == "zoe@example.com"
    assert rich["utm_source"] == "news,letter"
    assert json.loads(rich["lead_data"]) == {"company": "Acme"}
    assert rich["completion_status"] == "complete"
    assert rich["error_count"] == "2"
    assert rich["delivery_state"] == "none" and rich["qa_status"] == "unchecked"
    # Spreadsheet formulas typed by a visitor are neutralised; a phone's "+" too.
    assert rich["lead_phone"] == "'+49 30 123"
    lines = rich["transcript"].split("\n")
    assert lines[0].endswith("ai: Hello, how can I help?")
    assert lines[1].endswith('visitor: =HYPERLINK("http://evil")')


@pytest.mark.django_db
def test_jsonl_export_round_trips_verbatim(api, agent_user, leads):
    response = api(agent_user).get(EXPORT_JSONL, {"transcript": "true", "tz": "Europe/Paris"})
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    rows = [json.loads(line) for line in _body(response).splitlines()]
    rich = next(r for r in rows if r["id"] == str(leads["rich"].public_id))
    assert rich["lead_name"] == leads["rich"].lead_name
    assert rich["lead_phone"] == "+49 30 123"
    assert rich["lead_data"] == {"company": "Acme"}
    assert rich["ai_engaged"] is False and rich["error_count"] == 2
    assert [m["text"] for m in rich["transcript"]] == [
        "Hello, how can I help?",
        '=HYPERLINK("http://evil")',
    ]
    assert rich["started_at"].endswith(("+01:00", "+02:00"))  # in the requested zone


@pytest.mark.django_db
def test_export_uses_the_list_filters(api, agent_user, leads):
    client = api(agent_user)
    only_archived = _body(client.get(EXPORT_JSONL, {"archive": "archived"})).splitlines()
    assert [json.loads(x)["id"] for x in only_archived] == [str(leads["archived"].public_id)]
    with_lead = _body(client.get(EXPORT_JSONL, {"has_lead": "true"})).splitlines()
    assert len(with_lead) == 1


@pytest.mark.django_db
def test_export_query_count_does_not_grow_per_session(
    api, agent_user, leads, django_assert_max_num_queries
):
    for session in ChatSessionFactory.create_batch(30):
        ChatMessageFactory.create_batch(2, session=session)
    client = api(agent_user)
    with django_assert_max_num_queries(8):
        lines = _body(client.get(EXPORT_JSONL, {"transcript": "true"})).splitlines()
    assert len(lines) == 32


@pytest.mark.django_db
def test_export_bad_parameters_are_json_400(api, agent_user):
    response = api(agent_user).get(EXPORT_CSV, {"completion": "nope"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("completion:")


@pytest.mark.django_db
def test_export_refused_without_the_export_permission(api, no_role_user):
    assert api(no_role_user).get(EXPORT_CSV).status_code == 403


@pytest.mark.django_db
def test_export_sessions_command_writes_the_same_rows(tmp_path, leads):
    target = tmp_path / "out.jsonl"
    out = io.StringIO()
    call_command(
        "export_sessions",
        "--output",
        str(target),
        "--format",
        "jsonl",
        "--has-lead",
        "true",
        stdout=out,
    )
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(leads["rich"].public_id)]
    assert "Exported 1 sessions" in out.getvalue()
    csv_target = tmp_path / "out.csv"
    call_command("export_sessions", "-o", str(csv_target), "--archive", "all", stdout=io.StringIO())
    assert len(list(csv.DictReader(csv_target.open()))) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--completion", "finished"], "--completion: Unknown value 'finished'"),
        (["--date-from", "someday"], "--date-from:"),
        (["--tz", "Moon/Base"], "--tz: Unknown time zone"),
    ],
)
def test_export_sessions_command_bad_options_are_one_line_errors(tmp_path, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("export_sessions", "-o", str(tmp_path / "x.csv"), *args)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.django_db
def test_export_sessions_command_refuses_a_missing_directory(tmp_path):
    with pytest.raises(CommandError, match="No such directory"):
        call_command("export_sessions", "-o", str(tmp_path / "nope" / "x.csv"))


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["xlsx", ""])
def test_export_unknown_format_parameter_is_400(api, agent_user, fmt):
    response = api(agent_user).get(EXPORT_CSV, {"format": fmt})
    assert response.status_code == 400
    assert response.json()["error"].startswith("format:")


def _injected_session():
    from leadchat.tests.csvchecks import INJECTIONS

    return ChatSessionFactory(**{field: typed for field, (typed, _) in INJECTIONS.items()})


def _assert_csv_is_quoted_and_neutralised(text: str, session) -> None:
    from leadchat.tests.csvchecks import INJECTIONS, assert_every_cell_quoted

    assert_every_cell_quoted(text)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    row = next(r for r in rows if r["id"] == str(session.public_id))
    assert {field: row[field] for field in INJECTIONS} == {
        field: safe for field, (_, safe) in INJECTIONS.items()
    }


@pytest.mark.django_db
def test_api_csv_export_quotes_every_cell_and_neutralises_every_part(api, agent_user):
    session = _injected_session()
    text = _body(api(agent_user).get(EXPORT_CSV))
    _assert_csv_is_quoted_and_neutralised(text, session)


@pytest.mark.django_db
def test_export_sessions_command_csv_quotes_every_cell_and_neutralises_every_part(tmp_path):
    session = _injected_session()
    target = tmp_path / "out.csv"
    call_command("export_sessions", "-o", str(target), stdout=io.StringIO())
    with target.open(encoding="utf-8", newline="") as handle:
        _assert_csv_is_quoted_and_neutralised(handle.read(), session)


@pytest.mark.django_db
def test_export_sessions_command_to_stdout_is_quoted_and_neutralised(capsys):
    session = _injected_session()
    call_command("export_sessions", "-o", "-")
    _assert_csv_is_quoted_and_neutralised(capsys.readouterr().out, session)
