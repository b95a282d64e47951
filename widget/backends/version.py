"""The agent version of a reply: which backend, which model, and a hash of its prompt and config.

Computed here, once, for every path that stores an AI message (the widget, Messenger, the
greeting, the QA replay), so "issue rate by agent version" compares like with like. The hash is
of what decides the answer: the backend's name, the site's `agent_config` with anything that
looks like a credential left out, and the prompt the backend really sends (the site's own, or
the built-in default: changing the default in code is a new version too). The site's agent
secret is never part of it (it is not in `agent_config`), so the hash reveals nothing and does
not change when a key is rotated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessions_app.services import AgentVersionFields

# Config keys whose values are credentials, not behaviour: never hashed (a hash of a short
# password can be brute-forced) and rotating one is not a new agent.
SECRET_KEY_PARTS = ("secret", "password", "token", "api_key", "apikey")
HASH_LENGTH = 16  # hex characters: 64 bits, plenty to tell a site's versions apart


@dataclass(frozen=True)
class AgentVersion:
    backend: str
    model: str
    config_hash: str

    def as_fields(self) -> AgentVersionFields:
        """`message_add`'s keyword arguments for the stored message."""
        return {
            "agent_backend": self.backend,
            "agent_model": self.model,
            "agent_config_hash": self.config_hash,
        }

    @property
    def label(self) -> str:
        return f"{self.backend} · {self.model or '-'} · {self.config_hash}"


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _effective_prompt(backend: str, config: dict[str, Any]) -> str:
    """The prompt the backend sends: the site's own or the backend's built-in default."""
    if backend == "openai":
        from widget.backends.openai_compatible import DEFAULT_SYSTEM_PROMPT, SAVE_LEAD_TOOL

        prompt = str(config.get("system_prompt") or DEFAULT_SYSTEM_PROMPT)
        return prompt + json.dumps(SAVE_LEAD_TOOL, sort_keys=True)
    return ""  # n8n keeps its prompt in the workflow; the scripted flow's is its config


def agent_config_hash(backend: str, config: dict[str, Any] | None) -> str:
    behaviour = {str(k): v for k, v in sorted((config or {}).items()) if not _is_secret_key(str(k))}
    document = json.dumps(
        {"backend": backend, "config": behaviour, "prompt": _effective_prompt(backend, behaviour)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(document.encode()).hexdigest()[:HASH_LENGTH]


def agent_version(*, backend: str, config: dict[str, Any] | None, model: str = "") -> AgentVersion:
    """The version of `backend` run with `config`; `model` is what the reply named, else the
    config's `model` (n8n may not say), else the backend's name for the scripted flow."""
    config = config or {}
    named = model or str(config.get("model") or "")
    if not named and backend == "scripted":
        from widget.backends.scripted import SCRIPTED_MODEL

        named = SCRIPTED_MODEL
    return AgentVersion(
        backend=backend[:32], model=named[:200], config_hash=agent_config_hash(backend, config)
    )
