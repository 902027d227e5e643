"""Refusals as HTTP answers: the one place an error's kind becomes a status code.

The services below the delivery layer say what kind of refusal an error is
(:class:`sandbox.errors.Kind`); the API, the pages and the query worker answer every one
through here, so a kind is answered alike wherever it is raised.
"""

from __future__ import annotations

from sandbox.errors import Kind, SandboxError, TooManyAttempts

#: Each kind's HTTP status.
STATUS: dict[Kind, int] = {
    Kind.request: 400,
    Kind.invalid: 422,
    Kind.unauthenticated: 401,
    Kind.forbidden: 403,
    Kind.not_found: 404,
    Kind.conflict: 409,
    Kind.too_many: 429,
    Kind.internal: 500,
    Kind.upstream: 502,
    Kind.unavailable: 503,
}


def http_status(error: SandboxError) -> int:
    """The status code that answers ``error``."""
    return STATUS[error.kind]


def http_headers(error: SandboxError) -> dict[str, str]:
    """The headers that answer ``error``: a wait says how long (``Retry-After``)."""
    if isinstance(error, TooManyAttempts):
        return {"Retry-After": str(error.retry_after)}
    return {}
