"""Who is calling ``/fhir/``: a logged-in session, or a bearer token.

:func:`token_in_force` is the one check of a raw token (known, not revoked, not expired,
its user active, its scope allowed here). The JSON API's token check (``web/api.py``)
asks the same questions for its own scope; the two are meant to become one function.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone

from ketamine_clinic.web.accounts.models import ApiToken, User

# Scopes whose tokens may read /fhir/: a read-only FHIR token, and a JSON API token (it
# acts as its user anyway, and the FHIR API only reads).
FHIR_SCOPES = frozenset({ApiToken.Scope.FHIR_READ, ApiToken.Scope.API})


@dataclass(frozen=True)
class Caller:
    user: User
    token: ApiToken | None  # None: a session log-in


class NotAuthenticated(Exception):
    """No credentials, or credentials that authenticate nothing (the reason says which)."""


def token_in_force(raw: str, scopes: frozenset[str]) -> ApiToken | None:
    """The token ``raw`` names if it is in force for one of ``scopes``; else None.

    A token is in force when it exists, was not revoked, has not expired, belongs to an
    active user and carries one of ``scopes``. Its ``last_used_at`` is brought forward
    (``ApiToken.mark_used``).
    """
    now = timezone.now()
    found = (ApiToken.objects.select_related("user")
             .filter(token_sha256=ApiToken.digest(raw), revoked_at__isnull=True).first())
    if (found is None or not found.user.is_active or found.scope not in scopes
            or (found.expires_at is not None and found.expires_at <= now)):
        return None
    found.mark_used(now)
    return found


def caller_of(request: HttpRequest) -> Caller:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        kind, _, raw = header.partition(" ")
        if kind.lower() != "bearer" or not raw.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
        token = token_in_force(raw.strip(), FHIR_SCOPES)
        if token is None:
            raise NotAuthenticated("the token is unknown, revoked or expired, or not for "
                                   "FHIR reads")
        return Caller(user=token.user, token=token)
    user = request.user
    if user.is_authenticated and user.is_active:
        return Caller(user=user, token=None)
    raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>'")
