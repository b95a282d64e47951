"""Domain errors raised by services. Views turn them into 4xx answers, commands into exit codes."""


class DomainError(Exception):
    """A request the domain refuses; the message is safe to show to the user."""


class TransitionNotAllowed(DomainError):
    """A status move that the allowed-moves table does not permit."""


class InvalidLead(DomainError):
    """Lead data that fails validation (e.g. an email without a valid domain)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class SessionDeleted(DomainError):
    """The session is in the trash; restore it first."""


class IngestRefused(DomainError):
    """A reported message the ingest refuses; `field` names the part of it that is wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
