"""Strict, bounded input for every API operation.

django-ninja validates a request with pydantic in lax mode: ``"date_of_birth": 0`` becomes
1970-01-01, ``"5"`` an integer, ``1e400`` infinity. :func:`strict_input` is an API-wide
operation decorator (``api.add_decorator``) that runs after authentication and ninja's own
validation and before the view, over the raw request:

* the JSON body is checked against the operation's body schema with strict types: no
  text-to-number, number-to-text or number-to-boolean coercion, an object where the schema
  says an object (not a list), ``null`` only where the schema allows it;
* dates, times and date-times must be ISO 8601 strings: no epoch numbers, no ``"0"``;
* everywhere in the body, the query and the path: no NUL character, no string longer than
  ``API_MAX_STRING_CHARS``, no integer outside 64 bits, no number JSON cannot hold
  (``1e400``, NaN).

Every refusal is a 422 naming the field, as ninja's own. Column lengths and numeric ranges
are checked once more where rows are written (:mod:`ketamine_clinic.web.lib.columns`), so
SQLite and PostgreSQL refuse the same values.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from functools import wraps
from typing import Any

import pydantic
from django.conf import settings
from django.http import HttpRequest
from ninja.errors import ValidationError
from ninja.params.models import Body, Param

INT64 = 2**63
Problem = tuple[tuple[str | int, ...], str]


def _fail(problems: list[Problem], where: str) -> ValidationError:
    return ValidationError([{"loc": (where, *loc), "msg": msg, "type": "value_error"}
                            for loc, msg in problems])


# --------------------------------------------------------------------------- any value


def _bounded(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[Problem]:
    """NUL characters, over-long strings, integers beyond 64 bits, non-finite numbers."""
    limit = settings.API_MAX_STRING_CHARS
    if isinstance(value, str):
        if "\x00" in value:
            yield loc, "must not contain a NUL character"
        if len(value) > limit:
            yield loc, f"is longer than {limit} characters"
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -INT64 <= value < INT64:
            yield loc, "is too large a number"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, "must be a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _bounded(key, loc)
            yield from _bounded(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _bounded(item, (*loc, i))


def _no_constants(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON can hold")


def _parse(body: bytes) -> Any:
    # 1e400 parses to inf: caught by _bounded. NaN/Infinity literals are refused here.
    return json.loads(body, parse_constant=_no_constants)


# --------------------------------------------------------------------------- dates


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of ``X | None`` / ``Optional[X]`` / ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


ISO = {datetime: ("an ISO 8601 date and time, e.g. 2026-11-25T09:30:00Z",
                  datetime.fromisoformat),
       date: ("an ISO 8601 date, e.g. 2026-11-25", date.fromisoformat),
       time: ("an ISO 8601 time, e.g. 09:30", time.fromisoformat)}
JSON_KINDS: dict[Any, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "must be true or false"),
    int: ((int,), "must be a whole number (not text, not a decimal)"),
    float: ((int, float), "must be a number (not text)"),
    str: ((str,), "must be text"),
}


def _one(alt: Any, raw: Any, loc: tuple[str | int, ...]) -> list[Problem]:
    """What is wrong with ``raw`` (parsed JSON) as a value of type ``alt`` in strict terms:
    no coercion between text, numbers, booleans and dates; dates as ISO 8601 text."""
    if alt is Any or alt is object:
        return []
    if alt is type(None):
        return [] if raw is None else [(loc, "must be null")]
    if raw is None:
        return [(loc, "must not be null")]
    if alt in ISO:
        what, parse = ISO[alt]
        try:
            ok = isinstance(raw, str) and raw.strip() == raw and parse(raw) is not None
        except ValueError:
            ok = False
        return [] if ok else [(loc, f"must be {what}")]
    if alt in JSON_KINDS:
        kinds, message = JSON_KINDS[alt]
        bad = not isinstance(raw, kinds) or (alt is not bool and isinstance(raw, bool))
        return [(loc, message)] if bad else []
    origin = typing.get_origin(alt)
    if origin in (list, tuple, set, frozenset):
        if not isinstance(raw, list):
            return [(loc, "must be a list")]
        args = typing.get_args(alt) or (Any,)
        return [p for i, item in enumerate(raw)
                for p in _strict(args[0] if origin is not tuple or len(args) != len(raw)
                                 else args[i], item, (*loc, i))]
    if origin is dict or alt is dict:
        if not isinstance(raw, dict):
            return [(loc, "must be an object")]
        args = typing.get_args(alt)
        value_type = args[1] if len(args) == 2 else Any
        return [p for key, item in raw.items() for p in _strict(value_type, item, (*loc, key))]
    if inspect.isclass(alt) and issubclass(alt, pydantic.BaseModel):
        if not isinstance(raw, dict):
            return [(loc, "must be an object")]
        out = []
        for name, field in alt.model_fields.items():
            key = field.alias or name
            if key in raw:
                out += _strict(field.annotation, raw[key], (*loc, key))
        return out
    return []  # Literal, Enum, Decimal and others: pydantic's own validation decides


def _strict(annotation: Any, raw: Any, loc: tuple[str | int, ...] = ()) -> list[Problem]:
    alternatives = _unwrap(annotation)
    found: list[Problem] = []
    for alt in alternatives:
        problems = _one(alt, raw, loc)
        if not problems:
            return []
        found = found or problems
    return found


# --------------------------------------------------------------------------- operations


def _body_params(view: Callable[..., Any]) -> dict[str, Any]:
    """The view's body parameters (pydantic models, or lists of them) and their types."""
    hints = typing.get_type_hints(view, include_extras=True)
    out = {}
    for name, param in inspect.signature(view).parameters.items():
        if isinstance(param.default, Param) and not isinstance(param.default, Body):
            continue  # Query(...), Path(...), Form(...): not the JSON body
        annotation = hints.get(name)
        if annotation is None:
            continue
        for alt in _unwrap(annotation):
            inner = typing.get_args(alt)[:1] if typing.get_origin(alt) is list else (alt,)
            if inner and inspect.isclass(inner[0]) and issubclass(inner[0],
                                                                  pydantic.BaseModel):
                out[name] = annotation
                break
    return out


def strict_input(view: Callable[..., Any]) -> Callable[..., Any]:
    """API-wide operation decorator: see the module docstring."""
    body_params = _body_params(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        params = {k: v for k, v in kwargs.items() if k not in body_params}
        problems = list(_bounded(params))
        problems += [((k, *loc[1:]), m) for k, v in request.GET.lists()
                     for loc, m in _bounded(v, (k,))]
        if problems:
            raise _fail(problems, "query")
        if body_params and request.body and request.content_type == "application/json":
            _check_body(request.body, body_params)
        return view(request, *args, **kwargs)

    return wrapper


def _check_body(body: bytes, body_params: dict[str, Any]) -> None:
    try:
        data = _parse(body)
    except ValueError as exc:
        raise _fail([((), f"is not valid JSON ({exc})")], "body") from exc
    problems = list(_bounded(data))
    if problems:
        raise _fail(problems, "body")
    # One body parameter is the whole body; several are the body's keys (as ninja reads).
    single = len(body_params) == 1
    parts = ({name: data for name in body_params} if single
             else {name: data.get(name) if isinstance(data, dict) else None
                   for name in body_params})
    for name, raw in parts.items():
        prefix: tuple[str | int, ...] = () if single else (name,)
        problems += [((*prefix, *loc), m) for loc, m in _strict(body_params[name], raw)]
    if problems:
        raise _fail(problems, "body")
