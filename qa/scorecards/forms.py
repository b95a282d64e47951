"""The scorecard part of the QA panel's POST, parsed into a `ScorecardInput`.

Its fields are made per criterion (`score_<id>`), so it is parsed by hand rather than declared.
Only the shape is checked here (whole numbers); ranges, unknown or inactive criteria and
categories are refused by `qa.scorecards.services`, so a crafted POST meets the same refusals as
the page.
"""

from django.http import QueryDict

from qa.scorecards.services import LEAD_FIELD_NAMES, ScorecardInput

# The panel's hidden marker: a POST without it (an older page, a script) leaves the scorecard
# alone, unlike a POST with it and every box left blank (which clears the reviewer's card).
MARKER = "scorecard"
SCORE_PREFIX = "score_"
CATEGORY = "category"
VERDICT_PREFIX = "verdict_"


class ScorecardInputError(ValueError):
    pass


def _whole_number(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ScorecardInputError(f"{what} must be a whole number, not {value[:40]!r}.") from None


def scorecard_input(post: QueryDict) -> ScorecardInput | None:
    """The scorecard `post` carried, or None when the page did not show one."""
    if MARKER not in post:
        return None
    scores: dict[int, int | None] = {}
    verdicts: dict[str, str] = {}
    for key in post:
        if key.startswith(SCORE_PREFIX):
            criterion_id = _whole_number(key.removeprefix(SCORE_PREFIX), "A criterion's id")
            value = post.get(key, "").strip()
            scores[criterion_id] = _whole_number(value, "A score") if value else None
        elif key.startswith(VERDICT_PREFIX):
            name = key.removeprefix(VERDICT_PREFIX)
            if name not in LEAD_FIELD_NAMES:
                raise ScorecardInputError(f"{name[:40]!r} is not a lead field a reviewer judges.")
            verdicts[name] = post.get(key, "").strip()
    categories = [_whole_number(v, "A failure category's id") for v in post.getlist(CATEGORY)]
    return ScorecardInput(scores=scores, category_ids=categories, verdicts=verdicts)
