"""Moving through the reviewer's list: the session after (or before) the current one.

"& review next", the Next / Previous links and their keys follow the list the reviewer came from
(its filters, status filter included, its search and its order), skipping sessions someone else
has claimed. The neighbour is found by keyset on the list's order (started_at, then the key):
an indexed lookup, no OFFSET, the same cost at 10 sessions and at a million.
"""

from collections.abc import Collection, Sequence

from django.db.models import Q, QuerySet
from django.db.models.expressions import Combinable

from sessions_app.models import ChatSession


def _keyset(ordering: Sequence[str | Combinable]) -> tuple[bool, bool] | None:
    """(started_at descending, key descending) for a list ordered by start then key; None for
    an order the keyset does not cover."""
    # The admin repeats the queryset's own ordering after its own: compare without repeats.
    parts = tuple(dict.fromkeys(str(part) for part in ordering))
    if len(parts) < 2 or parts[0].lstrip("-") != "started_at":
        return None
    if parts[1].lstrip("-") not in {"pk", "id"}:
        return None
    return parts[0].startswith("-"), parts[1].startswith("-")


def session_beside(
    queryset: QuerySet[ChatSession],
    *,
    current: ChatSession,
    ordering: Sequence[str | Combinable],
    backwards: bool = False,
    skip_ids: Collection[int] = (),
) -> ChatSession | None:
    """The session after `current` in `queryset` as ordered by `ordering` (before it when
    `backwards`), leaving out `skip_ids` (sessions found claimed meanwhile).

    Going forward, past the end the list wraps to its first session ("Queue clear" means the
    list has no other session at all); going back stops at the top. `queryset` is the list
    itself (the changelist's queryset, filters applied), minus whatever the caller excludes.
    """
    candidates = queryset.exclude(pk=current.pk)
    if skip_ids:
        candidates = candidates.exclude(pk__in=list(skip_ids))
    keys = _keyset(ordering)
    if keys is None:
        # No keyset for this order: its first session, as the list shows it.
        return None if backwards else candidates.order_by(*ordering).first()
    started_desc, key_desc = keys
    if backwards:
        started_desc, key_desc = not started_desc, not key_desc
    order = ("-started_at" if started_desc else "started_at", "-pk" if key_desc else "pk")
    started_past = "started_at__lt" if started_desc else "started_at__gt"
    key_past = "pk__lt" if key_desc else "pk__gt"
    following = (
        candidates.filter(
            Q(**{started_past: current.started_at})
            | Q(started_at=current.started_at, **{key_past: current.pk})
        )
        .order_by(*order)
        .first()
    )
    if following is not None or backwards:
        return following
    return candidates.order_by(*order).first()
