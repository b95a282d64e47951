"""Permanent erasure (erase_lead) and the retention purge (purge_sessions)."""

import io
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from sessions_app import services, signals
from sessions_app.models import AutomationError, ChatMessage, ChatSession
from sessions_app.tests.factories import (
    AutomationErrorFactory,
    ChatMessageFactory,
    ChatSessionFactory,
)

EMAIL = "Rosa.Lopez@Example.com"
NAME = "Rosa Lopez"


def rows_mentioning(*needles: str) -> list[str]:
    """Every row of every table whose text columns contain one of `needles` (any case).

    Reads all tables of all installed apps, so a table added later is checked too.
    """
    found = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if f.column
                and f.get_internal_type() in {"CharField", "TextField", "EmailField", "JSONField"}
            ]
            if not columns:
                continue
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                text = " ".join(str(v) for v in row if v is not None).lower()
                if any(n.lower() in text for n in needles):
                    found.append(f"{table}: {row}")
    return found


@pytest.fixture
def person(db):
    """Rosa's data spread over sessions, messages and errors, beside another visitor's."""
    captured = ChatSessionFactory(lead_name=NAME, lead_email=EMAIL.lower(), lead_phone="+1 555")
    ChatMessageFactory(session=captured, text="Hi, I'm Rosa Lopez")
    ChatMessageFactory(session=captured, text=f"my email is {EMAIL}")
    # An earlier visit where she typed her email but the lead never completed.
    typed = ChatSessionFactory()
    ChatMessageFactory(session=typed, text=f"reach me at {EMAIL.upper()}")
    AutomationErrorFactory(session=captured, details={"payload": {"email": EMAIL}})
    AutomationErrorFactory(message=f"Webhook for {NAME} failed")  # no session link
    AutomationErrorFactory(details={"lead": {"email": EMAIL.lower()}})  # no session link
    other = ChatSessionFactory(lead_name="Sven Berg", lead_email="sven@example.com")
    ChatMessageFactory(session=other, text="Hello")
    unrelated_error = AutomationErrorFactory(message="Timeout in node X")
    return {"captured": captured, "typed": typed, "other": other, "error": unrelated_error}


@pytest.mark.django_db
def test_erase_lead_leaves_no_row_holding_the_email_or_name(person):
    assert rows_mentioning(EMAIL, NAME)  # the check can see them before
    out = io.StringIO()
    call_command("erase_lead", EMAIL, stdout=out)
    assert rows_mentioning(EMAIL, NAME) == []
    assert ChatSession.objects.filter(pk=person["other"].pk).exists()
    assert ChatMessage.objects.filter(session=person["other"]).count() == 1
    assert AutomationError.objects.filter(pk=person["error"].pk).exists()
    text = out.getvalue()
    assert str(person["captured"].public_id) in text and str(person["typed"].public_id) in text
    assert "Removed 2 sessions, 3 messages and 3 automation errors" in text


@pytest.mark.django_db
def test_erase_lead_dry_run_removes_nothing(person):
    out = io.StringIO()
    call_command("erase_lead", EMAIL, "--dry-run", stdout=out)
    assert "Would remove 2 sessions, 3 messages and 3 automation errors" in out.getvalue()
    assert ChatSession.objects.count() == 3
    assert AutomationError.objects.count() == 4


@pytest.mark.django_db
def test_erase_lead_tells_other_apps_first_inside_the_transaction(person):
    seen = []

    def receiver(sender, session_ids, emails, **kwargs):
        # Still there: receivers can read what they must scrub.
        seen.append((ChatSession.objects.filter(pk__in=session_ids).count(), emails))
        assert connection.in_atomic_block

    signals.sessions_erasing.connect(receiver)
    try:
        services.lead_erase(email=EMAIL)
    finally:
        signals.sessions_erasing.disconnect(receiver)
    assert seen == [(2, [EMAIL.lower()])]


@pytest.mark.django_db
def test_erase_lead_rolls_back_when_a_receiver_fails(person):
    def broken(**kwargs):
        raise RuntimeError("scrubbing failed")

    signals.sessions_erasing.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            services.lead_erase(email=EMAIL)
    finally:
        signals.sessions_erasing.disconnect(broken)
    assert ChatSession.objects.count() == 3  # all or nothing


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["rosa", "", "rosa@", "@example.com"])
def test_erase_lead_refuses_what_is_not_an_email(email):
    with pytest.raises(CommandError, match="Not an email address"):
        call_command("erase_lead", email)


@pytest.mark.django_db
def test_erase_lead_of_unknown_email_removes_nothing(person):
    out = io.StringIO()
    call_command("erase_lead", "nobody@example.com", stdout=out)
    assert "Removed 0 sessions, 0 messages and 0 automation errors" in out.getvalue()
    assert ChatSession.objects.count() == 3


@pytest.fixture
def aged(db):
    now = timezone.now()
    old = ChatSessionFactory(started_at=now - timedelta(days=400), lead_email="old@example.com")
    ChatMessageFactory.create_batch(2, session=old)
    recent = ChatSessionFactory(started_at=now - timedelta(days=5))
    long_trashed = ChatSessionFactory(
        started_at=now - timedelta(days=50), deleted_at=now - timedelta(days=40)
    )
    fresh_trash = ChatSessionFactory(
        started_at=now - timedelta(days=3), deleted_at=now - timedelta(days=1)
    )
    old_error = AutomationErrorFactory(created_at=now - timedelta(days=400))
    new_error = AutomationErrorFactory()
    return locals()


@pytest.mark.django_db
def test_purge_removes_old_sessions_and_trash_past_its_age(aged):
    seen = []
    signals.sessions_erasing.connect(
        receiver := lambda sender, session_ids, emails, **kw: seen.append(sorted(emails))
    )
    try:
        out = io.StringIO()
        call_command("purge_sessions", "--older-than", "365", stdout=out)
    finally:
        signals.sessions_erasing.disconnect(receiver)
    remaining = set(ChatSession.objects.values_list("pk", flat=True))
    assert remaining == {aged["recent"].pk, aged["fresh_trash"].pk}
    assert ChatMessage.objects.filter(session_id=aged["old"].pk).count() == 0
    assert set(AutomationError.objects.values_list("pk", flat=True)) == {aged["new_error"].pk}
    assert "Removed 2 sessions, 2 messages and 1 automation errors" in out.getvalue()
    assert ["old@example.com"] in seen


@pytest.mark.django_db
def test_purge_trash_age_can_be_set(aged):
    call_command(
        "purge_sessions", "--older-than", "365", "--trash-older-than", "0", stdout=io.StringIO()
    )
    assert set(ChatSession.objects.values_list("pk", flat=True)) == {aged["recent"].pk}


@pytest.mark.django_db
def test_purge_dry_run_removes_nothing(aged):
    out = io.StringIO()
    call_command("purge_sessions", "--older-than", "365", "--dry-run", stdout=out)
    assert "Would remove 2 sessions, 2 messages and 1 automation errors" in out.getvalue()
    assert ChatSession.objects.count() == 4


@pytest.mark.django_db
def test_purge_works_in_batches(aged):
    now = timezone.now()
    ChatSessionFactory.create_batch(7, started_at=now - timedelta(days=500))
    report = services.sessions_purge(older_than=timedelta(days=365), batch_size=3)
    assert len(report.sessions) == 9
    assert ChatSession.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args", [["--older-than", "0"], ["--older-than", "-3"], ["--older-than", "99999999"]]
)
def test_purge_refuses_bad_ages(args):
    with pytest.raises(CommandError, match="--older-than"):
        call_command("purge_sessions", *args)
