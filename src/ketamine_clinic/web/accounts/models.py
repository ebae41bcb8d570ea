from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from ketamine_clinic.web.accounts.roles import Capability, Role, role_can
from ketamine_clinic.web.lib.columns import CheckedUserManager
from ketamine_clinic.web.lib.models import ClinicModel


class Site(ClinicModel):
    """A clinic location. Patients belong to one site; staff work at one or more."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    # The site's own clock: opening hours, clinic days, send windows and business-day
    # deadlines are in this zone; every stored time stays UTC.
    time_zone = models.CharField(max_length=64, default="America/Denver",
                                 help_text="IANA time zone, e.g. America/Denver")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices)
    sites = models.ManyToManyField(Site, related_name="staff")
    title = models.CharField(max_length=60, blank=True, help_text="e.g. MD, RN")
    # Set by an administrator (or for a temporary password): every page asks for a new
    # password first (web/staff/middleware.py).
    must_change_password = models.BooleanField(default=False)

    # update() and bulk_create() checked as saves are
    objects: ClassVar[CheckedUserManager] = CheckedUserManager()

    class Meta:
        ordering = ["last_name", "first_name"]

    def can(self, capability: Capability) -> bool:
        return self.is_active and role_can(self.role, capability)

    @property
    def display_name(self) -> str:
        full = self.get_full_name() or self.username
        return f"{full}, {self.title}" if self.title else full


class ApiToken(ClinicModel):
    """A bearer token for API clients. Only its SHA-256 is stored.

    ``scope`` bounds what the token may do beyond its user's role and sites: ``api`` is the
    JSON API as that user; ``fhir_read`` is the read-only FHIR API and nothing else;
    ``device_vitals`` is a monitor's: vital signs of its site's sessions, nothing else. A token
    past ``expires_at`` or with ``revoked_at`` set authenticates nothing.
    """

    class Scope(models.TextChoices):
        API = "api", "JSON API"
        FHIR_READ = "fhir_read", "FHIR, read-only"
        DEVICE_VITALS = "device_vitals", "Monitor: vital signs of its site's sessions"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.API)
    label = models.CharField(max_length=100, blank=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    PREFIX = "kc_"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def mark_used(self, now: datetime) -> None:
        """Bring ``last_used_at`` forward to ``now`` when the stored time is older than
        ``API_TOKEN_LAST_USED_SECONDS`` (settings): "last used" is kept to that
        resolution, so that a token's reads are not each a database write."""
        last = self.last_used_at
        if last is not None and 0 <= (now - last).total_seconds() < \
                settings.API_TOKEN_LAST_USED_SECONDS:
            return  # a stored time ahead of ``now`` (a clock set back) is written again
        ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
        self.last_used_at = now

    @staticmethod
    def digest(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, label: str = "") -> tuple[ApiToken, str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, label=label, token_sha256=cls.digest(raw), prefix=raw[:8]
        )
        return token, raw
