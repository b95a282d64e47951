"""A site's language (issue 16): the catalogs, the frame page's texts, the scripted agent's
lines, the handoff and takeover lines, in English, Spanish, Portuguese, French and German.

The expected lines are written out here (not read from the catalogs), so a catalog that is not
compiled, not found or not used fails these tests.
"""

from __future__ import annotations

import ast
import gettext as stdlib_gettext
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from sessions_app.models import ChatSession, MessageRole
from sessions_app.takeover import session_handback, session_takeover
from widget.backends.base import AgentReply, Conversation, LeadFields, LeadRules, Turn
from widget.backends.scripted import ScriptedBackend
from widget.models import SiteLanguage
from widget.tests.conftest import ORIGIN
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

LANGUAGES = ["en", "es", "pt", "fr", "de"]
LOCALE = Path(settings.BASE_DIR) / "locale"
# In the catalogs because the admin's templates mark them; Django's own catalog has them.
NOT_OURS = {"Home", "Show all"}

# What the scripted agent says, language by language.
LINES = {
    "en": {
        "name": "Happy to help with that! May I have your name?",
        "email": "Thanks, Ana! What's the best email to reach you?",
        "decline_email": "No problem. Without an email we can't get back to you outside this "
        "chat, though. If you change your mind, what's the best email to reach you?",
        "decline_end": "No problem, I won't ask again. Your messages here are saved, and the "
        "team can read them. Thanks for stopping by, and have a good day!",
        "done": "Perfect, thank you Ana! Someone from our team will be in touch at "
        "ana@example.com shortly.",
        "handoff": "I've asked someone from the team to join this chat. They'll be with you "
        "shortly.",
        "ask_human": "Can I talk to a human?",
        "refuse": "no thanks",
        "quick": "I'd like a quote",
        "greeting": "Hi! 👋 How can we help you today?",
        "joined": "Ana from Acme Solar joined the chat",
        "left": "Ana left the chat; the assistant answers again",
    },
    "es": {
        "name": "¡Encantados de ayudarte con eso! ¿Cómo te llamas?",
        "email": "¡Gracias, Ana! ¿Cuál es el mejor correo para contactarte?",
        "decline_email": "No pasa nada. Eso sí, sin un correo no podemos responderte fuera de "
        "este chat. Si cambias de opinión, ¿cuál es el mejor correo para contactarte?",
        "decline_end": "No pasa nada, no volveré a preguntar. Tus mensajes quedan guardados "
        "aquí y el equipo puede leerlos. Gracias por pasarte, ¡que tengas un buen día!",
        "done": "¡Perfecto, gracias Ana! Alguien de nuestro equipo te escribirá a "
        "ana@example.com en breve.",
        "handoff": "He pedido a alguien del equipo que se una a este chat. Estará contigo en "
        "breve.",
        "ask_human": "Quiero hablar con una persona",
        "refuse": "No, gracias",
        "quick": "Quiero un presupuesto",
        "greeting": "¡Hola! 👋 ¿En qué podemos ayudarte hoy?",
        "joined": "Ana de Acme Solar se ha unido al chat",
        "left": "Ana ha salido del chat; el asistente vuelve a responder",
    },
    "pt": {
        "name": "Com todo o gosto! Qual é o seu nome?",
        "email": "Obrigado, Ana! Qual é o melhor email para o contactarmos?",
        "decline_email": "Sem problema. Mas sem um email não conseguimos responder fora desta "
        "conversa. Se mudar de ideias, qual é o melhor email para o contactarmos?",
        "decline_end": "Sem problema, não volto a perguntar. As suas mensagens ficam guardadas "
        "aqui e a equipa pode lê-las. Obrigado pela visita e tenha um bom dia!",
        "done": "Perfeito, obrigado Ana! Alguém da nossa equipa vai entrar em contacto através "
        "de ana@example.com em breve.",
        "handoff": "Pedi a alguém da equipa para entrar nesta conversa. Estará consigo em breve.",
        "ask_human": "Quero falar com uma pessoa",
        "refuse": "Não, obrigado",
        "quick": "Quero um orçamento",
        "greeting": "Olá! 👋 Como podemos ajudar hoje?",
        "joined": "Ana, de Acme Solar, entrou na conversa",
        "left": "Ana saiu da conversa; o assistente volta a responder",
    },
    "fr": {
        "name": "Avec plaisir ! Puis-je avoir votre nom ?",
        "email": "Merci, Ana ! Quelle est la meilleure adresse e-mail pour vous joindre ?",
        "decline_email": "Pas de souci. Sans e-mail, nous ne pourrons toutefois pas vous "
        "répondre en dehors de cette conversation. Si vous changez d'avis, quelle est la "
        "meilleure adresse e-mail pour vous joindre ?",
        "decline_end": "Pas de souci, je ne vous le redemanderai pas. Vos messages sont "
        "enregistrés ici et l'équipe peut les lire. Merci de votre visite et bonne journée !",
        "done": "Parfait, merci Ana ! Quelqu'un de notre équipe vous écrira très bientôt à "
        "ana@example.com.",
        "handoff": "J'ai demandé à quelqu'un de l'équipe de rejoindre cette conversation. Cette "
        "personne sera avec vous dans un instant.",
        "ask_human": "Je voudrais parler à une personne",
        "refuse": "Non merci",
        "quick": "Je voudrais un devis",
        "greeting": "Bonjour ! 👋 Comment pouvons-nous vous aider aujourd'hui ?",
        "joined": "Ana de Acme Solar a rejoint la conversation",
        "left": "Ana a quitté la conversation ; l'assistant répond de nouveau",
    },
    "de": {
        "name": "Gerne helfe ich Ihnen dabei! Wie ist Ihr Name?",
        "email": "Danke, Ana! Unter welcher E-Mail-Adresse erreichen wir Sie am besten?",
        "decline_email": "Kein Problem. Ohne E-Mail-Adresse können wir Ihnen allerdings nicht "
        "außerhalb dieses Chats antworten. Falls Sie es sich anders überlegen: Unter welcher "
        "E-Mail-Adresse erreichen wir Sie am besten?",
        "decline_end": "Kein Problem, ich frage nicht noch einmal. Ihre Nachrichten hier sind "
        "gespeichert, und das Team kann sie lesen. Danke für Ihren Besuch und einen schönen Tag!",
        "done": "Perfekt, danke Ana! Jemand aus unserem Team meldet sich in Kürze unter "
        "ana@example.com.",
        "handoff": "Ich habe jemanden aus dem Team gebeten, diesem Chat beizutreten. Gleich ist "
        "jemand für Sie da.",
        "ask_human": "Ich möchte mit einem Menschen sprechen",
        "refuse": "Nein danke",
        "quick": "Ich möchte ein Angebot",
        "greeting": "Hallo! 👋 Wie können wir Ihnen heute helfen?",
        "joined": "Ana von Acme Solar ist dem Chat beigetreten",
        "left": "Ana hat den Chat verlassen; der Assistent antwortet wieder",
    },
}


