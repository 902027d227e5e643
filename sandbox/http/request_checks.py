"""Checks every request passes before its route runs: ids in range, clean text.

Installed once on the whole app (and on the query service's router, which a
worker mounts alone), so no route can forget them. An id past the database's
integer range is not found (404) instead of an OverflowError (500); a NUL, a
lone surrogate, or more than ``DOCUMENT_CHARS`` characters in any text — JSON
body, form field, query or path — is refused (422) naming the field, also on
routes whose models do not bound their text themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from sandbox.errors import NotFound
from sandbox.http.http_errors import http_status
from sandbox.input_limits import DOCUMENT_CHARS, MAX_ID, MAX_PARAMETER, input_refusal, text_problem

Loc = tuple[str | int, ...]


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    return get_origin(annotation) in (Union, type(int | None)) and int in get_args(annotation)


def _int_names(dependant: Dependant, kind: str) -> Iterator[str]:
    for field in getattr(dependant, kind):
        if _is_int(field.field_info.annotation):
            yield field.alias
    for sub in dependant.dependencies:
        yield from _int_names(sub, kind)


_INT_PARAMS: dict[tuple[Any, str], tuple[frozenset[str], frozenset[str]]] = {}


def _int_params(route: APIRoute) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the route's integer path parameters and integer query parameters
    (worked out once per endpoint: routes are not hashable)."""
    key = (route.endpoint, route.path)
    if key not in _INT_PARAMS:
        _INT_PARAMS[key] = (
            frozenset(_int_names(route.dependant, "path_params")),
            frozenset(_int_names(route.dependant, "query_params")),
        )
    return _INT_PARAMS[key]


def _as_int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None  # not a number: the route's own validation says so


def _check_path_ids(request: Request, route: APIRoute) -> None:
    for name in _int_params(route)[0]:
        value = _as_int(request.path_params.get(name))
        if value is not None and not 1 <= value <= MAX_ID:
            raise NotFound(
                f"{name} {value} does not exist: ids are whole numbers from 1 to {MAX_ID}",
                rule="id-range",
            )


def _query_range_errors(request: Request, route: APIRoute) -> Iterator[dict[str, Any]]:
    for name in _int_params(route)[1]:
        value = _as_int(request.query_params.get(name))
        if value is not None and abs(value) > MAX_PARAMETER:
            yield {
                "type": "parameter_range",
                "loc": ("query", name),
                "msg": f"must be between -{MAX_PARAMETER} and {MAX_PARAMETER}",
                "input": None,
                "ctx": {"rule": "number-range"},
            }


def _text_errors(loc: Loc, value: Any) -> Iterator[dict[str, Any]]:
    """Every text in ``value`` (keys too) that is too long or cannot be stored."""
    if isinstance(value, str):
        if len(value) > DOCUMENT_CHARS:
            yield {
                "type": "string_too_long",
                "loc": loc,
                "msg": "too long",
                "input": value,
                "ctx": {"max_length": DOCUMENT_CHARS},
            }
        problem = text_problem(value)
        if problem is not None:
            yield {"type": problem.type, "loc": loc, "msg": problem.message(), "input": None}
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _text_errors((*loc, key), key)
            yield from _text_errors((*loc, str(key)), item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _text_errors((*loc, i), item)


def _pairs(kind: str, items: Iterable[tuple[str, Any]]) -> Iterator[dict[str, Any]]:
    for name, value in items:
        yield from _text_errors((kind, name), name)
        yield from _text_errors((kind, name), value)


async def _body_errors(request: Request, route: APIRoute) -> list[dict[str, Any]]:
    """The text errors of the body FastAPI has already parsed for this route (cached on
    the request, so nothing is read twice)."""
    if route.body_field is None:
        return []
    if isinstance(route.body_field.field_info, Form):
        return list(_pairs("body", (await request.form()).multi_items()))
    if not await request.body():
        return []
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json" and not content_type.endswith("+json"):
        return []
    try:
        return list(_text_errors(("body",), await request.json()))
    except ValueError:
        return []  # FastAPI has refused it already


async def check_request(request: Request) -> None:
    """The app-wide dependency: 404 for an id out of range, 422 for unusable text."""
    route = request.scope.get("route")
    errors = [
        *_pairs("path", request.path_params.items()),
        *_pairs("query", request.query_params.multi_items()),
    ]
    if isinstance(route, APIRoute):
        _check_path_ids(request, route)
        errors += [*_query_range_errors(request, route), *await _body_errors(request, route)]
    if errors:
        raise RequestValidationError(errors)


async def refuse_invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without echoing the input (which may not even be encodable)."""
    assert isinstance(exc, RequestValidationError)
    refusal = input_refusal(exc.errors())
    return JSONResponse(status_code=http_status(refusal), content=refusal.to_dict())
