"""The QA panel of the session page as a form: which button, and the texts it carries.

The form checks the shape of a submit only. Who may write which text and which move is legal from
the session's current status is decided once, by `qa.services.qa_review_submit` and the services
it calls, so a crafted POST meets the same refusals as the page.
"""

from typing import Any

from django import forms

from qa.services import REVIEW_DECISIONS, REVIEW_SAVE

# Each decision has a "& review next" twin: the button's value is "<decision>+next".
NEXT_SUFFIX = "+next"
ACTION_CHOICES = [
    (value, value)
    for decision in REVIEW_DECISIONS
    for value in (decision, f"{decision}{NEXT_SUFFIX}")
]
# The textareas' maxlength: what the browser lets a person type, checked here for crafted posts.
TEXT_MAX_LENGTH = 10_000


class ReviewTextField(forms.CharField):
    """A textarea's text with Windows line ends made "\\n" before the length is checked.

    Browsers submit "\\r\\n" but count a line end as one character against `maxlength`: without
    this a note the browser accepted could be refused as too long.
    """

    def to_python(self, value: Any) -> str | None:
        text = super().to_python(value)
        return text.replace("\r\n", "\n") if text else text


class QAReviewForm(forms.Form):
    qa_action = forms.ChoiceField(
        choices=ACTION_CHOICES,
        required=False,  # a bare submit (Enter in a field) saves, as the first buttons did
        error_messages={"invalid_choice": "Unknown QA action %(value)r."},
    )
    qa_notes = ReviewTextField(
        label="QA note",
        required=False,
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "What did the AI get right or wrong?"}
        ),
    )
    dev_feedback = ReviewTextField(
        label="Developer feedback",
        required=False,
        max_length=TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What was changed in the agent?"}),
    )

    # review_version of the session as the page showed it: a decision on a stale page is refused.
    qa_version = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        action = cleaned.get("qa_action") or REVIEW_SAVE
        cleaned["decision"] = action.removesuffix(NEXT_SUFFIX)
        cleaned["review_next"] = action.endswith(NEXT_SUFFIX)
        # A box the page did not show (feedback for a reviewer) is absent from the POST: None,
        # "leave it alone", unlike an emptied box ("").
        for name in ("qa_notes", "dev_feedback"):
            if name not in self.data:
                cleaned[name] = None
        return cleaned
