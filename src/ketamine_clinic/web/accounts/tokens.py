"""API tokens: issue (with an expiry), list and revoke, from the command line and the app.

A token authenticates only while it is neither revoked nor past ``expires_at``. Anyone may
list and revoke their own tokens; a user with ``manage_staff`` (the clinic administrator)
also those of every user of their sites. Each issue and revocation is audited.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import ApiToken, User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record


def token_status(token: ApiToken) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return "expired"
    return "active"


def tokens_usable() -> QuerySet[ApiToken]:
    """Tokens that authenticate now (not revoked, not expired)."""
    return ApiToken.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


def tokens_visible_to(user: User) -> QuerySet[ApiToken]:
    """The user's own tokens; for a staff manager, also those of the users of their sites."""
    qs = ApiToken.objects.select_related("user").order_by("-created_at", "-id")
    if user.can(Capability.MANAGE_STAFF):
        return qs.filter(Q(user=user) | Q(user__sites__in=user.sites.all())).distinct()
    return qs.filter(user=user)


def token_issue(*, actor: Actor, user: User, label: str = "",
                days: int | None = None,
                scope: str = ApiToken.Scope.API) -> tuple[ApiToken, str]:
    """A new token for ``user`` valid ``days`` days (default ``API_TOKEN_DAYS``); returns
    the row and the raw token, which is shown once and never stored."""
    days = settings.API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise UsageError("days", f"must be from 1 to {settings.API_TOKEN_MAX_DAYS}")
    if not user.is_active:
        raise UsageError("username", f"{user.username} is not an active user")
    with transaction.atomic():
        token, raw = ApiToken.issue(user, label=label.strip()[:100])
        token.scope = scope
        token.expires_at = timezone.now() + timedelta(days=days)
        token.save(update_fields=["scope", "expires_at"])
        audit_record(actor=actor, action=AuditAction.TOKEN_CREATE, object_type="user",
                     object_id=user.pk,
                     detail={"token_prefix": token.prefix, "scope": token.scope,
                             "expires_at": token.expires_at.isoformat()})
    return token, raw


def token_find(prefix: str, among: QuerySet[ApiToken] | None = None) -> ApiToken:
    """The one token whose shown prefix (``kc_XXXXX``) is ``prefix``."""
    prefix = prefix.strip().rstrip("…")
    found = list((among if among is not None else ApiToken.objects.all())
                 .filter(prefix=prefix)[:2])
    if not found:
        raise UsageError("prefix", f"no token {prefix}")
    if len(found) > 1:
        raise UsageError("prefix", f"{prefix} names more than one token: revoke by id")
    return found[0]


def token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke ``token`` now (a revoked token stays listed, and authenticates nothing)."""
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise UsageError("prefix", f"token {locked.prefix} was already revoked on "
                                       f"{timezone.localtime(locked.revoked_at):%Y-%m-%d %H:%M}")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action=AuditAction.TOKEN_REVOKE, object_type="user",
                     object_id=locked.user_id, detail={"token_prefix": locked.prefix})
    return locked
