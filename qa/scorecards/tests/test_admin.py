"""The scorecard in the console, through the test client: the QA panel's form, the annotate
form, the criteria and categories admin per role, the summary line and the export."""

import csv
import io
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from qa.models import (
    Criterion,
    CriterionScore,
    FailureCategory,
    MessageAnnotation,
    QAHistory,
    Scorecard,
)
from qa.scorecards.models import CriterionKind
from qa.scorecards.services import ScorecardInput, annotation_add, scorecard_save
from qa.tests.conftest import login
from sessions_app.models import ChatSession, MessageRole, QAStatus

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")
EXPORT = reverse("admin:sessions_app_chatsession_export")


def change_url(session: ChatSession) -> str:
    return reverse("admin:sessions_app_chatsession_change", args=[session.pk])


def annotate_url(session: ChatSession) -> str:
    return reverse("admin:sessions_app_chatsession_annotate", args=[session.pk])


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def ai_message(session: ChatSession):
    return session.messages.filter(role=MessageRole.AI).order_by("id").last()


# --- the QA panel -------------------------------------------------------------------------------


def test_review_form_shows_active_criteria_categories_and_lead_fields(
    qa_client, make_conversation, tone, accurate
):
    Criterion.objects.create(name="Retired criterion", active=False)
    FailureCategory.objects.filter(name="Policy").update(active=False)
    session = make_conversation(name="Dan Visitor", email="dan@example.com")
    html = qa_client.get(change_url(session)).content.decode()
    assert f'name="score_{tone.pk}"' in html
    assert f'name="score_{accurate.pk}"' in html
    assert "Retired criterion" not in html
    for name in ("Hallucination", "Wrong information", "Missed lead", "Tone", "Technical"):
        assert f"> {name}</label>" in html
    assert "> Policy</label>" not in html
    for field in ("name", "email", "phone", "need"):
        assert f'name="verdict_{field}"' in html
    assert "Dan Visitor" in html and "dan@example.com" in html
    assert 'name="scorecard"' in html