# --- The catalogs ------------------------------------------------------------------------------


def po_entries(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (no plurals or contexts: the catalogs use none)."""
    entries: dict[str, str] = {}
    current: dict[str, list[str]] = {}
    key = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#~"):
            continue
        if not line.strip():
            if "msgid" in current:
                entries["".join(current["msgid"])] = "".join(current.get("msgstr", []))
            current, key = {}, ""
        elif line.startswith(("msgid ", "msgstr ")):
            key, _, rest = line.partition(" ")
            current[key] = [ast.literal_eval(rest)]
        elif line.startswith('"') and key:
            current[key].append(ast.literal_eval(line))
    entries.pop("", None)  # the header
    return entries


def test_every_language_of_the_site_field_has_a_catalog_or_is_english():
    assert set(SiteLanguage.values) == set(LANGUAGES)
    for code in LANGUAGES[1:]:
        assert (LOCALE / code / "LC_MESSAGES" / "django.po").is_file(), code


@pytest.mark.parametrize("code", LANGUAGES[1:])
def test_catalog_translates_every_text_and_its_compiled_mo_is_up_to_date(code):
    folder = LOCALE / code / "LC_MESSAGES"
    po = po_entries(folder / "django.po")
    untranslated = {msgid for msgid, msgstr in po.items() if not msgstr}
    assert untranslated <= NOT_OURS, sorted(untranslated - NOT_OURS)
    with (folder / "django.mo").open("rb") as mo_file:
        mo = stdlib_gettext.GNUTranslations(mo_file)
    # The committed .mo is what Django reads: it must say what the .po says (run
    # `python manage.py compilemessages` after editing a .po, see the README).
    stale = {m: (s, mo.gettext(m)) for m, s in po.items() if s and mo.gettext(m) != s}
    assert stale == {}
    for msgid, msgstr in po.items():
        if msgstr:
            names = sorted(re.findall(r"%\(\w+\)s|%s", msgid))
            assert sorted(re.findall(r"%\(\w+\)s|%s", msgstr)) == names, msgid


# --- The scripted agent ------------------------------------------------------------------------


def converse(agent: ScriptedBackend, history: list[Turn], text: str, lead: LeadFields) -> Turn:
    history.append(Turn(role="visitor", text=text))
    reply: AgentReply = agent.reply(
        Conversation(
            session_id="s",
            site_name="Acme",
            config={},
            secret="",
            history=history,
            lead=lead,
            lead_rules=LeadRules(),
        )
    )
    turn = Turn(role="ai", text=reply.text, metadata=reply.extra)
    history.append(turn)
    return turn


@pytest.mark.parametrize("code", LANGUAGES)
def test_scripted_agent_asks_for_name_and_email_in_the_site_language(code):
    agent, history = ScriptedBackend(), [Turn(role="ai", text="Hi", metadata={"step": "need"})]
    with translation.override(code):
        assert converse(agent, history, "solar panels", LeadFields()).text == LINES[code]["name"]
        assert converse(agent, history, "Ana", LeadFields()).text == LINES[code]["email"]
        done = converse(agent, history, "ana@example.com", LeadFields(name="Ana"))
    assert done.text == LINES[code]["done"]


@pytest.mark.parametrize("code", LANGUAGES)
def test_scripted_agent_takes_no_for_an_answer_in_the_site_language(code):
    agent = ScriptedBackend()
    history = [Turn(role="ai", text="", metadata={"step": "email"})]
    lead = LeadFields(name="Ana")
    with translation.override(code):
        first = converse(agent, history, LINES[code]["refuse"], lead)
        last = converse(agent, history, LINES[code]["refuse"], lead)
    assert first.text == LINES[code]["decline_email"]
    assert last.text == LINES[code]["decline_end"]
    assert last.metadata["step"] == "declined"


def test_scripted_agent_explains_a_malformed_email_in_the_site_language():
    agent = ScriptedBackend()
    history = [Turn(role="ai", text="", metadata={"step": "email"})]
    with translation.override("es"):
        reply = converse(agent, history, "ana@example", LeadFields(name="Ana"))
    assert reply.text == (
        "Ese correo no parece correcto: Una dirección de correo necesita un nombre, una @ y un "
        "dominio, como nombre@ejemplo.com. ¿Puedes revisarlo?"
    )


# --- Through the widget's API: the site's language, whatever the browser asks --------------------


def language_site(code: str, **fields):
    return SiteFactory(
        public_key=f"lang-{code}",
        name="Internal: spring campaign",
        public_title="Acme Solar",
        language=code,
        greeting="",
        allowed_origins=[ORIGIN],
        **fields,
    )


@pytest.mark.parametrize("code", LANGUAGES)
def test_widget_conversation_and_handoff_speak_the_site_language(code, widget_client):
    language_site(code)
    # The visitor's browser asks for English: the site's language wins.
    start = widget_client.start(site_key=f"lang-{code}", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert start.status_code == 201, start.content
    data = start.json()
    sid, token = data["session_id"], data["visitor_token"]
    [greeting] = data["messages"]
    assert greeting["text"] == LINES[code]["greeting"]
    assert greeting["quick_replies"][0] == LINES[code]["quick"]

    reply = widget_client.say(sid, token, LINES[code]["quick"]).json()["messages"][-1]
    assert reply["text"] == LINES[code]["name"]
    handoff = widget_client.say(sid, token, LINES[code]["ask_human"]).json()["messages"][-1]
    assert handoff["text"] == LINES[code]["handoff"]
    assert ChatSession.objects.get(public_id=sid).human_requested_at is not None


def test_out_of_hours_handoff_names_the_days_in_the_site_language(widget_client):
    from datetime import time

    from django.utils import timezone

    # Open only on a day that is not today (UTC), so the request is out of hours.
    from widget.models import WEEKDAYS

    other_day = WEEKDAYS[(timezone.now().weekday() + 3) % 7]
    language_site(
        "de",
        opening_days=[other_day],
        opens_at=time(9, 0),
        closes_at=time(17, 0),
        hours_timezone="UTC",
    )
    sid, token = widget_client.started(site_key="lang-de")
    text = widget_client.say(sid, token, "Ich möchte mit einem Menschen sprechen").json()[
        "messages"
    ][-1]["text"]
    day = {
        "mon": "Mo",
        "tue": "Di",
        "wed": "Mi",
        "thu": "Do",
        "fri": "Fr",
        "sat": "Sa",
        "sun": "So",
    }
    assert text == (
        f"Unser Team ist gerade nicht erreichbar ({day[other_day]} 09:00-17:00 UTC), daher kann "
        "niemand dem Chat beitreten. Wir antworten Ihnen per E-Mail, sobald jemand da ist. "
        "Unter welcher E-Mail-Adresse erreichen wir Sie am besten?"
    )


@pytest.mark.parametrize("code", LANGUAGES)
def test_takeover_lines_speak_the_site_language_and_name_its_public_title(
    code, widget_client, make_user
):
    language_site(code)
    sid, _ = widget_client.started(site_key=f"lang-{code}")
    session = ChatSession.objects.get(public_id=sid)
    ana = make_user("agent", username="ana", first_name="Ana")
    session_takeover(session=session, by=ana)
    session_handback(session=session, by=ana)
    lines = list(
        session.messages.filter(role=MessageRole.SYSTEM).order_by("id").values_list("text", flat=1)
    )
    assert lines == [LINES[code]["joined"], LINES[code]["left"]]


def test_takeover_line_without_a_public_title_names_only_the_agent(widget_client, make_user):
    SiteFactory(public_key="untitled", public_title="", allowed_origins=[ORIGIN])
    sid, _ = widget_client.started(site_key="untitled")
    session = ChatSession.objects.get(public_id=sid)
    session_takeover(session=session, by=make_user("agent", username="ana", first_name="Ana"))
    assert session.messages.get(role=MessageRole.SYSTEM).text == "Ana joined the chat"


# --- The frame page --------------------------------------------------------------------------


def frame_config(client, key: str) -> tuple[str, dict]:
    html = client.get(f"/widget/{key}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    found = re.search(r'<script id="lc-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, html
    return html, json.loads(found.group(1))


def test_frame_page_speaks_the_site_language_and_shows_the_public_title(client):
    language_site("fr", theme="dark", greeting_bubble_seconds=5)
    html, config = frame_config(client, "lang-fr")

    assert '<html lang="fr" data-theme="dark">' in html
    assert "<h1>Acme Solar</h1>" in html
    assert "Internal: spring campaign" not in html
    assert "Nous répondons généralement en quelques secondes" in html
    assert ">Envoyer</button>" in html
    assert 'placeholder="Écrivez votre message…"' in html
    assert config["lang"] == "fr"
    assert config["title"] == "Acme Solar"
    assert config["greeting"] == "Bonjour ! 👋 Comment pouvons-nous vous aider aujourd'hui ?"
    assert config["bubbleAfter"] == 5
    assert config["t"]["offline"] == (
        "Vous semblez hors ligne. Votre message n'a pas été envoyé ; veuillez réessayer."
    )
    assert (
        config["t"]["retry"]
        == "Problème de connexion. Votre message est conservé ; nouvel essai dans %s s…"
    )


def test_frame_page_without_a_public_title_shows_a_neutral_one_never_the_internal_name(client):
    SiteFactory(
        public_key="untitled", name="Q3 Google Ads LP (internal)", public_title="", language="es"
    )
    html, config = frame_config(client, "untitled")

    assert "<h1>Habla con nosotros</h1>" in html
    assert "Q3 Google Ads" not in html
    assert config["bubbleAfter"] == 0  # off by default


# --- The site admin ----------------------------------------------------------------------------


def test_admin_edits_the_widget_look_fields_with_help_texts(client, admin_role_user):
    from widget.tests.test_admin import form_data

    client.force_login(admin_role_user)
    site = SiteFactory()
    page = client.get(f"/admin/widget/site/{site.pk}/change/").content.decode()
    for name in ("public_title", "language", "theme", "greeting_bubble_seconds"):
        assert f'name="{name}"' in page, name
    assert "the internal name above is never shown to visitors" in page
    assert "Empty or 0: no bubble." in page

    response = client.post(
        f"/admin/widget/site/{site.pk}/change/",
        form_data(
            public_title="Acme Solar",
            language="pt",
            theme="dark",
            greeting="",
            greeting_bubble_seconds="8",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    site.refresh_from_db()
    assert (site.public_title, site.language, site.theme) == ("Acme Solar", "pt", "dark")
    assert (site.greeting, site.greeting_bubble_seconds) == ("", 8)


@pytest.mark.parametrize(
    ("field", "value"),
    [("language", "it"), ("theme", "neon"), ("greeting_bubble_seconds", "-1")],
)
def test_admin_refuses_a_language_theme_or_delay_it_does_not_know(
    client, admin_role_user, field, value
):
    from widget.tests.test_admin import form_data

    client.force_login(admin_role_user)
    site = SiteFactory()
    response = client.post(f"/admin/widget/site/{site.pk}/change/", form_data(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors


def test_qa_replay_of_a_spanish_site_answers_as_the_visitor_was_answered():
    from qa.replay.sandbox import sandbox_run
    from widget.services import widget_message_post, widget_session_start

    site = language_site("es")
    session, _token, _ = widget_session_start(site=site, page_url=f"{ORIGIN}/")
    widget_message_post(session=session, text="Quiero un presupuesto")
    original = session.messages.filter(role=MessageRole.AI).order_by("id").last()

    outcome = sandbox_run(
        sandbox_id="replay-1",
        session=session,
        site=site,
        visitor_turns=list(session.messages.filter(role=MessageRole.VISITOR)),
        time_budget=10.0,
        token_budget=1000,
    )
    assert outcome.failure == ""
    assert [m.text for m in outcome.messages if m.role == MessageRole.AI] == [original.text]
    assert original.text == LINES["es"]["name"]
