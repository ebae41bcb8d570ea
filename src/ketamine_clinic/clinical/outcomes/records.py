"""The records the statistics read: one treatment series and its follow-ups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ketamine_clinic.clinical.outcomes.measures import _pain
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class FollowUp:
    day: float  # days after the end of the series; 0 = end of its last infusion
    pain: float  # 0-10 NRS

    def to_dict(self) -> dict[str, float]:
        return {"day": self.day, "pain": self.pain}


@dataclass(frozen=True, slots=True)
class SeriesOutcome:
    """What the outcome statistics need from one treatment series.

    last_contact_day
        Days after the series end of the last contact (a drop-out's last visit or a
        later phone call); defaults to the last follow-up.
    adverse_events
        Adverse-event types, one entry per event, over all sessions of the series.
    mme_before, mme_after
        Daily oral morphine milligram equivalents before the series and at the last
        follow-up, as computed by the clinic's opioid conversion (None if not recorded).
    """

    series_id: str
    patient_id: str
    diagnosis_group: str  # "crps" or "other" (ketamine_clinic.clinical.codes groups)
    protocol: str
    baseline_pain: float
    follow_ups: tuple[FollowUp, ...]
    sessions: int = 0
    adverse_events: tuple[str, ...] = ()
    last_contact_day: float | None = None
    mme_before: float | None = None
    mme_after: float | None = None

    def __post_init__(self) -> None:
        _pain(self.baseline_pain, f"{self.series_id}.baseline_pain")
        days = [f.day for f in self.follow_ups]
        if days != sorted(days) or len(set(days)) != len(days):
            raise UsageError(f"{self.series_id}.follow_ups", "days must be distinct and in order")
        for f in self.follow_ups:
            if f.day < 0:
                raise UsageError(f"{self.series_id}.follow_ups", "a day cannot be negative")
            _pain(f.pain, f"{self.series_id}.follow_ups")
        if self.last_contact_day is not None and days and self.last_contact_day < days[-1]:
            raise UsageError(f"{self.series_id}.last_contact_day", "is before the last follow-up")

    def pain_on(self, day: float | None) -> float | None:
        """Pain at follow-up ``day`` (None: the first assessment), or None if not recorded."""
        if not self.follow_ups:
            return None
        if day is None:
            return self.follow_ups[0].pain
        return next((f.pain for f in self.follow_ups if f.day == day), None)


Grouping = str  # "diagnosis_group", "protocol" or "all"


def _group_key(by: Grouping) -> Callable[[SeriesOutcome], str]:
    if by == "all":
        return lambda s: "all"
    if by in ("diagnosis_group", "protocol"):
        return lambda s: str(getattr(s, by))
    raise UsageError("by", f"group by diagnosis_group, protocol or all, not {by!r}")
