"""Model helpers shared by the clinical areas."""

from __future__ import annotations

from typing import Any

from django.db import models


class AppendOnly(models.Model):
    """A row that is written once. Corrections are new rows that point at the old one."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.pop("allow_update", False):
            raise RuntimeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError(f"{type(self).__name__} rows are append-only")
