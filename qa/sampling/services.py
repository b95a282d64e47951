"""Sampling: which finished sessions go into the QA queue (the admins' global `SamplingRule`, or
a site's own `SiteSamplingRule` for that site's sessions).

The moment: a session is decided once it has gone quiet for SESSION_IDLE_TIMEOUT_MINUTES (the
moment the idle close ends it; a completed lead is decided at the same point, so messages
written after the lead count too). The worker decides them in batches (job `qa-sampling` of
`manage.py deliver_webhooks`), on its clock: `sessions_sample(now=...)` in tests.

The rules, in order: an automation error, a request for a person (`session_needs_human`), an
email captured while the session stayed incomplete (no name: `lead_capture` completes a session
only with both), a keyword in a message; else a random share, decided by a hash of the
session's public id, so the same session gets the same answer on every worker and every run.

A session decided "not sampled" that gets new messages is decided again once it is quiet again
(it may now match a rule); a sampled one stays sampled. Two workers deciding one batch at once
write the same answer (the decision is deterministic; the insert ignores the second).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from qa.sampling.models import (
    SAMPLING_RULE_PK,
    RuleFields,
    SamplingRule,
    SessionSample,
    SiteSamplingRule,
)
from sessions_app.models import (
    AutomationError,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    MessageRole,
)
from widget.models import Site

JOB_NAME = "qa-sampling"
BUCKETS = 10_000  # the random share in hundredths of a percent
RULE_FIELDS = ("automation_errors", "needs_human", "email_incomplete", "keywords", "random_percent")


def sampling_rule() -> SamplingRule:
    """The global rule in force: the saved one, or the defaults (everything sampled)."""
    return SamplingRule.objects.filter(pk=SAMPLING_RULE_PK).first() or SamplingRule(
        pk=SAMPLING_RULE_PK
    )


def _check_rule(by: User, random_percent: int) -> None:
    if not (by.is_active and by.is_superuser):
        raise PermissionDenied("Only admins set the sampling rule.")
    if not 0 <= random_percent <= 100:
        raise ValueError("The random share is a percentage, 0 to 100.")


def _set_rule(
    rule: RuleFields,
    *,
    by: User,
    automation_errors: bool,
    needs_human: bool,
    email_incomplete: bool,
    keywords: str,
    random_percent: int,
) -> None:
    rule.automation_errors = automation_errors
    rule.needs_human = needs_human
    rule.email_incomplete = email_incomplete
    rule.keywords = keywords.strip()
    rule.random_percent = random_percent
    rule.updated_at = timezone.now()
    rule.updated_by = by
    rule.save()


def sampling_rule_save(
    *,
    by: User,
    automation_errors: bool,
    needs_human: bool,
    email_incomplete: bool,
    keywords: str,
    random_percent: int,
) -> SamplingRule:
    """Change the global rule (admins). Applies to sessions decided from now on, on every site
    without a rule of its own."""
    _check_rule(by, random_percent)
    with transaction.atomic():
        rule, _ = SamplingRule.objects.select_for_update().get_or_create(pk=SAMPLING_RULE_PK)
        _set_rule(
            rule,
            by=by,
            automation_errors=automation_errors,
            needs_human=needs_human,
            email_incomplete=email_incomplete,
            keywords=keywords,
            random_percent=random_percent,
        )
    return rule


def site_sampling_rule_save(
    *,
    by: User,
    site: Site,
    automation_errors: bool,
    needs_human: bool,
    email_incomplete: bool,
    keywords: str,
    random_percent: int,
) -> SiteSamplingRule:
    """Give `site` a rule of its own, or change it (admins): its sessions decided from now on
    follow it instead of the global rule."""
    _check_rule(by, random_percent)
    with transaction.atomic():
        rule = SiteSamplingRule.objects.select_for_update().filter(site=site).first()
        if rule is None:
            rule = SiteSamplingRule(site=site)
        _set_rule(
            rule,
            by=by,
            automation_errors=automation_errors,
            needs_human=needs_human,
            email_incomplete=email_incomplete,
            keywords=keywords,
            random_percent=random_percent,
        )
    return rule


def site_sampling_rule_delete(*, by: User, site: Site) -> bool:
    """Put `site` back on the global rule (admins); False when it had no rule of its own."""
    if not (by.is_active and by.is_superuser):
        raise PermissionDenied("Only admins set the sampling rule.")
    deleted, _ = SiteSamplingRule.objects.filter(site=site).delete()
    return bool(deleted)


def rules_for_sites(site_ids: Iterable[int | None]) -> tuple[RuleFields, dict[int, RuleFields]]:
    """The global rule and the sites' own rules among `site_ids`: two queries."""
    ids = {site_id for site_id in site_ids if site_id is not None}
    own: dict[int, RuleFields] = (
        {rule.site_id: rule for rule in SiteSamplingRule.objects.filter(site_id__in=ids)}
        if ids
        else {}
    )
    return sampling_rule(), own


def rule_for_site(site_id: int | None) -> RuleFields:
    """The rule a session of `site_id` is decided by: the site's own, else the global one."""
    default, own = rules_for_sites([site_id])
    return own.get(site_id, default) if site_id is not None else default


