"""A known week of QA work, built through the services on a fake clock, for the trends and the
digest tests. The figures each test expects are written out there, by hand, from this story:

Week of Mon 16 Nov 2026 (sessions start Tue 17 Nov 10:00 UTC, agent v1 = scripted/rules-v1/aaaa):
  s1  passed by quinn 17 Nov 12:00, lead verdicts name correct, email correct, phone missing
  s2  flagged by quinn 17 Nov 13:00 (Hallucination), fixed by ada 18 Nov 13:00 (24 h),
      passed (verified) by quinn 18 Nov 19:00 (6 h)
  s3  flagged by rhea 18 Nov 10:00 (Hallucination + Missed lead), still an issue
  s4  unchecked
Week of Mon 23 Nov 2026 (sessions start Tue 24 Nov 10:00 UTC, agent v2 = openai/gpt-test/bbbb):
  s5  passed by rhea 24 Nov 11:00, lead verdicts name correct, email invented
  s6  passed by rhea 24 Nov 12:00
  s7  flagged by quinn 25 Nov 10:00 (Tone), fixed by ada 25 Nov 22:00 (12 h), awaiting re-check
  s8  unchecked
  s9  unchecked but decided "not sampled" (out of the queue)
  s10 flagged by quinn 25 Nov 11:00 (Policy), then put in the trash (counted nowhere)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import User
from qa.models import FailureCategory, SessionSample
from qa.scorecards.services import ScorecardInput, scorecard_issue_flag, scorecard_save
from qa.services import qa_mark_fixed, qa_mark_passed
from sessions_app.models import ChatMessage, ChatSession, MessageRole
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

W1_START = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
W2_START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
V1 = {"agent_backend": "scripted", "agent_model": "rules-v1", "agent_config_hash": "aaaa"}
V2 = {"agent_backend": "openai", "agent_model": "gpt-test", "agent_config_hash": "bbbb"}


class Clock:
    """`django.utils.timezone.now`, replaced: every service reads the time from here."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
        self.at = at
        monkeypatch.setattr("django.utils.timezone.now", lambda: self.at)

    def set(self, at: datetime) -> None:
        self.at = at


@dataclass
class Story:
    sessions: dict[str, ChatSession]
    quinn: User
    rhea: User
    ada: User


def _session(site, started: datetime, version: dict[str, str], name: str) -> ChatSession:
    session: ChatSession = ChatSessionFactory.create(
        site=site,
        started_at=started,
        last_activity_at=started + timedelta(minutes=5),
        updated_at=started,
        lead_name=name,
        lead_email=f"{name.lower()}@example.com",
        message_count=2,
    )
    ChatMessage.objects.create(
        session=session, role=MessageRole.VISITOR, text="I need a quote", created_at=started
    )
    ChatMessage.objects.create(
        session=session,
        role=MessageRole.AI,
        text="Happy to help",
        created_at=started + timedelta(seconds=5),
        **version,
    )
    return session


def build_story(clock: Clock, make_user) -> Story:
    quinn = make_user("qa", username="quinn")
    rhea = make_user("qa", username="rhea")
    ada = make_user("admin", username="ada")
    site = SiteFactory(name="Spring offer")
    # get_or_create, not the migration's seeded rows: a transactional test that ran earlier in
    # this process flushed them.
    category = {
        name: FailureCategory.objects.get_or_create(name=name)[0].pk
        for name in ("Hallucination", "Missed lead", "Tone", "Policy")
    }
    s: dict[str, ChatSession] = {}
    for i in range(1, 5):
        s[f"s{i}"] = _session(site, W1_START + timedelta(minutes=i), V1, f"Wone{i}")
    for i in range(5, 11):
        s[f"s{i}"] = _session(site, W2_START + timedelta(minutes=i), V2, f"Wtwo{i}")

    def at(day: int, hour: int) -> None:
        clock.set(datetime(2026, 11, day, hour, 0, tzinfo=UTC))

    at(17, 12)
    scorecard_save(
        session=s["s1"],
        by=quinn,
        card=ScorecardInput(verdicts={"name": "correct", "email": "correct", "phone": "missing"}),
    )
    qa_mark_passed(session=s["s1"], by=quinn)
    at(17, 13)
    scorecard_issue_flag(
        session=s["s2"],
        by=quinn,
        note="Invented a discount",
        category_ids=[category["Hallucination"]],
    )
    at(18, 10)
    scorecard_issue_flag(
        session=s["s3"],
        by=rhea,
        note="Made up a plan and never asked for the email",
        category_ids=[category["Hallucination"], category["Missed lead"]],
    )
    at(18, 13)
    qa_mark_fixed(session=s["s2"], by=ada, feedback="Prompt forbids discounts")
    at(18, 19)
    qa_mark_passed(session=s["s2"], by=quinn)
    at(24, 11)
    scorecard_save(
        session=s["s5"],
        by=rhea,
        card=ScorecardInput(verdicts={"name": "correct", "email": "invented"}),
    )
    qa_mark_passed(session=s["s5"], by=rhea)
    at(24, 12)
    qa_mark_passed(session=s["s6"], by=rhea)
    at(25, 10)
    scorecard_issue_flag(
        session=s["s7"], by=quinn, note="Curt answer", category_ids=[category["Tone"]]
    )
    at(25, 11)
    scorecard_issue_flag(
        session=s["s10"], by=quinn, note="Promised a refund", category_ids=[category["Policy"]]
    )
    ChatSession.objects.filter(pk=s["s10"].pk).update(deleted_at=clock.at)
    at(25, 22)
    qa_mark_fixed(session=s["s7"], by=ada, feedback="Warmer greeting in the prompt")
    SessionSample.objects.create(session=s["s9"], sampled=False, reasons=[], random_percent=10)
    for session in s.values():
        session.refresh_from_db()
    return Story(sessions=s, quinn=quinn, rhea=rhea, ada=ada)
