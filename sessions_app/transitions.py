"""The steps every state transition shares: lock the row, check the move, hand the state back;
and the claim by which a worker takes rows (the outbox, the channel inboxes).

Sessions (completion, archive, trash), QA moves and the outbox's people's actions all read the
same way (STYLE.md: state changes): inside `transaction.atomic()` the service re-reads the row
with `lock`, refuses a move its allowed-moves table does not list with `check_move`, saves, writes
its history row, and `copy_state` keeps the caller's instance in step with what was saved.
"""

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.db.models import Q, QuerySet

from sessions_app.errors import TransitionNotAllowed

ModelT = TypeVar("ModelT", bound=models.Model)


def lock(instance: ModelT, *, related: Sequence[str] = ()) -> ModelT:
    """`instance`'s row read again and locked (SELECT ... FOR UPDATE) until the transaction ends.

    Call it inside `transaction.atomic()`: the decision a service takes must be on the row as it
    is now, not as the caller read it. `related` rows come in the same query, unlocked
    (FOR UPDATE OF the row alone), so a lock on a delivery never queues on its shared endpoint.
    Raises the model's DoesNotExist when the row is gone.
    """
    manager = type(instance)._default_manager
    if not related:
        return manager.select_for_update().get(pk=instance.pk)
    return manager.select_for_update(of=("self",)).select_related(*related).get(pk=instance.pk)


def quoted(status: str) -> str:
    """'archived', also for a TextChoices member (whose repr would be ArchiveStatus.ARCHIVED)."""
    return repr(str(status))


@dataclass(frozen=True)
class MoveWording:
    """How a refused move of one kind of row is worded: "Cannot move <what> from <a> to <b>."

    `label` names the current and target status; `list_allowed` adds "Allowed from <a>: ..."
    with each allowed status named by `list_label`, in `order` (sorted when not given); `hints`
    adds a sentence after a move from the status it is keyed by.
    """

    what: str
    label: Callable[[str], str] = quoted
    list_allowed: bool = True
    list_label: Callable[[str], str] = str
    order: Sequence[str] | None = None
    hints: Mapping[str, str] = field(default_factory=dict)

    def refusal(self, current: str, target: str, allowed: Collection[str]) -> str:
        message = f"Cannot move {self.what} from {self.label(current)} to {self.label(target)}."
        if self.list_allowed:
            if self.order is None:
                listed = sorted(allowed)
            else:
                listed = [status for status in self.order if status in allowed]
            names = ", ".join(self.list_label(status) for status in listed) or "none"
            message += f" Allowed from {self.label(current)}: {names}."
        if current in self.hints:
            message += f" {self.hints[current]}"
        return message


def check_move(
    table: Mapping[str, Collection[str]], current: str, target: str, *, wording: MoveWording
) -> None:
    """Raise TransitionNotAllowed unless `table` allows `current -> target`."""
    allowed = table.get(current, set())
    if target not in allowed:
        raise TransitionNotAllowed(wording.refusal(current, target, allowed))


def copy_state(source: ModelT, target: ModelT) -> None:
    """Keep the caller's instance in step with the row a service locked and saved."""
    if source is not target:
        target.__dict__.update(
            {k: v for k, v in source.__dict__.items() if k != "_state" and not k.startswith("_")}
        )


def claim(
    candidates: QuerySet[ModelT], *, due: Q, values: Mapping[str, Any], limit: int
) -> list[Any]:
    """Claim up to `limit` of `candidates` for one worker: set `values` (a status, a lease, a
    fresh claim token) on them in one short transaction; returns the primary keys picked.

    The outbox and the channel inboxes claim this way. On PostgreSQL rows another worker holds
    are skipped, not waited for (`of=self`: rows joined in stay unlocked, or every worker would
    queue on a shared one). SQLite has no row locks: the UPDATE re-checks `due` in its WHERE,
    so a row another worker claimed between the SELECT and the UPDATE no longer matches. Read
    the claimed rows back by their claim token: only those were really taken.
    """
    manager = candidates.model._default_manager
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            picked = list(
                candidates.select_for_update(skip_locked=True, of=("self",)).values_list(
                    "pk", flat=True
                )[:limit]
            )
            if picked:
                manager.filter(pk__in=picked).update(**values)
        else:
            picked = list(candidates.values_list("pk", flat=True)[:limit])
            if picked:
                manager.filter(due, pk__in=picked).update(**values)
    return picked
