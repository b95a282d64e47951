"""Reads of leads: one row per person (the sessions sharing a `lead_key`), STYLE.md's selectors.

A person is every session with the same normalised email (sessions_app.leads.lead_key) that is
not in the trash, archived ones included (archiving hides a conversation from default lists and
changes nothing else). The filters are the sessions list's (`SessionFilters`): they pick the
people who have at least one matching conversation, and the row then describes the person across
all their conversations, so a search for "rosa" shows Rosa with every visit, not only the one
that mentions her name.

A page is four queries whatever the number of sessions or people: the count of people, the page
of groups (GROUP BY lead_key, answered off the `session_lead_key` index), the latest session of
each person on the page (a window over that index, for the latest name, phone and statuses) and
their sites and channels. Nothing is computed per row in Python against the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Window,
)
from django.db.models.functions import FirstValue, RowNumber

from sessions_app.models import ChatSession
from sessions_app.selectors import (
    ARCHIVE_ALL,
    SessionFilters,
    error_count_subquery,
    sessions_filter,
)

# Orderings a client may ask for, by the name it uses; anything else is refused by the API.
LEAD_ORDERINGS: dict[str, Any] = {
    "last_seen": Max("last_activity_at"),
    "first_seen": Min("started_at"),
    "conversations": Count("id"),
    # Every session of a person has the same email up to case; the smallest one sorts them.
    "email": Min("lead_email"),
}
DEFAULT_LEAD_ORDERING = "-last_seen"
LEAD_KEY_PATTERN = r"[0-9a-f]{64}"
_LEAD_KEY = re.compile(rf"^{LEAD_KEY_PATTERN}$")
# The export reads the people in groups of this many keys (two queries a group).
LEADS_CHUNK = 500


@dataclass
class LeadSite:
    id: int
    name: str


@dataclass
class Lead:
    """One person: figures over their conversations, statuses of the latest one."""

    key: str
    email: str
    name: str
    phone: str
    first_seen: datetime
    last_seen: datetime
    last_captured_at: datetime | None
    conversations: int
    latest: ChatSession
    sites: list[LeadSite] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)


@dataclass
class LeadPage:
    leads: list[Lead]
    count: int
    page: int
    page_size: int

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.page_size))


def person_sessions() -> QuerySet[ChatSession]:
    """The sessions that make up people: with a lead key, not in the trash."""
    return ChatSession.objects.not_deleted().exclude(lead_key="")


def _archive_only(filters: SessionFilters) -> bool:
    """Whether `filters` choose by archive status alone (the page as it opens)."""
    return filters == SessionFilters(archive=filters.archive, tz=filters.tz)


def _groups(filters: SessionFilters, ordering: str) -> QuerySet[ChatSession, Mapping[str, Any]]:
    """One dict per person with a matching conversation, ordered: key and aggregates."""
    name = ordering.removeprefix("-")
    if name not in LEAD_ORDERINGS:
        raise ValueError(f"Unknown lead ordering {ordering!r}.")
    people = person_sessions()
    archive_to_match: str | None = None
    if filters.archive == ARCHIVE_ALL and _archive_only(filters):
        pass  # every person: nothing to match
    elif _archive_only(filters):
        # The page as it opens. A count per group (HAVING) instead of the semi-join below: one
        # pass over the person index instead of two over the table (EXPLAIN at 100,000
        # sessions: the join hashed every lead session twice).
        archive_to_match = filters.archive
    else:
        matching = sessions_filter(filters).exclude(lead_key="").order_by().values("lead_key")
        people = people.filter(lead_key__in=matching)
    sort = F(f"sort_{name}")
    descending = ordering.startswith("-")
    groups = (
        people.order_by()
        .values("lead_key")
        .annotate(
            first_seen=Min("started_at"),
            last_seen=Max("last_activity_at"),
            last_captured_at=Max("lead_captured_at"),
            conversations=Count("id"),
            **{f"sort_{name}": LEAD_ORDERINGS[name]},
        )
    )
    if archive_to_match is not None:
        groups = groups.annotate(
            matches=Count("id", filter=Q(archive_status=archive_to_match))
        ).filter(matches__gt=0)
    return groups.order_by(
        sort.desc() if descending else sort.asc(),
        F("lead_key").desc() if descending else F("lead_key").asc(),
    )


def _empty(column: str) -> ExpressionWrapper:
    return ExpressionWrapper(Q(**{column: ""}), output_field=BooleanField())


def _latest_sessions(keys: list[str]) -> dict[str, ChatSession]:
    """Each person's latest session, carrying their latest non-empty name and phone.

    One query: window functions over the person's sessions (the lead_key index gives them in
    order), keeping the first row of each person. `lead_name` and `lead_phone` are replaced by
    the newest non-empty ones: a visitor who gives only an email on a later visit keeps the
    name from the earlier one.
    """
    if not keys:
        return {}
    newest_first = [F("started_at").desc(), F("id").desc()]
    rows = (
        person_sessions()
        .filter(lead_key__in=keys)
        .select_related("site")
        .annotate(
            person_row=Window(RowNumber(), partition_by=[F("lead_key")], order_by=newest_first),
            latest_name=Window(
                FirstValue("lead_name"),
                partition_by=[F("lead_key")],
                order_by=[_empty("lead_name").asc(), *newest_first],
            ),
            latest_phone=Window(
                FirstValue("lead_phone"),
                partition_by=[F("lead_key")],
                order_by=[_empty("lead_phone").asc(), *newest_first],
            ),
        )
        .filter(person_row=1)
        .order_by()
    )
    return {row.lead_key: row for row in rows}


def _sites_and_channels(keys: list[str]) -> dict[str, tuple[list[LeadSite], list[str]]]:
    found: dict[str, tuple[dict[int, str], set[str]]] = {}
    if keys:
        rows = (
            person_sessions()
            .filter(lead_key__in=keys)
            .order_by()
            .values_list("lead_key", "site_id", "site__name", "channel")
            .distinct()
        )
        for key, site_id, site_name, channel in rows:
            sites, channels = found.setdefault(key, ({}, set()))
            if site_id is not None:
                sites[site_id] = site_name
            channels.add(channel)
    return {
        key: (
            sorted((LeadSite(id=i, name=n) for i, n in sites.items()), key=lambda s: s.name),
            sorted(channels),
        )
        for key, (sites, channels) in found.items()
    }


def _leads(groups: Iterable[Mapping[str, Any]]) -> list[Lead]:
    """Leads for these group rows, in their order: two queries, whatever their number."""
    groups = list(groups)
    keys = [g["lead_key"] for g in groups]
    latest = _latest_sessions(keys)
    places = _sites_and_channels(keys)
    leads = []
    for group in groups:
        key = group["lead_key"]
        session = latest.get(key)
        if session is None:  # trashed between the two queries
            continue
        sites, channels = places.get(key, ([], []))
        leads.append(
            Lead(
                key=key,
                email=session.lead_email,
                name=session.latest_name,  # type: ignore[attr-defined]
                phone=session.latest_phone,  # type: ignore[attr-defined]
                first_seen=group["first_seen"],
                last_seen=group["last_seen"],
                last_captured_at=group["last_captured_at"],
                conversations=group["conversations"],
                latest=session,
                sites=sites,
                channels=channels,
            )
        )
    return leads


def leads_count(filters: SessionFilters) -> int:
    """How many people have a conversation matching `filters`."""
    matching = sessions_filter(filters).exclude(lead_key="")
    if _archive_only(filters):
        # The same sessions, without sessions_filter's joins and annotations, so PostgreSQL
        # can answer from the person index alone.
        matching = person_sessions()
        if filters.archive != ARCHIVE_ALL:
            matching = matching.filter(archive_status=filters.archive)
    # DISTINCT in a subquery rather than COUNT(DISTINCT): PostgreSQL hashes the former and
    # always sorts for the latter.
    return matching.order_by().values("lead_key").distinct().count()


def leads_page(
    filters: SessionFilters,
    *,
    ordering: str = DEFAULT_LEAD_ORDERING,
    page: int = 1,
    page_size: int = 25,
) -> LeadPage:
    """One page of people with a conversation matching `filters`. Four queries.

    A page past the last is empty (as the sessions list's): people archived or trashed while a
    client pages through must not turn its next request into an error.
    """
    count = leads_count(filters)
    start = (page - 1) * page_size
    groups = list(_groups(filters, ordering)[start : start + page_size]) if start < count else []
    return LeadPage(leads=_leads(groups), count=count, page=page, page_size=page_size)


def leads_iter(filters: SessionFilters, *, ordering: str = DEFAULT_LEAD_ORDERING) -> Iterator[Lead]:
    """Every matching person, for exports: groups from a cursor, two queries per LEADS_CHUNK."""
    chunk: list[Mapping[str, Any]] = []
    for group in _groups(filters, ordering).iterator(chunk_size=LEADS_CHUNK):
        chunk.append(group)
        if len(chunk) == LEADS_CHUNK:
            yield from _leads(chunk)
            chunk = []
    if chunk:
        yield from _leads(chunk)


def is_lead_key(value: str) -> bool:
    return bool(_LEAD_KEY.match(value))


def lead_detail(*, key: str) -> Lead:
    """One person by key (three queries). Raises ChatSession.DoesNotExist for no such person."""
    groups = list(
        person_sessions()
        .filter(lead_key=key)
        .order_by()
        .values("lead_key")
        .annotate(
            first_seen=Min("started_at"),
            last_seen=Max("last_activity_at"),
            last_captured_at=Max("lead_captured_at"),
            conversations=Count("id"),
        )
    )
    leads = _leads(groups)
    if not leads:
        raise ChatSession.DoesNotExist("No person with this key.")
    return leads[0]


def lead_sessions(*, key: str) -> QuerySet[ChatSession]:
    """A person's conversations (archived ones too, not the trash), newest first, as list rows."""
    return (
        person_sessions()
        .filter(lead_key=key)
        .select_related("site")
        .annotate(error_count=error_count_subquery(unresolved_only=True))
        .order_by("-started_at", "-id")
    )
