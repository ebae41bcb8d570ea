from __future__ import annotations

from django.db import models

from ketamine_clinic.web.lib.models import ClinicModel


class AuditEntry(ClinicModel):
    """One read or write of patient data (or another audited act). Append-only.

    Written with a plain insert carrying the HMAC of its content (``mac``); the sealer
    places it in the chain afterwards (:class:`AuditLink`). Database triggers refuse UPDATE,
    DELETE and TRUNCATE (``triggers.py``); the keyed chain exposes anything that gets past
    them.
    """

    at = models.DateTimeField(db_index=True)
    nonce = models.CharField(max_length=32)
    user_id_value = models.BigIntegerField(null=True, db_column="user_id")
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, blank=True)
    site_code = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict)
    mac = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"]),
                   models.Index(fields=["client_address", "at"], name="audit_entry_addr_at")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.username or 'system'}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise RuntimeError("audit entries are append-only")

    @property
    def seq(self) -> int | None:
        """The entry's place in the chain, once sealed."""
        link = getattr(self, "link", None)
        return link.seq if link is not None else None

    def chain_content(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(timespec="microseconds"),
            "nonce": self.nonce,
            "user_id": self.user_id_value,
            "username": self.username,
            "role": self.role,
            "site_code": self.site_code,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "client_address": self.client_address,
            "detail": self.detail,
            "mac": self.mac,
        }


class AuditLink(ClinicModel):
    """The place of one entry in the one gapless sequence: written by the sealer only."""

    seq = models.PositiveBigIntegerField(primary_key=True)
    entry = models.OneToOneField(AuditEntry, on_delete=models.PROTECT, related_name="link")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"link #{self.seq}"


class AuditHead(ClinicModel):
    """The chain's tip: one row, locked by the sealer (never by the writers of entries)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    # The highest entry id sealed so far: the sealer looks for new entries above it (and
    # among the recent ones, for entries whose transaction committed late).
    entry_id_max = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"
