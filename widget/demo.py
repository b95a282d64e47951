"""Demo data: a site and a realistic month of conversations, for `manage.py seed_demo`.

Rows are bulk-created with back-dated times rather than replayed through the services: the
services stamp "now" and would queue a webhook for every historical lead.
"""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from sessions_app.leads import lead_key
from sessions_app.models import (
    ArchiveStatus,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    DeliveryState,
    MessageRole,
    QAStatus,
)
from widget.i18n import site_greeting
from widget.models import Site

DEMO_SITE_KEY = "demo-landing"
DEMO_SITE_NAME = "Demo landing page"
DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Inès",
    "Jonas",
    "Kavya",
    "Liam",
    "Maya",
    "Noah",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tala",
]
LAST_NAMES = [
    "Silva",
    "Okafor",
    "Martin",
    "Ivanov",
    "Schmidt",
    "Haddad",
    "Kim",
    "Tanaka",
    "Dubois",
    "Berg",
    "Rao",
    "Murphy",
    "Cohen",
    "Garcia",
    "Adeyemi",
    "Patel",
    "Lopez",
    "Novak",
]
NEEDS = [
    "I'd like a quote for your premium plan.",
    "Do you offer a free trial?",
    "How does the onboarding work for a team of 10?",
    "Can you integrate with our CRM?",
    "What are your prices for small businesses?",
    "I need help choosing between the starter and pro plans.",
    "Is there a discount for annual billing?",
]
PAGES = [
    "https://www.example.com/",
    "https://www.example.com/pricing",
    "https://www.example.com/landing/spring-offer",
    "https://www.example.com/landing/free-trial",
    "https://www.example.com/blog/lead-generation-tips",
]
UTM_SOURCES = [("google", "cpc"), ("facebook", "paid_social"), ("newsletter", "email"), ("", "")]
QA_NOTES = [
    "Agent asked for the email twice.",
    "Greeting did not mention the spring offer.",
    "Reply about pricing was vague.",
]


