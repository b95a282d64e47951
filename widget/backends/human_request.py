"""Does a visitor's message ask for a person? A small phrase table, matched on whole words.

The scripted agent asks this about every message, and the widget asks it when a network backend
failed (the visitor who wanted a person should not lose that because n8n is down). n8n and the
OpenAI-compatible backend decide for themselves (`{"handoff": true}`, the `request_human` tool).

The table is phrases, not words: "agent" alone is a request only when it is (nearly) the whole
message, because "the agent said my order shipped" or "I'm a real estate agent" are not. Text is
compared case- and accent-free ("à" is "a", "alguém" is "alguem"), word by word, so "agent"
never matches inside "management" and "Mensch" never inside "Menschenrechte".

Languages: those of the widget (English, Spanish, Portuguese, French, German).
"""

from __future__ import annotations

import re
import unicodedata

# Requests anywhere in a message ("Hi, can I talk to a human please?"). Regexes over the
# normalised text (lower case, no accents, words separated by single spaces); each is matched
# on word boundaries.
_A = r"(?:a |an |the |one |some |your )?"
REQUEST_PHRASES: dict[str, list[str]] = {
    "en": [
        rf"(?:talk|speak|chat|connect me|put me through) (?:to|with) {_A}"
        r"(?:human|person|people|agent|someone|somebody|anyone|representative|rep|operator"
        r"|staff|team member|real person|live person|live agent|human being)",
        r"real (?:person|human|people)",
        r"live (?:person|agent|human|chat with a person)",
        r"human (?:agent|being|support|operator)",
        rf"(?:want|need|get|give me|like) {_A}(?:human|real person|live agent|representative)",
        r"(?:is there|are there) (?:a |any )?(?:human|real person|person) (?:here|there|available)",
    ],
    "es": [
        r"(?:hablar|conversar|chatear) con (?:un |una |el |la |alguna )?"
        r"(?:humano|humana|persona|agente|asesor|asesora|operador|operadora|alguien)",
        r"persona (?:real|de verdad)",
        r"(?:un |una )?(?:agente|asesor) humano",
        r"(?:quiero|necesito|puedo) (?:un |una )?(?:humano|persona real|agente)",
    ],
    "pt": [
        r"falar com (?:um |uma |o |a |algum |alguma )?"
        r"(?:humano|humana|pessoa|atendente|agente|alguem|operador|operadora)",
        r"pessoa (?:real|de verdade)",
        r"atendente humano",
        r"atendimento humano",
        r"(?:quero|preciso de|posso ter) (?:um |uma )?(?:humano|pessoa real|atendente)",
    ],
    "fr": [
        r"parler (?:a|avec) (?:un |une |le |la |l')?"
        r"(?:humain|humaine|personne|agent|conseiller|conseillere|operateur|operatrice"
        r"|quelqu'un|quelqu un)",
        r"(?:vraie|vrai) personne",
        r"personne reelle",
        r"(?:un )?(?:etre|agent|conseiller) humain",
        r"(?:je veux|je voudrais|j'aimerais) (?:un |une )?(?:humain|vraie personne|conseiller)",
    ],
    "de": [
        r"mit (?:einem |einer |einen |dem |der |jemandem |jemand )?"
        r"(?:menschen|mensch|mitarbeiter|mitarbeiterin|berater|beraterin|person|agenten"
        r"|jemandem|jemand)?(?: vom team| aus dem team)? (?:sprechen|reden|chatten)",
        r"(?:echte|echten|realen|reale) (?:person|menschen|mensch)",
        r"(?:ein |einen )?(?:menschlichen|menschlicher) (?:mitarbeiter|berater|agenten)",
        r"(?:ich will|ich mochte|ich brauche) (?:einen |eine )?"
        r"(?:menschen|mitarbeiter|echte person)",
    ],
}
# Words that are a request when they are the whole message, with little around them
# ("agent", "Agent please!", "humano, por favor", "un conseiller ?").
BARE_WORDS = {
    "human",
    "agent",
    "person",
    "operator",
    "representative",
    "humano",
    "agente",
    "asesor",
    "persona",
    "atendente",
    "pessoa",
    "humain",
    "conseiller",
    "mensch",
    "mitarbeiter",
    "berater",
}
BARE_FILLER = {
    "a",
    "an",
    "the",
    "please",
    "pls",
    "plz",
    "now",
    "un",
    "una",
    "um",
    "uma",
    "une",
    "le",
    "la",
    "por",
    "favor",
    "s'il",
    "vous",
    "plait",
    "bitte",
    "svp",
    "einen",
    "ein",
    "eine",
    "hi",
    "hello",
    "hola",
    "ola",
    "bonjour",
    "hallo",
}

_REQUEST = re.compile(
    "|".join(rf"\b(?:{phrase})\b" for phrases in REQUEST_PHRASES.values() for phrase in phrases)
)
_WORD = re.compile(r"[\w']+")


def normalize(text: str) -> str:
    """Lower case, accents dropped, curly apostrophes straight, words joined by one space."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'").casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(plain))


def asks_for_human(text: str) -> bool:
    """Whether `text` asks to talk to a person (see the module's docstring for the rules)."""
    words = normalize(text)
    if not words:
        return False
    if _REQUEST.search(words):
        return True
    tokens = words.split()
    return (
        len(tokens) <= 6
        and any(token in BARE_WORDS for token in tokens)
        and all(token in BARE_WORDS or token in BARE_FILLER for token in tokens)
    )
