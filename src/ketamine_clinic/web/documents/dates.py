"""Dates and times on patient documents, in the clinic's locale.

The formats are ``reference/education/locale.toml`` for ``settings.LANGUAGE_CODE``; times are
shown in the clinic's time zone. One place, so the sheet, its PDF and the consent print
write a date the same way.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

from django.conf import settings
from django.utils import dateformat, timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml


@cache
def _formats(language: str) -> dict[str, str]:
    raw = read_toml("education/locale.toml")
    key = language.lower()
    if key not in raw:
        key = key.split("-")[0]
        matches = [k for k in raw if k.split("-")[0] == key]
        if not matches:
            raise UsageError("LANGUAGE_CODE", f"no date formats for {language!r} in "
                             "reference/education/locale.toml")
        key = matches[0]
    return {k: str(v) for k, v in raw[key].items()}


def formats() -> dict[str, str]:
    """The clinic's formats: ``date``, ``numeric_date``, ``numeric_order``, ``time``."""
    return _formats(settings.LANGUAGE_CODE)


def _local(value: date | datetime) -> date | datetime:
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value)
    return value


def patient_date(value: date | datetime) -> str:
    """'Tuesday, March 4, 2025' (en-us)."""
    return dateformat.format(_local(value), formats()["date"])


def patient_numeric_date(value: date | datetime) -> str:
    """'03/04/2025 (month/day/year)' (en-us): digits always say their order."""
    f = formats()
    return f"{dateformat.format(_local(value), f['numeric_date'])} ({f['numeric_order']})"


def patient_time(value: datetime) -> str:
    """'1:30 PM' (en-us), in the clinic's time zone."""
    return dateformat.format(_local(value), formats()["time"])


def patient_clock(value: datetime) -> str:
    """'Tuesday, March 4, 2025 at 1:30 PM' (en-us)."""
    return f"{patient_date(value)} at {patient_time(value)}"
