"""One error root for the whole platform.

Every refusal names the rule that refused it and, where one exists, the
regulation article or agreement clause behind the rule, so that a person who is
refused knows what was wrong and what is allowed. Messages never echo protected
data values.

An error says what *kind* of refusal or failure it is, never how a protocol answers it:
the delivery layer (``sandbox.http.http_errors``) turns kinds into HTTP answers, in one
place, so the services below it know nothing of HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What kind of refusal or failure an error is."""

    #: The request cannot be carried out as asked (the default).
    request = "request"
    #: Input is incomplete, malformed or inconsistent; nothing was changed.
    invalid = "invalid"
    #: Whoever asks is not known (no valid token).
    unauthenticated = "unauthenticated"
    #: A rule, a role or ownership refuses it.
    forbidden = "forbidden"
    #: The object does not exist, or is not visible to the actor.
    not_found = "not_found"
    #: It contradicts what is recorded: a duplicate, or a move the lifecycle does not allow.
    conflict = "conflict"
    #: Too many recent attempts: a wait, never a lockout.
    too_many = "too_many"
    #: The platform failed or found its own state damaged (a key, the record).
    internal = "internal"
    #: A service the platform relies on (an identity provider) answered wrongly.
    upstream = "upstream"
    #: A part of the platform (the workspace runtime) cannot be reached now.
    unavailable = "unavailable"


class SandboxError(Exception):
    """Root of every error the platform raises on purpose."""

    rule: str = "error"
    article: str | None = None
    kind: Kind = Kind.request

    def __init__(self, message: str, *, rule: str | None = None, article: str | None = None):
        super().__init__(message)
        self.message = message
        if rule is not None:
            self.rule = rule
        if article is not None:
            self.article = article

    def to_dict(self) -> dict[str, str | None]:
        return {"error": self.message, "rule": self.rule, "article": self.article}

    def __str__(self) -> str:
        cite = f" [{self.rule}" + (f"; {self.article}" if self.article else "") + "]"
        return self.message + cite


class ContractError(SandboxError):
    """A YAML contract (catalogue entry, agreement) is unreadable or invalid.

    The message names the file, the field and what is allowed.
    """

    rule = "contract"
    kind = Kind.invalid


class ValidationFailed(SandboxError):
    """Input is incomplete or inconsistent; nothing was changed."""

    rule = "validation"
    kind = Kind.invalid


class PolicyViolation(SandboxError):
    """A rule of the regulations or of an agreement refuses the request."""

    rule = "policy"
    kind = Kind.forbidden

    def __init__(self, rule_id: str, article: str | None, message: str):
        super().__init__(message, rule=rule_id, article=article)


class InvalidStateTransition(SandboxError):
    """An object was asked to move to a state its lifecycle does not allow from here."""

    rule = "state-transition"
    kind = Kind.conflict


class PermissionDenied(SandboxError):
    """The actor's role or ownership does not allow this action."""

    rule = "permission"
    kind = Kind.forbidden


class NotFound(SandboxError):
    """The named object does not exist (or is not visible to the actor)."""

    rule = "not-found"
    kind = Kind.not_found


class Conflict(SandboxError):
    """The request duplicates or contradicts what is already recorded."""

    rule = "conflict"
    kind = Kind.conflict


class TooManyAttempts(SandboxError):
    """Too many recent failures: try again after ``retry_after`` seconds. A wait, never a
    lockout: nothing is refused for good."""

    rule = "rate-limit"
    kind = Kind.too_many

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        rule: str | None = None,
        article: str | None = None,
    ):
        super().__init__(message, rule=rule, article=article)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "retry_after": self.retry_after}
