"""`env:NAME` agent secrets: read from the environment, but only from variables meant for it.

A site's agent secret may be stored as `env:NAME` to keep the key out of the database. Without a
limit that reads ANY variable into an outgoing header (`env:SECRET_KEY` once went to an n8n
webhook as its auth header), so an admin, or anyone who can write a site row, could exfiltrate
the server's own secrets. Only names with the prefix below are read, plus `OPENAI_API_KEY`,
which the docs named as the example before the prefix existed.
"""

from __future__ import annotations

import os
import re

ENV_PREFIX = "LEADCHAT_AGENT_"
LEGACY_ENV_NAMES = frozenset({"OPENAI_API_KEY"})
_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class AgentSecretError(ValueError):
    pass


def env_name(secret: str) -> str | None:
    """NAME of an `env:NAME` secret, or None for a secret stored as is."""
    return secret[4:].strip() if secret.startswith("env:") else None


def env_name_problem(name: str) -> str | None:
    """Why `env:name` may not be used, or None."""
    if not _NAME.match(name):
        return f"{name!r} is not an environment variable name (A-Z, 0-9 and _)."
    if not name.startswith(ENV_PREFIX) and name not in LEGACY_ENV_NAMES:
        return (
            f"env:{name} is not allowed: agent secrets may only be read from variables "
            f"named {ENV_PREFIX}... (or OPENAI_API_KEY), e.g. env:{ENV_PREFIX}N8N_AUTH."
        )
    return None


def agent_secret_resolve(secret: str) -> str:
    """The secret itself: as stored, or read from an allowed environment variable."""
    name = env_name(secret)
    if name is None:
        return secret
    problem = env_name_problem(name)
    if problem:
        raise AgentSecretError(problem)
    value = os.environ.get(name)
    if value is None:
        raise AgentSecretError(f"The agent secret's environment variable {name} is not set.")
    return value