def seed_demo(
    *, sessions: int = 240, days: int = 30, seed: int = 2026, origins: list[str] | None = None
) -> tuple[Site, int]:
    """Create the demo site and, if it has none yet, `sessions` conversations over `days` days.

    `origins` are added to the demo site's allowed origins (the origin `make run` serves on, so
    the demo page can frame the widget on any port). Returns the site and the number of sessions
    created (0 when already seeded).
    """
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        site, _ = Site.objects.get_or_create(
            public_key=DEMO_SITE_KEY,
            defaults={
                "name": DEMO_SITE_NAME,
                "public_title": "Acme",
                "allowed_origins": DEMO_ORIGINS,
                "greeting": "Hi! 👋 I'm the Acme assistant. What brings you here today?",
                "theme_color": "#6f42c1",
            },
        )
        missing = [o for o in (origins or []) if o not in site.allowed_origins]
        if missing:
            site.allowed_origins = [*site.allowed_origins, *missing]
            site.save(update_fields=["allowed_origins"])
        if site.sessions.exists():
            return site, 0

        session_rows: list[ChatSession] = []
        transcripts: list[list[tuple[datetime, tuple[str, str]]]] = []
        for _ in range(sessions):
            started = now - timedelta(days=rng.random() * days, minutes=rng.randint(0, 59))
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            outcome = rng.random()
            transcript = [(MessageRole.AI, site_greeting(site))]
            source, medium = rng.choice(UTM_SOURCES)
            row = ChatSession(
                site=site,
                page_url=rng.choice(PAGES),
                referrer=rng.choice(["https://www.google.com/", "https://www.facebook.com/", ""]),
                utm_source=source,
                utm_medium=medium,
                utm_campaign="spring-offer" if source else "",
                user_agent="Mozilla/5.0 (demo)",
                started_at=started,
            )
            if outcome < 0.08:
                # A visitor who opened the widget and left without a word.
                row.completion_status = CompletionStatus.INCOMPLETE
            else:
                row.ai_engaged = True
                transcript += [
                    (MessageRole.VISITOR, rng.choice(NEEDS)),
                    (MessageRole.AI, "Happy to help with that! May I have your name?"),
                    (MessageRole.VISITOR, f"{first} {last}"),
                    (MessageRole.AI, f"Thanks, {first}! What's the best email to reach you?"),
                ]
                if outcome < 0.55:
                    email = f"{first.lower()}.{last.lower()}@example.com".replace("é", "e")
                    email = email.replace("è", "e")
                    if rng.random() < 0.2:
                        transcript += [
                            (MessageRole.VISITOR, f"{first.lower()}@example"),
                            (
                                MessageRole.AI,
                                "That email looks incomplete: it needs a domain like "
                                "example.com. Could you check it?",
                            ),
                        ]
                    transcript += [
                        (MessageRole.VISITOR, email),
                        (
                            MessageRole.AI,
                            f"Perfect, thank you {first}! Someone from our team "
                            "will be in touch shortly.",
                        ),
                    ]
                    row.completion_status = CompletionStatus.COMPLETE
                    row.lead_name, row.lead_email = f"{first} {last}", email
                    # Written directly (the demo's history is made up), so the person key that
                    # lead_capture would set is set here: the Leads page groups by it.
                    row.lead_key = lead_key(email)
                    row.delivery_state = DeliveryState.DELIVERED
                elif started > now - timedelta(minutes=30):
                    row.completion_status = CompletionStatus.IN_PROGRESS
                else:
                    row.completion_status = CompletionStatus.INCOMPLETE
            minutes = sorted(rng.uniform(0.1, 6) for _ in transcript)
            times = [started + timedelta(minutes=m) for m in minutes]
            row.last_activity_at = row.updated_at = times[-1]
            if row.completion_status == CompletionStatus.COMPLETE:
                row.lead_captured_at = times[-1]
            elif row.completion_status == CompletionStatus.INCOMPLETE:
                row.ended_at = times[-1] + timedelta(minutes=30)
            row.message_count = len(transcript)
            qa_roll = rng.random()
            if started < now - timedelta(days=3) and qa_roll < 0.5:
                row.qa_status = rng.choice(
                    [
                        QAStatus.PASSED,
                        QAStatus.PASSED,
                        QAStatus.PASSED,
                        QAStatus.ISSUE,
                        QAStatus.FIXED,
                    ]
                )
                row.qa_status_at = started + timedelta(days=1)
                if row.qa_status in (QAStatus.ISSUE, QAStatus.FIXED):
                    row.qa_notes = rng.choice(QA_NOTES)
                    row.qa_notes_at = row.qa_status_at
                if row.qa_status == QAStatus.FIXED:
                    row.dev_feedback = "Prompt updated; the agent now confirms once."
                    row.dev_feedback_at = row.qa_status_at
            if started < now - timedelta(days=20) and rng.random() < 0.3:
                row.archive_status = ArchiveStatus.ARCHIVED
                row.archived_at = started + timedelta(days=7)
            session_rows.append(row)
            transcripts.append(list(zip(times, transcript, strict=True)))

        # Latencies are drawn first so each session's counters agree with its messages (the
        # bulk insert skips message_add, which keeps them in the live product).
        latencies = [
            [rng.randint(3, 40) if role == MessageRole.AI else None for _, (role, _) in transcript]
            for transcript in transcripts
        ]
        for row, timings in zip(session_rows, latencies, strict=True):
            timed = [ms for ms in timings if ms is not None]
            row.ai_replies_timed, row.ai_latency_ms_total = len(timed), sum(timed)
        created = ChatSession.objects.bulk_create(session_rows, batch_size=500)
        messages = [
            ChatMessage(
                session=session,
                role=role,
                text=text,
                created_at=at,
                metadata={} if ms is None else {"backend": "scripted", "latency_ms": ms},
            )
            for session, transcript, timings in zip(created, transcripts, latencies, strict=True)
            for (at, (role, text)), ms in zip(transcript, timings, strict=True)
        ]
        ChatMessage.objects.bulk_create(messages, batch_size=1000)
    return site, len(created)