def test_reviewer_scores_flags_and_judges_the_lead_in_one_post(
    qa_client, qa_user, make_conversation, tone, accurate, hallucination
):
    session = make_conversation()
    response = qa_client.post(
        change_url(session),
        {
            "qa_action": "issue",
            "qa_notes": "Made up a discount",
            "scorecard": "1",
            f"score_{tone.pk}": "2",
            f"score_{accurate.pk}": "0",
            "category": [str(hallucination.pk)],
            "verdict_name": "correct",
            "verdict_email": "invented",
            "verdict_phone": "",
            "verdict_need": "wrong",
        },
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE
    card = Scorecard.objects.get(session=session, reviewer=qa_user)
    assert dict(card.scores.values_list("criterion__name", "value")) == {
        "Tone": 2,
        "Answered accurately": 0,
    }
    assert [c.name for c in card.categories.all()] == ["Hallucination"]
    assert card.verdicts() == [
        ("name", "Name", "correct"),
        ("email", "Email", "invented"),
        ("phone", "Phone", ""),
        ("need", "Need", "wrong"),
    ]
    # The page shows the reviewer's card again, and its history row.
    html = qa_client.get(change_url(session)).content.decode()
    assert re.search(rf'name="score_{tone.pk}".*?<option value="2" selected>', html, re.S)
    assert re.search(rf'value="{hallucination.pk}" checked', html)
    assert "Scores: Answered accurately fail, Tone 2/5." in html


def test_score_out_of_range_is_refused_with_a_message_and_keeps_what_was_typed(
    qa_client, make_conversation, tone
):
    session = make_conversation()
    response = qa_client.post(
        change_url(session),
        {"qa_action": "passed", "qa_notes": "kept", "scorecard": "1", f"score_{tone.pk}": "9"},
    )
    assert response.status_code == 200
    assert message_texts(response) == ["The score for 'Tone' must be 1 to 5; 9 is out of range."]
    session.refresh_from_db()
    assert (session.qa_status, session.qa_notes) == (QAStatus.UNCHECKED, "")
    assert not Scorecard.objects.exists()
    assert "kept</textarea>" in response.content.decode()


@pytest.mark.parametrize(
    "post, message",
    [
        ({"score_{tone}": "four"}, "Scorecard: A score must be a whole number, not 'four'."),
        ({"category": "x"}, "Scorecard: A failure category's id must be a whole number"),
        ({"verdict_shoe_size": "correct"}, "Scorecard: 'shoe_size' is not a lead field"),
    ],
)
def test_malformed_scorecard_is_refused_with_a_message(
    qa_client, make_conversation, tone, post, message
):
    session = make_conversation()
    data = {key.format(tone=tone.pk): value for key, value in post.items()}
    response = qa_client.post(
        change_url(session), {"qa_action": "passed", "scorecard": "1", **data}
    )
    assert response.status_code == 200
    assert message_texts(response)[0].startswith(message)
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED


def test_issue_without_a_category_is_refused_in_the_console(qa_client, make_conversation):
    session = make_conversation()
    response = qa_client.post(
        change_url(session), {"qa_action": "issue", "qa_notes": "wrong", "scorecard": "1"}
    )
    assert response.status_code == 200
    assert message_texts(response) == [
        "Pick at least one failure category before flagging an issue."
    ]
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
    # Nothing but the claim of the page shown again (qa.claims).
    assert not QAHistory.objects.exclude(kind=QAHistory.Kind.CLAIM).exists()


def test_unknown_or_inactive_category_is_refused_in_the_console(
    qa_client, make_conversation, hallucination
):
    session = make_conversation()
    hallucination.active = False
    hallucination.save()
    response = qa_client.post(
        change_url(session),
        {"qa_action": "issue", "qa_notes": "x", "scorecard": "1", "category": hallucination.pk},
    )
    assert response.status_code == 200
    assert "does not exist or is no longer used" in message_texts(response)[0]
    assert not Scorecard.objects.exists()


def test_other_reviewers_scorecards_are_shown_read_only(
    qa_client, make_conversation, make_user, tone, missed_lead
):
    session = make_conversation()
    other = make_user("qa", username="sam-qa")
    scorecard_save(
        session=session,
        by=other,
        card=ScorecardInput(
            scores={tone.pk: 5}, category_ids=[missed_lead.pk], verdicts={"email": "wrong"}
        ),
    )
    html = qa_client.get(change_url(session)).content.decode()
    assert "Other reviewers' scorecards" in html
    assert "sam-qa" in html and "Tone 5/5" in html and "Categories: Missed lead" in html
    assert "Email wrong" in html
    # Not the reader's own card: their boxes start empty.
    assert not re.search(r'<option value="5" selected>', html)


# --- annotations --------------------------------------------------------------------------------


def test_annotate_form_sits_outside_the_qa_form_and_only_on_ai_messages(
    qa_client, make_conversation
):
    session = make_conversation(visitor=("Hi", "Price?"))
    html = qa_client.get(change_url(session)).content.decode()
    forms = re.findall(r"<form[^>]*>", html)
    assert any('id="qa-annotate"' in f and annotate_url(session) in f for f in forms)
    ai_ids = list(session.messages.filter(role=MessageRole.AI).values_list("pk", flat=True))
    other_ids = list(session.messages.exclude(role=MessageRole.AI).values_list("pk", flat=True))
    for pk in ai_ids:
        assert f'name="message" value="{pk}"' in html
    for pk in other_ids:
        assert f'name="message" value="{pk}"' not in html


def test_reviewer_annotates_an_ai_message_and_sees_it_beside_the_message(
    qa_client, qa_user, make_conversation
):
    session = make_conversation()
    message = ai_message(session)
    response = qa_client.post(
        annotate_url(session),
        {
            "message": str(message.pk),
            f"note_{message.pk}": "Promised a discount we do not give",
            f"expected_{message.pk}": "Prices are on the pricing page.",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"{change_url(session)}#message-{message.pk}")
    assert message_texts(response) == ["Annotation added."]
    annotation = MessageAnnotation.objects.get()
    assert (annotation.message, annotation.by) == (message, qa_user)
    html = qa_client.get(change_url(session)).content.decode()
    item = re.search(rf'<li [^>]*id="message-{message.pk}">(.*?)</li>', html, re.S).group(1)
    assert "Promised a discount we do not give" in item
    assert "Prices are on the pricing page." in item
    history = html.split('id="panel-history"')[1]
    assert "Annotation" in history and "Promised a discount we do not give" in history


def test_annotating_a_visitor_message_is_refused_and_stores_nothing(qa_client, make_conversation):
    session = make_conversation()
    visitor = session.messages.filter(role=MessageRole.VISITOR).first()
    response = qa_client.post(
        annotate_url(session), {"message": visitor.pk, f"note_{visitor.pk}": "crafted"}
    )
    assert response.status_code == 302
    assert message_texts(response) == [
        "Annotations are pinned to the AI agent's messages only; this one is from the visitor."
    ]
    assert not MessageAnnotation.objects.exists()


@pytest.mark.parametrize("message", ["", "abc"])
def test_annotate_without_a_message_is_refused(qa_client, make_conversation, message):
    session = make_conversation()
    response = qa_client.post(annotate_url(session), {"message": message})
    assert message_texts(response) == ["Choose the AI message to annotate."]
    assert not MessageAnnotation.objects.exists()


def test_annotate_is_post_only_and_closed_to_those_who_cannot_review(
    qa_client, client, make_user, make_conversation
):
    session = make_conversation()
    assert qa_client.get(annotate_url(session)).status_code == 405
    viewer = make_user("qa", username="read-only")
    viewer.groups.clear()
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="sessions_app", codename="view_chatsession")
    )
    login(client, viewer)
    message = ai_message(session)
    response = client.post(
        annotate_url(session), {"message": message.pk, f"note_{message.pk}": "x"}
    )
    assert response.status_code == 403
    assert not MessageAnnotation.objects.exists()


