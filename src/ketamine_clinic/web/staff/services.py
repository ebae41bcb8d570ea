"""Staff administration: accounts, roles and sites, deactivation (never deletion),
unlocking a locked-out log-in, forced password changes, monitor devices and their tokens.

Administrators manage the accounts of the sites they work at and may give only those
sites. Nobody changes their own role or deactivates themselves (a clinic must never lose
its last administrator by a slip). Every change is one audit entry with what changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import ApiToken, Site, User
from ketamine_clinic.web.accounts.roles import Capability, Role
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.inputs import required_text
from ketamine_clinic.web.staff.models import Device


def _admin(actor: Actor) -> User:
    user = actor.user
    if user is None or not user.can(Capability.MANAGE_STAFF):
        raise UsageError("user", "only a clinic administrator manages staff accounts")
    return user


def _managed(actor: Actor, user: User) -> User:
    admin = _admin(actor)
    if not set(user.sites.values_list("pk", flat=True)) & set(
            admin.sites.values_list("pk", flat=True)) and user.pk != admin.pk:
        raise UsageError("user", "this account works at none of your sites")
    return admin


def _sites(admin: User, sites: Iterable[Site]) -> list[Site]:
    chosen = list(sites)
    if not chosen:
        raise UsageError("sites", "choose at least one site")
    mine = set(admin.sites.values_list("pk", flat=True))
    foreign = [s.name for s in chosen if s.pk not in mine]
    if foreign:
        raise UsageError("sites", f"you do not work at {', '.join(foreign)}")
    return chosen


def temporary_password() -> str:
    """A password to hand over once; the user must change it at the first log-in."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


def staff_create(*, actor: Actor, username: str, first_name: str, last_name: str,
                 role: str, sites: Iterable[Site], title: str = "", email: str = ""
                 ) -> tuple[User, str]:
    """A new staff account with a temporary password (returned once, never stored)."""
    admin = _admin(actor)
    username = required_text("username", username)
    if User.objects.filter(username__iexact=username).exists():
        raise UsageError("username", f"{username!r} is taken")
    if role not in Role.values:
        raise UsageError("role", f"choose one of {', '.join(Role.labels)}")
    chosen = _sites(admin, sites)
    password = temporary_password()
    with transaction.atomic():
        user = User.objects.create_user(
            username=username, password=password, first_name=first_name.strip(),
            last_name=last_name.strip(), title=title.strip(), email=email.strip(),
            role=role, must_change_password=True)
        user.sites.set(chosen)
        audit_record(actor=actor,
                     action=AuditAction.STAFF_CREATE, object_type="user", object_id=user.pk,
                     detail={"username": username, "role": role,
                             "sites": sorted(s.code for s in chosen)})
    return user, password


def staff_update(*, actor: Actor, user: User, role: str, sites: Iterable[Site],
                 title: str = "", first_name: str | None = None,
                 last_name: str | None = None) -> User:
    """Change role, sites and name. Sites the administrator does not work at are kept."""
    admin = _managed(actor, user)
    if hasattr(user, "device"):
        raise UsageError("user", "a monitor device has no role; manage its tokens instead")
    if role not in Role.values:
        raise UsageError("role", f"choose one of {', '.join(Role.labels)}")
    if user.pk == admin.pk and role != user.role:
        raise UsageError("role", "you cannot change your own role: ask another administrator")
    chosen = _sites(admin, sites)
    mine = set(admin.sites.values_list("pk", flat=True))
    before = {"role": user.role, "sites": sorted(user.sites.values_list("code", flat=True)),
              "title": user.title}
    with transaction.atomic():
        kept = [s for s in user.sites.all() if s.pk not in mine]
        user.role, user.title = role, title.strip()
        if first_name is not None:
            user.first_name = first_name.strip()
        if last_name is not None:
            user.last_name = last_name.strip()
        user.save()
        user.sites.set([*kept, *chosen])
        after = {"role": role, "sites": sorted(user.sites.values_list("code", flat=True)),
                 "title": user.title}
        audit_record(actor=actor, action=AuditAction.STAFF_UPDATE, object_type="user",
                     object_id=user.pk, detail={"before": before, "after": after})
    return user


