"""Model helpers shared by the clinical areas."""

from __future__ import annotations

from typing import Any

from django.db import models

from ketamine_clinic.web.lib.columns import CheckedManager


class ClinicModel(models.Model):
    """The base of the clinic's models: every write is checked against its columns, those
    that bypass ``save()`` (``bulk_create``, ``update()``) too (``web/lib/columns.py``)."""

    objects = CheckedManager()

    class Meta:
        abstract = True


class AppendOnly(ClinicModel):
    """A row that is written once. Corrections are new rows that point at the old one."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.pop("allow_update", False):
            raise RuntimeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError(f"{type(self).__name__} rows are append-only")


class IdempotencyKey(ClinicModel):
    """An idempotency key a client used on one endpoint, with what its request said.

    ``scope_sha256`` is the HMAC of (client, method, path, key): the same key from another
    client or on another endpoint is another key. ``fields`` maps each field of the request
    body (dotted path) to an HMAC of its value, so that a retry with a different body can
    be told apart and the differing fields named, without keeping the values themselves.
    Written only when the request succeeded (``web/lib/idempotency.py``).
    """

    scope_sha256 = models.CharField(max_length=64, unique=True)
    body_sha256 = models.CharField(max_length=64)
    fields = models.JSONField(default=dict)
    endpoint = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"idempotency key for {self.endpoint}"
