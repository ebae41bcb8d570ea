"""Idempotency keys tied to their client, endpoint and request.

API writes carry an ``idempotency_key`` in their body so that a retried request records
nothing twice. On its own, a service only knew the key: the same key with a different body
(systolic 250 instead of 120) replayed the first answer and dropped the new value, and two
clients could collide on one key. :func:`idempotent` is an API-wide operation decorator:

* the key is scoped to the client (the authenticated user), the method and the path: the
  view receives ``HMAC(scope, key)`` in place of the client's key, so the services' own
  replay works within that scope only;
* the first successful request with a key stores an HMAC of each body field
  (:class:`~ketamine_clinic.web.lib.models.IdempotencyKey`); a later request with the same
  key and the same body runs again (the service replays its stored answer); with a
  different body it is refused with **409**, naming the fields that differ;
* the check, the write and the key's row share one transaction: of two racing requests
  with one key, one commits and the other is re-judged against it.

Usually that transaction is opened here, around the whole view. A view marked
:func:`own_transaction` opens its own instead (a bedside write reads and derives the
session before it takes the database's write lock, which on SQLite is the whole
database's): its service calls :func:`claim` inside the transaction that writes, and the
key's row is stored there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.lib.models import IdempotencyKey

KEY_FIELD = "idempotency_key"
_OWN = "_idempotency_own_transaction"


@dataclass
class _Claim:
    scope: str
    body_mac: str
    fields: dict[str, str]
    endpoint: str
    stored: bool = False


_pending: ContextVar[_Claim | None] = ContextVar("idempotency_pending", default=None)


def own_transaction(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an API view whose service opens the write transaction itself and calls
    :func:`claim` in it (see the module docstring)."""
    setattr(view, _OWN, True)
    return view


def claim() -> None:
    """Store the request's idempotency key in the caller's transaction (the one that
    writes). Nothing to do outside a request with a new key. Raises ``_Raced`` (which
    rolls the transaction back, and the request is judged again) when another request
    stored the same key first."""
    pending = _pending.get()
    if pending is None or pending.stored:
        return
    _record(scope=pending.scope, body_mac=pending.body_mac, fields=pending.fields,
            endpoint=pending.endpoint)
    pending.stored = True


def _mac(*parts: str) -> str:
    msg = "\x1f".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), msg, hashlib.sha256).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Dotted field path -> canonical JSON of the value at that leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "body": json.dumps(value, sort_keys=True, separators=(",", ":"))}


def _client(request: HttpRequest) -> str:
    """The client is the authenticated user (whichever of their tokens, or their log-in
    session, sent the request: a retry may come with a renewed token)."""
    user = getattr(request, "auth", None) or request.user
    return f"user:{getattr(user, 'pk', '')}"


def _status(result: Any) -> int:
    if isinstance(result, Status):
        return int(result.status_code)
    if isinstance(result, HttpResponse):
        return int(result.status_code)
    if isinstance(result, tuple) and result and isinstance(result[0], int):
        return int(result[0])
    return 200


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """API-wide operation decorator: see the module docstring."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.method not in ("POST", "PUT", "PATCH"):
            return view(request, *args, **kwargs)
        payload_name = next((name for name, value in kwargs.items()
                             if getattr(value, KEY_FIELD, None)), None)
        if payload_name is None:
            return view(request, *args, **kwargs)
        payload = kwargs[payload_name]
        key = str(getattr(payload, KEY_FIELD))
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        fields = {name: _mac(value) for name, value in _flatten(body).items()}
        body_mac = _mac(json.dumps(fields, sort_keys=True))
        endpoint = f"{request.method} {request.path}"
        scope = _mac(_client(request), endpoint, key)
        kwargs[payload_name] = payload.model_copy(update={KEY_FIELD: scope})
        return _run(view, request, args, kwargs, scope=scope, endpoint=endpoint,
                    body_mac=body_mac, fields=fields)

    return wrapper


def _conflict(stored: Any, fields: dict[str, str]) -> HttpError:
    names = sorted(k for k in set(stored.fields) | set(fields)
                   if stored.fields.get(k) != fields.get(k) and k != KEY_FIELD)
    what = ", ".join(names) or "the body"
    return HttpError(409, f"this idempotency_key was already used on this endpoint for a "
                          f"request that differs in {what}; the first request stands. Send "
                          "a new request with a new key.")


def _run(view: Callable[..., Any], request: HttpRequest, args: Any, kwargs: Any, *,
         scope: str, endpoint: str, body_mac: str, fields: dict[str, str]) -> Any:
    for _attempt in range(2):
        # The one row of a unique column: no ORDER BY (first() would build one).
        stored = next(iter(IdempotencyKey.objects.filter(scope_sha256=scope).order_by()[:1]),
                      None)
        if stored is not None and stored.body_sha256 != body_mac:
            raise _conflict(stored, fields)
        try:
            if getattr(view, _OWN, False):
                return _run_own(view, request, args, kwargs, None if stored is not None
                                else _Claim(scope, body_mac, fields, endpoint))
            refused: UsageError | None = None
            with transaction.atomic():
                try:
                    result = view(request, *args, **kwargs)
                except UsageError as exc:
                    if not exc.keeps_records:
                        raise
                    # A refusal with its records (limit decisions, audit entry): they
                    # commit, the key is not spent, and a retry is judged again.
                    refused = exc
                else:
                    if stored is None and _status(result) < 300:
                        _record(scope=scope, body_mac=body_mac, fields=fields,
                                endpoint=endpoint)
                    return result
            raise refused
        except _Raced:
            continue  # another request with this key committed first: judge against it
    raise HttpError(409, "this idempotency_key is being used by another request right now; "
                         "retry in a moment")


def _run_own(view: Callable[..., Any], request: HttpRequest, args: Any, kwargs: Any,
             pending: _Claim | None) -> Any:
    token = _pending.set(pending)
    try:
        result = view(request, *args, **kwargs)
    finally:
        _pending.reset(token)
    if pending is not None and not pending.stored and _status(result) < 300:
        # The service answered without writing (nothing to store with the key).
        _record(scope=pending.scope, body_mac=pending.body_mac, fields=pending.fields,
                endpoint=pending.endpoint)
    return result


class _Raced(Exception):
    """Another request stored the same key first (rolls this one's writes back)."""


def _record(*, scope: str, body_mac: str, fields: dict[str, str], endpoint: str) -> None:
    """Store the key's row. No savepoint of its own: ``_Raced`` leaves the transaction
    the row was written in (the caller's, rolled back; or none, outside one)."""
    try:
        IdempotencyKey.objects.create(scope_sha256=scope, body_sha256=body_mac,
                                      fields=fields, endpoint=endpoint[:200])
    except IntegrityError as exc:
        raise _Raced from exc
