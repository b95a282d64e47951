"""The scorecard columns of the QA results export (qa/export.py; formula-safe like every cell).

A session may have several reviewers' scorecards: a cell holding more than one names each
reviewer ("rhea: correct | sam: wrong"); with one reviewer it is the value alone. Reads the
prefetched `scorecards` and `annotations` (qa.scorecards.selectors.export_prefetches): no
query per row.
"""

from django.utils import timezone

from qa.scorecards.models import LEAD_FIELDS, Scorecard
from qa.scorecards.services import score_label
from sessions_app.models import ChatSession

SCORECARD_COLUMNS = [
    "scorecard_reviewers",
    "scores",
    "failure_categories",
    *(f"lead_{name}_verdict" for name, _label in LEAD_FIELDS),
    "annotations",
]


def _reviewer(card: Scorecard) -> str:
    return card.reviewer.username if card.reviewer is not None else "(deleted user)"


def _per_reviewer(cards: list[Scorecard], value_of) -> str:
    values = [(card, value_of(card)) for card in cards]
    if len(values) == 1:
        return values[0][1]
    return " | ".join(f"{_reviewer(card)}: {value}" for card, value in values if value)


def scorecard_cells(session: ChatSession) -> list[str]:
    cards = list(session.scorecards.all())
    scores = _per_reviewer(
        cards,
        lambda card: ", ".join(
            f"{s.criterion.name} {score_label(s.criterion, s.value)}" for s in card.scores.all()
        ),
    )
    categories: dict[int, str] = {}
    for card in cards:
        for category in card.categories.all():
            categories.setdefault(category.pk, category.name)
    verdicts = [
        _per_reviewer(cards, lambda card, name=name: getattr(card, f"{name}_verdict"))
        for name, _label in LEAD_FIELDS
    ]
    annotations = "\n".join(
        f"[{timezone.localtime(a.message.created_at):%Y-%m-%d %H:%M:%S}] "
        f"{a.by.username if a.by else '(deleted user)'}: {a.note}"
        + (f" (expected reply: {a.expected_reply})" if a.expected_reply else "")
        for a in session.annotations.all()
    )
    return [
        ", ".join(_reviewer(card) for card in cards),
        scores,
        "; ".join(categories.values()),
        *verdicts,
        annotations,
    ]