# --- criteria and categories: admins edit, reviewers read --------------------------------------


def test_admin_defines_a_criterion_and_adds_a_category(admin_client_role):
    response = admin_client_role.post(
        reverse("admin:qa_criterion_add"),
        {
            "name": "Asked for the email at the right moment",
            "description": "After the need, before the goodbye.",
            "kind": CriterionKind.PASS_FAIL,
            "active": "on",
            "order": "3",
        },
    )
    assert response.status_code == 302
    assert Criterion.objects.get().kind == CriterionKind.PASS_FAIL
    response = admin_client_role.post(
        reverse("admin:qa_failurecategory_add"), {"name": "Language", "active": "on", "order": 90}
    )
    assert response.status_code == 302
    assert FailureCategory.objects.filter(name="Language", active=True).exists()


def test_admin_deactivates_a_category_and_cannot_delete_it(admin_client_role, hallucination):
    url = reverse("admin:qa_failurecategory_change", args=[hallucination.pk])
    response = admin_client_role.post(
        url, {"name": "Hallucination", "description": "", "order": "10"}
    )
    assert response.status_code == 302
    hallucination.refresh_from_db()
    assert not hallucination.active
    delete = reverse("admin:qa_failurecategory_delete", args=[hallucination.pk])
    assert admin_client_role.post(delete, {"post": "yes"}).status_code == 403
    assert FailureCategory.objects.filter(pk=hallucination.pk).exists()


def test_reviewer_reads_criteria_and_categories_but_cannot_change_them(qa_client, tone):
    assert qa_client.get(reverse("admin:qa_criterion_changelist")).status_code == 200
    assert qa_client.get(reverse("admin:qa_failurecategory_changelist")).status_code == 200
    response = qa_client.get(reverse("admin:qa_criterion_change", args=[tone.pk]))
    assert response.status_code == 200
    assert 'name="name"' not in response.content.decode()  # read-only view
    assert qa_client.get(reverse("admin:qa_criterion_add")).status_code == 403
    response = qa_client.post(
        reverse("admin:qa_criterion_change", args=[tone.pk]),
        {"name": "Renamed", "kind": "score", "order": "1"},
    )
    assert response.status_code == 403
    tone.refresh_from_db()
    assert tone.name == "Tone"


def test_agents_never_see_criteria(client, agent_user, tone):
    login(client, agent_user)
    response = client.get(reverse("admin:qa_criterion_changelist"))
    assert response.status_code == 302  # to the login: agents have no admin


