"""Domain errors. ``web`` maps each type to one HTTP status in one handler."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user may be shown; ``message`` is in Chinese."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(DomainError):
    """No credentials, or credentials that do not check out."""

    status = 401


class Forbidden(DomainError):
    """A known user acting outside their role or region."""

    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Invalid(DomainError):
    """Bad input; always names the field."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class Locked(DomainError):
    """The account is locked after too many failed logins."""

    status = 423
