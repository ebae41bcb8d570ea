"""Vital signs: one charted set, the alarm thresholds and the alarms they raise, alarm
episodes over a session, and whether the next set is overdue.
"""


from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ketamine_clinic.clinical.monitoring._common import _aware
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- vitals


VITAL_NAMES = (
    "systolic_bp_mmhg",
    "diastolic_bp_mmhg",
    "heart_rate_per_min",
    "respiratory_rate_per_min",
    "spo2_percent",
    "etco2_mmhg",
    "temperature_c",
)


@dataclass(frozen=True, slots=True)
class VitalSigns:
    """One set of vital signs taken at ``at``; any sign may be missing (None).

    Each value is checked against ``reference/plausibility.toml`` (a data-entry guard,
    not an alarm). ``on_oxygen`` records supplemental oxygen (needed by recovery scores).
    """

    at: datetime
    systolic_bp_mmhg: float | None = None
    diastolic_bp_mmhg: float | None = None
    heart_rate_per_min: float | None = None
    respiratory_rate_per_min: float | None = None
    spo2_percent: float | None = None
    etco2_mmhg: float | None = None
    temperature_c: float | None = None
    on_oxygen: bool = False

    def __post_init__(self) -> None:
        _aware(self.at, "at")
        for name in VITAL_NAMES:
            value = getattr(self, name)
            if value is not None:
                check_plausible(name, float(value))
        sbp, dbp = self.systolic_bp_mmhg, self.diastolic_bp_mmhg
        if sbp is not None and dbp is not None:
            if dbp >= sbp:
                raise UsageError("diastolic_bp_mmhg", f"{dbp:g} mmHg is not below the "
                                 f"systolic pressure of {sbp:g} mmHg: check the reading")
            check_plausible("pulse_pressure_mmhg", float(sbp - dbp),
                            field="diastolic_bp_mmhg")

    def value(self, name: str) -> float | None:
        if name not in VITAL_NAMES:
            raise UsageError("vital", f"unknown vital sign {name!r}")
        result: float | None = getattr(self, name)
        return result

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at.isoformat(), "on_oxygen": self.on_oxygen}
        out.update({name: getattr(self, name) for name in VITAL_NAMES})
        return out


@dataclass(frozen=True, slots=True)
class VitalThreshold:
    """Alarm bounds for one vital sign: alarm when value < ``low`` or value > ``high``.

    Comparisons are strict, as protocol tables are written ("SBP < 90 or > 180" [S38]).
    """

    vital: str
    low: float | None
    high: float | None
    source: str

    def __post_init__(self) -> None:
        if self.vital not in VITAL_NAMES:
            raise UsageError("vital", f"unknown vital sign {self.vital!r}")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise UsageError(f"thresholds.{self.vital}", "low must be below high")


@dataclass(frozen=True, slots=True)
class Alarm:
    vital: str
    bound: str  # "low" or "high"
    value: float
    threshold: float
    at: datetime
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "vital": self.vital,
            "bound": self.bound,
            "value": self.value,
            "threshold": self.threshold,
            "at": self.at.isoformat(),
            "source": self.source,
        }


def vital_alarms(vitals: VitalSigns, thresholds: Iterable[VitalThreshold]) -> tuple[Alarm, ...]:
    """Every threshold the set ``vitals`` is beyond (missing signs raise nothing)."""
    alarms = []
    for th in thresholds:
        value = vitals.value(th.vital)
        if value is None:
            continue
        if th.low is not None and value < th.low:
            alarms.append(Alarm(th.vital, "low", value, th.low, vitals.at, th.source))
        if th.high is not None and value > th.high:
            alarms.append(Alarm(th.vital, "high", value, th.high, vitals.at, th.source))
    return tuple(alarms)


@dataclass(frozen=True, slots=True)
class AlarmEpisode:
    """A run of consecutive sets beyond one bound: raised when the value crosses the
    threshold, cleared by the first later set with that sign back inside it."""

    vital: str
    bound: str
    threshold: float
    raised_at: datetime
    cleared_at: datetime | None
    worst_value: float
    source: str

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vital": self.vital,
            "bound": self.bound,
            "threshold": self.threshold,
            "raised_at": self.raised_at.isoformat(),
            "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
            "worst_value": self.worst_value,
            "active": self.active,
            "source": self.source,
        }


def alarm_episodes(
    series: Iterable[VitalSigns], thresholds: Sequence[VitalThreshold]
) -> tuple[AlarmEpisode, ...]:
    """Alarm episodes over a session's vital-sign sets (taken in time order).

    A set that lacks the sign neither raises nor clears its alarm.
    """
    open_: dict[tuple[str, str], AlarmEpisode] = {}
    done: list[AlarmEpisode] = []
    for vs in sorted(series, key=lambda v: v.at):
        beyond = {(a.vital, a.bound): a for a in vital_alarms(vs, thresholds)}
        for key, alarm in beyond.items():
            ep = open_.get(key)
            if ep is None:
                open_[key] = AlarmEpisode(
                    alarm.vital,
                    alarm.bound,
                    alarm.threshold,
                    vs.at,
                    None,
                    alarm.value,
                    alarm.source,
                )
            else:
                worse = max if alarm.bound == "high" else min
                open_[key] = AlarmEpisode(
                    ep.vital,
                    ep.bound,
                    ep.threshold,
                    ep.raised_at,
                    None,
                    worse(ep.worst_value, alarm.value),
                    ep.source,
                )
        for key in [k for k in open_ if k not in beyond and vs.value(k[0]) is not None]:
            ep = open_.pop(key)
            done.append(
                AlarmEpisode(
                    ep.vital, ep.bound, ep.threshold, ep.raised_at, vs.at, ep.worst_value, ep.source
                )
            )
    return tuple(sorted([*done, *open_.values()], key=lambda e: (e.raised_at, e.vital)))


# --------------------------------------------------------------------------- overdue


@dataclass(frozen=True, slots=True)
class OverdueStatus:
    reference: datetime  # the last set of vitals, or the start of monitoring
    due_at: datetime
    now: datetime
    interval: timedelta

    @property
    def overdue(self) -> bool:
        return self.now - self.reference > self.interval

    @property
    def overdue_by(self) -> timedelta:
        """How late the next set is (zero while not overdue)."""
        return max(self.now - self.due_at, timedelta(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference.isoformat(),
            "due_at": self.due_at.isoformat(),
            "now": self.now.isoformat(),
            "interval_min": self.interval / timedelta(minutes=1),
            "overdue": self.overdue,
            "overdue_by_min": self.overdue_by / timedelta(minutes=1),
        }


def vitals_overdue(
    last_vitals_at: datetime | None,
    *,
    monitoring_since: datetime,
    now: datetime,
    interval: timedelta,
) -> OverdueStatus:
    """Is the next set of vital signs overdue?

    The clock runs from the later of the last set and ``monitoring_since`` (the infusion
    start, so a baseline set taken before the start does not shorten the first interval).
    Overdue means strictly more than ``interval`` [protocol's monitoring interval] since
    then; ``overdue_by`` is how far past the due time ``now`` is.
    """
    for name, value in (("monitoring_since", monitoring_since), ("now", now)):
        _aware(value, name)
    if interval <= timedelta(0):
        raise UsageError("interval", "must be a positive duration")
    reference = monitoring_since
    if last_vitals_at is not None and _aware(last_vitals_at, "last_vitals_at") > reference:
        reference = last_vitals_at
    if now < reference:
        raise UsageError("now", "is before the last vital signs")
    return OverdueStatus(reference, reference + interval, now, interval)