def session_needs_human(session: ChatSession) -> bool:
    """Whether the visitor asked for a person in this session, even if an agent has since
    taken it (`needs_human` is cleared then; `human_requested_at` stays)."""
    return session.needs_human or session.human_requested_at is not None


def random_bucket(public_id: object) -> int:
    """0..9999 from the session's public id: the same on every run (not Python's hash())."""
    digest = hashlib.sha256(str(public_id).encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def in_random_share(public_id: object, percent: int) -> bool:
    return random_bucket(public_id) < percent * (BUCKETS // 100)


def sampling_reasons(
    *, session: ChatSession, rule: RuleFields, has_error: bool, keywords_found: list[str]
) -> list[str]:
    """Why `session` goes to QA; empty when it does not."""
    reasons = []
    if rule.automation_errors and has_error:
        reasons.append("automation_error")
    if rule.needs_human and session_needs_human(session):
        reasons.append("needs_human")
    if (
        rule.email_incomplete
        and session.lead_email
        and session.completion_status != CompletionStatus.COMPLETE
    ):
        reasons.append("email_incomplete")
    reasons += [f"keyword:{word}" for word in keywords_found]
    if not reasons and in_random_share(session.public_id, rule.random_percent):
        reasons.append("random")
    return reasons


def _candidates(now: datetime) -> Q:
    quiet_since = now - timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES)
    return Q(
        deleted_at__isnull=True,
        last_activity_at__lt=quiet_since,
        last_activity_at__gte=now - timedelta(days=settings.QA_SAMPLING_LOOKBACK_DAYS),
    )


def sessions_sample(*, now: datetime | None = None, limit: int = 200) -> int:
    """Decide up to `limit` quiet, undecided sessions (and not-sampled ones with new messages)."""
    now = now or timezone.now()
    decided = SessionSample.objects.filter(session=OuterRef("pk"))
    redecide = SessionSample.objects.filter(
        session=OuterRef("pk"), sampled=False, message_count__lt=OuterRef("message_count")
    )
    sessions = list(
        ChatSession.objects.filter(_candidates(now))
        .filter(~Exists(decided) | Exists(redecide))
        .order_by("last_activity_at", "id")[:limit]
    )
    if not sessions:
        return 0
    ids = [s.pk for s in sessions]
    default, own = rules_for_sites(s.site_id for s in sessions)

    def rule_of(session: ChatSession) -> RuleFields:
        return own.get(session.site_id, default) if session.site_id is not None else default

    with_errors = set(
        AutomationError.objects.filter(session_id__in=ids).values_list("session_id", flat=True)
    )
    # One keyword search per word per rule that lists it, over that rule's sessions only.
    ids_by_word: dict[str, list[int]] = {}
    for session in sessions:
        for word in rule_of(session).keyword_list:
            ids_by_word.setdefault(word, []).append(session.pk)
    found: dict[int, list[str]] = {}
    for word, word_ids in ids_by_word.items():
        hits = (
            ChatMessage.objects.filter(session_id__in=word_ids, text__icontains=word)
            .exclude(role=MessageRole.SYSTEM)
            .values_list("session_id", flat=True)
            .distinct()
        )
        for session_id in hits:
            found.setdefault(session_id, []).append(word)
    rows = []
    for session in sessions:
        rule = rule_of(session)
        words = set(rule.keyword_list)
        reasons = sampling_reasons(
            session=session,
            rule=rule,
            has_error=session.pk in with_errors,
            keywords_found=[w for w in found.get(session.pk, []) if w in words],
        )
        rows.append(
            SessionSample(
                session=session,
                sampled=bool(reasons),
                reasons=reasons,
                random_percent=rule.random_percent,
                decided_at=now,
                message_count=session.message_count,
            )
        )
    existing = set(
        SessionSample.objects.filter(session_id__in=ids).values_list("session_id", flat=True)
    )
    with transaction.atomic():
        SessionSample.objects.bulk_create(
            [row for row in rows if row.session_id not in existing], ignore_conflicts=True
        )
        for row in rows:
            if row.session_id not in existing:
                continue
            # A re-decision: only a not-sampled row, only if the transcript grew since.
            SessionSample.objects.filter(
                session_id=row.session_id, sampled=False, message_count__lt=row.message_count
            ).update(
                sampled=row.sampled,
                reasons=row.reasons,
                random_percent=row.random_percent,
                decided_at=now,
                message_count=row.message_count,
            )
    return len(rows)


# When this process's last pass found nothing to decide: the next looks again only after
# SAMPLING_IDLE_PAUSE, so an idle worker polling every second does not scan the recent sessions
# every second (a busy one, with a full batch each pass, goes on at once).
SAMPLING_IDLE_PAUSE = 30.0
_idle_since: float | None = None


def sampling_job_run(worker: str, limit: int) -> int:
    """The worker job: decide a batch of quiet sessions."""
    global _idle_since
    if _idle_since is not None and time.monotonic() - _idle_since < SAMPLING_IDLE_PAUSE:
        return 0
    decided = sessions_sample(limit=max(limit, 1) * 4)
    _idle_since = None if decided else time.monotonic()
    return decided


def not_sampled_expression() -> Exists:
    """Sessions decided "not sampled" (the default queue leaves them out)."""
    return Exists(SessionSample.objects.filter(session=OuterRef("pk"), sampled=False))