# --- the export ---------------------------------------------------------------------------------


def test_export_holds_scores_categories_verdicts_and_annotations_formula_safe(
    qa_client, qa_user, make_user, make_conversation, tone, accurate, hallucination, missed_lead
):
    session = make_conversation()
    other = make_user("qa", username="sam-qa")
    scorecard_save(
        session=session,
        by=qa_user,
        card=ScorecardInput(
            scores={tone.pk: 4, accurate.pk: 1},
            category_ids=[hallucination.pk],
            verdicts={"name": "correct", "email": "correct"},
        ),
    )
    scorecard_save(
        session=session,
        by=other,
        card=ScorecardInput(
            scores={tone.pk: 2}, category_ids=[missed_lead.pk], verdicts={"name": "invented"}
        ),
    )
    message = ai_message(session)
    annotation_add(
        session=session,
        message_id=message.pk,
        by=qa_user,
        note='See,=HYPERLINK("http://evil.example")',
        expected_reply="@SUM(1)",
    )
    # Admins type category names: a formula there is neutralised like any visitor text.
    FailureCategory.objects.filter(pk=missed_lead.pk).update(name="=1+1")
    body = b"".join(qa_client.get(EXPORT, {"qa_status": "all"}).streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body, newline="")))
    assert row["scorecard_reviewers"] == "quinn-qa, sam-qa"
    assert row["scores"] == "quinn-qa: Answered accurately pass, Tone 4/5 | sam-qa: Tone 2/5"
    assert row["failure_categories"] == "Hallucination; '=1+1"
    assert row["lead_name_verdict"] == "quinn-qa: correct | sam-qa: invented"
    assert row["lead_email_verdict"] == "quinn-qa: correct"
    assert row["lead_phone_verdict"] == ""
    assert row["annotations"].endswith(
        'quinn-qa: See,\'=HYPERLINK("http://evil.example") (expected reply: @SUM(1))'
    )


def test_export_with_one_reviewer_has_plain_values(qa_client, qa_user, make_conversation, tone):
    session = make_conversation()
    scorecard_save(
        session=session,
        by=qa_user,
        card=ScorecardInput(scores={tone.pk: 3}, verdicts={"phone": "missing"}),
    )
    body = b"".join(qa_client.get(EXPORT, {"qa_status": "all"}).streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body, newline="")))
    assert (row["scores"], row["lead_phone_verdict"], row["annotations"]) == (
        "Tone 3/5",
        "missing",
        "",
    )


def test_export_queries_stay_flat_with_scorecards(
    qa_client, qa_user, make_conversation, tone, hallucination, django_assert_max_num_queries
):
    def export_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        response = qa_client.get(EXPORT, {"qa_status": "all"})
        with CaptureQueriesContext(connection) as ctx:
            b"".join(response.streaming_content)
        return len(ctx.captured_queries)

    def add(count: int) -> None:
        for _ in range(count):
            session = make_conversation()
            scorecard_save(
                session=session,
                by=qa_user,
                card=ScorecardInput(scores={tone.pk: 3}, category_ids=[hallucination.pk]),
            )
            annotation_add(session=session, message_id=ai_message(session).pk, by=qa_user, note="n")

    add(2)
    few = export_queries()
    add(20)
    assert export_queries() == few
    assert CriterionScore.objects.count() == 22


def test_saving_only_the_scorecard_says_so(qa_client, qa_user, make_conversation, tone):
    session = make_conversation()
    response = qa_client.post(
        change_url(session), {"qa_action": "save", "scorecard": "1", f"score_{tone.pk}": "5"}
    )
    assert response.status_code == 302
    assert message_texts(response) == ["Scorecard saved."]
    assert Scorecard.objects.get(session=session).scores.get().value == 5
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
    qa_client.get(change_url(session))  # shows (and so consumes) the message
    # The same card again changes nothing and says nothing.
    response = qa_client.post(
        change_url(session), {"qa_action": "save", "scorecard": "1", f"score_{tone.pk}": "5"}
    )
    assert message_texts(response) == []
    assert QAHistory.objects.filter(kind=QAHistory.Kind.SCORECARD).count() == 1
