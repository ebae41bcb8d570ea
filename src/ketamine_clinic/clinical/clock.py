"""Times at the boundary, checked one way everywhere: a recorded time carries a time zone,
and is not later than now, give or take the grace allowed for clocks that disagree.

>>> from datetime import datetime
>>> aware("occurred_at", datetime(2026, 11, 25, 9, 30))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketamine_clinic.errors.UsageError: occurred_at: must carry a time zone (a UTC offset, ...)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ketamine_clinic.errors import UsageError

# Clocks of bedside tablets, devices and the server may disagree by this much; a time this
# little ahead of the server's is not "in the future" (not a clinical number).
CLOCK_GRACE = timedelta(minutes=1)

NO_TIME_ZONE = "must carry a time zone (a UTC offset, for example 2026-11-25T09:30:00Z)"


def is_aware(at: datetime) -> bool:
    return at.tzinfo is not None and at.utcoffset() is not None


def aware(field: str, at: datetime) -> datetime:
    """``at`` if it carries a time zone; otherwise a :class:`UsageError` naming ``field``."""
    if not is_aware(at):
        raise UsageError(field, NO_TIME_ZONE)
    return at


def aware_or_none(field: str, at: datetime | None) -> datetime | None:
    return None if at is None else aware(field, at)


def ahead_of(at: datetime, now: datetime) -> bool:
    """``at`` is later than ``now`` by more than the clocks' grace."""
    return at > now + CLOCK_GRACE


def not_future(field: str, at: datetime, now: datetime) -> datetime:
    """``at`` if it carries a time zone and is not ahead of ``now`` (beyond the grace)."""
    aware(field, at)
    if ahead_of(at, now):
        raise UsageError(field, "is in the future")
    return at
