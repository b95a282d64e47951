"""A fake agent backend for tests: answers from a script, or fails the way it is told to.

    fake = FakeBackend(["Hello!", BackendError("down", permanent=False)])
    with backends.override("scripted", fake):
        ...

Each call pops the next item; a string becomes the reply text, an AgentReply is returned as is,
an exception is raised. Calls are recorded in `conversations`.
"""

from __future__ import annotations

from collections.abc import Iterable

from widget.backends.base import AgentReply, Conversation


class FakeBackend:
    name = "fake"
    history_messages = None  # the whole WIDGET_AGENT_HISTORY_MESSAGES window

    def __init__(self, script: Iterable[str | AgentReply | Exception] = ()) -> None:
        self.script = list(script)
        self.conversations: list[Conversation] = []

    def reply(self, conversation: Conversation) -> AgentReply:
        self.conversations.append(conversation)
        item = self.script.pop(0) if self.script else "OK."
        if isinstance(item, Exception):
            raise item
        if isinstance(item, AgentReply):
            return item
        return AgentReply(text=item, model="fake")
