"""What input the platform accepts, in one place: text lengths, clean text, ids in range.

Every request model, page form and contract takes its text fields from the types
here, so a 200,000-character title is refused with the field and the limit named
instead of being stored and breaking each page that shows it. Text holds no NUL
(the databases and the record cannot all store it) and no lone surrogate (no
encoding can write it, so even the refusal could not be sent). Ids stay within
the database's 64-bit integer range, past which the driver fails instead of
finding nothing.

:func:`input_refusal` turns pydantic's error list into one refusal naming each
field, what was wrong and the rule, without ever echoing the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from sandbox.errors import ValidationFailed

#: Names, usernames, kinds, contacts, legal bases, ids: one line.
NAME_CHARS = 200
#: Titles: one line that pages show whole.
TITLE_CHARS = 300
#: Reasons, purposes, descriptions, answers, evidence, summaries: a few pages.
TEXT_CHARS = 20_000
#: A YAML contract pasted into a request; also the cap on any text of any request.
DOCUMENT_CHARS = 200_000
#: One SQL query sent to the query service.
SQL_CHARS = 100_000
#: How deep brackets may nest in one query: the parser recurses once per level, and
#: Python's stack ends a little past 40 levels.
SQL_NESTING = 32
#: The largest id a row can have: the tables' primary keys are INTEGER, which PostgreSQL
#: keeps to 32 bits (a larger id in a lookup is an "integer out of range" error there).
MAX_ID = 2**31 - 1
#: The largest integer a query parameter (page, offset, limit) may be: exact in every
#: JSON client, and small enough that arithmetic on it stays within BIGINT.
MAX_PARAMETER = 2**53 - 1
#: The ε one DP release or budget may name: at least one micro-unit, the privacy ledger's
#: smallest amount (less would be charged as nothing and divide by zero in the mechanism),
#: at most a million, past any meaningful guarantee and still within the ledger's BIGINT.
MIN_EPSILON = 1e-6
MAX_EPSILON = 1e6

#: Error types of pydantic (and of the checks here) and the rule each breaks.
_RULES = {
    "string_too_long": "text-length",
    "text_nul": "text-nul",
    "text_unicode": "text-unicode",
    "string_unicode": "text-unicode",
    "finite_number": "number-finite",
    "json_invalid": "json",
    "missing": "required",
}


def text_problem(value: str) -> PydanticCustomError | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return PydanticCustomError("text_nul", "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return PydanticCustomError(
            "text_unicode",
            "must be valid Unicode text (it holds a lone surrogate, which no encoding can store)",
        )
    return None


def _clean(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise problem
    return value


_CLEAN = AfterValidator(_clean)


def _epsilon(epsilon: float) -> float:
    if not (math.isfinite(epsilon) and MIN_EPSILON <= epsilon <= MAX_EPSILON):
        raise PydanticCustomError(
            "dp_epsilon",
            "epsilon must be a finite number from {low} to {high}",
            {"rule": "dp-epsilon", "low": MIN_EPSILON, "high": MAX_EPSILON},
        )
    return epsilon


Name = Annotated[str, Field(max_length=NAME_CHARS), _CLEAN]
Title = Annotated[str, Field(max_length=TITLE_CHARS), _CLEAN]
LongText = Annotated[str, Field(max_length=TEXT_CHARS), _CLEAN]
Document = Annotated[str, Field(max_length=DOCUMENT_CHARS), _CLEAN]
Sql = Annotated[str, Field(max_length=SQL_CHARS), _CLEAN]
#: A row id in a request body (path ids are checked for every route, see sandbox.api).
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
#: A count stored in an INTEGER column (group sizes, contributions per entity).
Count = Annotated[int, Field(ge=1, le=2**31 - 1)]
#: A count of days (rectification periods): at most ten years; the services refuse fewer
#: than one with their own rule.
Days = Annotated[int, Field(le=3660)]
#: ε of a DP release or a budget in a request (refused with rule ``dp-epsilon``).
Epsilon = Annotated[float, AfterValidator(_epsilon)]


def field_name(loc: Iterable[Any]) -> str:
    """``("body", "datasets", "x", 0)`` as ``datasets.x[0]``; never a character that
    cannot be encoded, since keys come from the request."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part).encode("utf-8", "backslashreplace").decode("utf-8")
            out += f".{text}" if out else text
    return out or "the request"


def problem_text(error: Mapping[str, Any]) -> str:
    """What is wrong with one field, without its name (a form shows it beside the field)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "string_too_long":
        value = error.get("input")
        got = f" (got {len(value)})" if isinstance(value, str) else ""
        return f"at most {ctx.get('max_length')} characters{got}"
    if kind == "missing":
        return "required"
    if kind == "finite_number":
        return "must be a finite number (not infinity or NaN)"
    message = str(error.get("msg", "not well-formed")).removeprefix("Value error, ")
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def problem_rule(error: Mapping[str, Any]) -> str:
    """The rule one invalid field breaks (``text-length``, ``required``, ...)."""
    return (error.get("ctx") or {}).get("rule") or _RULES.get(error.get("type", ""), "input")


def _describe(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "decode error")
        return f"the body is not valid JSON ({why})"
    return f"{field_name(error.get('loc', ()))}: {problem_text(error)}"


def input_refusal(errors: Iterable[Mapping[str, Any]]) -> ValidationFailed:
    """One refusal for a request's invalid fields: each named with what is wrong; the rule
    is the first problem's (``text-length``, ``text-nul``, ...). Values are never echoed."""
    errors = list(errors)
    rule = problem_rule(errors[0]) if errors else "input"
    shown = [_describe(e) for e in errors[:10]]
    if len(errors) > 10:
        shown.append(f"and {len(errors) - 10} more")
    return ValidationFailed(
        "the request has fields that are missing or not allowed: " + "; ".join(shown), rule=rule
    )