def staff_set_active(*, actor: Actor, user: User, active: bool, reason: str = "") -> User:
    """Deactivate (no log-in, no token works, records stay) or reactivate an account."""
    admin = _managed(actor, user)
    reason = (reason or "").strip()
    if not active and user.pk == admin.pk:
        raise UsageError("user", "you cannot deactivate your own account")
    if not active and not reason:
        raise UsageError("reason", "say why the account is deactivated")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_record(actor=actor,
                     action=AuditAction.STAFF_ACTIVATE if active else AuditAction.STAFF_DEACTIVATE,
                     object_type="user", object_id=user.pk, detail={"reason": reason})
    return user


def login_locked(user: User) -> bool:
    """Whether log-in for this username is locked out now (django-axes' failure count
    within its cool-off time)."""
    since = timezone.now() - timedelta(hours=float(settings.AXES_COOLOFF_TIME))
    return AccessAttempt.objects.filter(
        username=user.username, failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
        attempt_time__gte=since).exists()


def staff_unlock(*, actor: Actor, user: User) -> int:
    """Clear the failed log-ins of this username (every address); returns how many
    records were cleared."""
    _managed(actor, user)
    with transaction.atomic():
        cleared = int(reset(username=user.username))
        audit_record(actor=actor, action=AuditAction.STAFF_UNLOCK, object_type="user",
                     object_id=user.pk, detail={"cleared_attempts": cleared})
    return cleared


def staff_force_password_change(*, actor: Actor, user: User,
                                temporary: bool = False) -> str | None:
    """At the next page the user must choose a new password; with ``temporary``, the
    old one stops working and a temporary one is returned (to hand over once)."""
    _managed(actor, user)
    password = temporary_password() if temporary else None
    with transaction.atomic():
        if password is not None:
            user.set_password(password)
        user.must_change_password = True
        user.save()
        audit_record(actor=actor,
                     action=AuditAction.STAFF_FORCE_PASSWORD_CHANGE, object_type="user",
                     object_id=user.pk, detail={"temporary_password_issued": temporary})
    return password


def password_changed(*, actor: Actor, user: User) -> None:
    """The user chose a new password (the password page calls this)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        audit_record(actor=actor, action=AuditAction.AUTH_PASSWORD_CHANGE, object_type="user",
                     object_id=user.pk)


def check_new_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise UsageError("password", " ".join(exc.messages)) from exc


# --------------------------------------------------------------------------- devices


def device_create(*, actor: Actor, site: Site, name: str) -> Device:
    """A monitor's account at ``site``: no role, no password; vitals through its tokens."""
    admin = _admin(actor)
    _sites(admin, [site])
    name = required_text("name", name)
    base = f"device-{site.code}-{slugify(name)}"[:140]
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=None, role="",
                                        first_name=name)
        user.sites.set([site])
        device = Device.objects.create(user=user, site=site, name=name, created_by=admin)
        audit_record(actor=actor, action=AuditAction.DEVICE_CREATE, object_type="device",
                     object_id=device.pk, detail={"site": site.code, "name": name})
    return device


def token_issue(*, actor: Actor, device: Device, label: str = "",
                expires_days: int | None = None) -> tuple[ApiToken, str]:
    """A ``device_vitals`` token for the device; the raw token is returned once."""
    _managed(actor, device.user)
    if expires_days is not None and expires_days < 1:
        raise UsageError("expires_days", "must be at least 1 day, or empty for none")
    with transaction.atomic():
        token, raw = ApiToken.issue(device.user, label=(label or "").strip())
        token.scope = ApiToken.Scope.DEVICE_VITALS
        if expires_days is not None:
            token.expires_at = timezone.now() + timedelta(days=expires_days)
        token.save(update_fields=["scope", "expires_at"])
        audit_record(actor=actor, action=AuditAction.DEVICE_TOKEN_ISSUE, object_type="device",
                     object_id=device.pk, detail={"token": token.prefix, "label": token.label})
    return token, raw


def token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    _managed(actor, token.user)
    if token.revoked_at is not None:
        raise UsageError("token", "this token is already revoked")
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action=AuditAction.TOKEN_REVOKE, object_type="user",
                     object_id=token.user_id, detail={"token": token.prefix})
    return token


def staff_visible_to(admin: User) -> Any:
    return (User.objects.filter(sites__in=admin.sites.all()).distinct()
            .prefetch_related("sites").select_related("device")
            .order_by("last_name", "first_name", "username"))
