"""Values checked against their columns before a row is written.

PostgreSQL refuses a string longer than its ``varchar``, a NUL character in text or JSON,
an integer beyond its column and a decimal beyond its precision, with a database error (a
500); SQLite stores them all. :func:`check_row` runs before every save of the clinic's
models (a ``pre_save`` receiver connected in ``LibConfig.ready``) and raises a
:class:`UsageError` naming the field instead, so that both databases refuse the same
values with the same message. The API maps it to 400, the pages show it on the form.

``bulk_create``, ``bulk_update`` and ``QuerySet.update()`` send no ``pre_save``: the
clinic's models get their rows through :class:`CheckedQuerySet` (their default manager,
from :class:`ketamine_clinic.web.lib.models.ClinicModel`), which runs the same check on
each object or on the values of an update before the statement is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.models import UserManager
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from ketamine_clinic.errors import UsageError

# The standard SQL ranges (PostgreSQL's); SQLite would take wider ones: use these for both.
INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges

_M = TypeVar("_M", bound=models.Model)


def _json_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_json_nul(k) or _json_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_json_nul(v) for v in value)
    return False


def check_value(field: models.Field[Any, Any], value: Any) -> str:
    """The problem with ``value`` for ``field``'s column, or ``""``."""
    if value is None:
        return ""
    if isinstance(field, models.JSONField):
        return "must not contain a NUL character" if _json_nul(value) else ""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain a NUL character"
        if field.max_length is not None and len(value) > field.max_length:
            return f"is longer than {field.max_length} characters ({len(value)} given)"
        return ""
    if isinstance(field, models.DecimalField) and isinstance(value, Decimal | int | float):
        number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        if not number.is_finite():
            return "must be a finite number"
        whole_digits = (field.max_digits or 0) - (field.decimal_places or 0)
        if field.max_digits is not None and abs(number) >= Decimal(10) ** whole_digits:
            return f"is too large (below {10 ** whole_digits:,} at most)"
        return ""
    if isinstance(field, models.FloatField) and isinstance(value, float | int):
        return "" if math.isfinite(value) else "must be a finite number"
    if (isinstance(field, models.IntegerField) and isinstance(value, int)
            and not isinstance(value, bool)):
        low, high = INTEGER_RANGES.get(field.get_internal_type(), (None, None))
        if low is not None and high is not None and not low <= value <= high:
            return f"must be between {low:,} and {high:,}"
    return ""


def check_row(instance: models.Model) -> None:
    """Raise :class:`UsageError` for the first column value the database would refuse."""
    for field in instance._meta.concrete_fields:
        if isinstance(field, models.ForeignKey | models.AutoField):
            continue
        problem = check_value(field, getattr(instance, field.attname, None))
        if problem:
            raise UsageError(field.name, problem)


def check_values(model: type[models.Model], values: Mapping[str, Any]) -> None:
    """Raise :class:`UsageError` for the first of ``values`` (field name or column
    attribute to value, as ``update()`` takes them) its column would refuse. Expressions
    (``F("n") + 1``) are the database's to compute and are not checked."""
    for name, value in values.items():
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field) or isinstance(field, models.ForeignKey
                                                             | models.AutoField):
            continue
        problem = check_value(field, value)
        if problem:
            raise UsageError(field.name, problem)


class CheckedQuerySet(models.QuerySet[_M]):
    """The query set of the clinic's models: the writes that bypass ``save()`` are checked
    like a save (see the module docstring)."""

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        objs = list(objs)
        for obj in objs:
            check_row(obj)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], *args: Any,
                    **kwargs: Any) -> int:
        objs, fields = list(objs), list(fields)
        columns = [(name, field.attname) for name in fields
                   if isinstance(field := self.model._meta.get_field(name), models.Field)]
        for obj in objs:
            check_values(type(obj), {name: getattr(obj, attname) for name, attname in columns})
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        check_values(self.model, kwargs)
        return super().update(**kwargs)


# The default manager of the clinic's models (:class:`CheckedQuerySet`). Made at module level
# with ``from_queryset`` so that django-stubs types each model's manager and query sets.
# Django names the made class's module after its own; a manager must be importable from where
# it is defined to deconstruct (migrations, model state), so it is set to this module.
CheckedManager = models.Manager.from_queryset(CheckedQuerySet, "CheckedManager")
CheckedManager.__module__ = __name__


class CheckedUserManager(UserManager.from_queryset(CheckedQuerySet)):  # type: ignore[misc]
    """The staff's manager: Django's user manager, with the checked query set."""


def on_pre_save(sender: type[models.Model], instance: models.Model, raw: bool = False,
                **kwargs: Any) -> None:
    if not raw and sender.__module__.startswith("ketamine_clinic."):
        check_row(instance)
