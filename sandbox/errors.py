"""One error root for the whole platform.

Every refusal names the rule that refused it and, where one exists, the
regulation article or agreement clause behind the rule, so that a person who is
refused knows what was wrong and what is allowed. Messages never echo protected
data values.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Root of every error the platform raises on purpose."""

    rule: str = "error"
    article: str | None = None
    status_code: int = 400

    def __init__(self, message: str, *, rule: str | None = None, article: str | None = None):
        super().__init__(message)
        self.message = message
        if rule is not None:
            self.rule = rule
        if article is not None:
            self.article = article

    def to_dict(self) -> dict[str, str | None]:
        return {"error": self.message, "rule": self.rule, "article": self.article}

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the refusal's response carries (none but for a few kinds)."""
        return {}

    def __str__(self) -> str:
        cite = f" [{self.rule}" + (f"; {self.article}" if self.article else "") + "]"
        return self.message + cite


class ContractError(SandboxError):
    """A YAML contract (catalogue entry, agreement) is unreadable or invalid.

    The message names the file, the field and what is allowed.
    """

    rule = "contract"
    status_code = 422


class ValidationFailed(SandboxError):
    """Input is incomplete or inconsistent; nothing was changed."""

    rule = "validation"
    status_code = 422


class PolicyViolation(SandboxError):
    """A rule of the regulations or of an agreement refuses the request."""

    rule = "policy"
    status_code = 403

    def __init__(self, rule_id: str, article: str | None, message: str):
        super().__init__(message, rule=rule_id, article=article)


class InvalidStateTransition(SandboxError):
    """An object was asked to move to a state its lifecycle does not allow from here."""

    rule = "state-transition"
    status_code = 409


class PermissionDenied(SandboxError):
    """The actor's role or ownership does not allow this action."""

    rule = "permission"
    status_code = 403


class NotFound(SandboxError):
    """The named object does not exist (or is not visible to the actor)."""

    rule = "not-found"
    status_code = 404


class Conflict(SandboxError):
    """The request duplicates or contradicts what is already recorded."""

    rule = "conflict"
    status_code = 409


class TooManyAttempts(SandboxError):
    """Too many recent failures: try again after ``retry_after`` seconds (HTTP 429 with
    ``Retry-After``). A wait, never a lockout: nothing is refused for good."""

    rule = "rate-limit"
    status_code = 429

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

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
