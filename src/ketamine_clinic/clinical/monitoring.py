"""Live infusion monitoring: exact dose, session limits, vital-sign alarms, overdue checks,
and the fold of timeline corrections into the effective record.

Units and arithmetic
--------------------
* Times are timezone-aware :class:`datetime.datetime`; durations are
  :class:`datetime.timedelta`, which holds whole microseconds, so every duration converts
  to an exact :class:`fractions.Fraction` of an hour (:func:`.units.h_from_timedelta`).
* Rates are ``rate_mg_per_h``, boluses ``dose_mg``, the bag ``concentration_mg_per_ml``,
  weights ``weight_kg``. They are held as :class:`~fractions.Fraction`; ints, Decimals and
  strings convert exactly, floats through their shortest repr (``0.1`` → 1/10), which is
  the number the person typed.
* The dose is the exact piecewise sum Σ rate × duration over the rate segments, plus
  boluses; no floating point is involved until a result is shown.

Thresholds (alarm limits, monitoring interval, session limits) are parameters: they belong
to the protocol, not to this module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Generic, TypeVar

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.limit_checks import LimitCheck, evaluate_limit
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.errors import UsageError

Number = units.ExactInput

def _aware(at: datetime, field_name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError(field_name, "time must carry a time zone")
    return at


def as_number(value: Fraction, places: int = 6) -> float:
    """A Fraction rounded for display and JSON (the exact value is kept beside it)."""
    return round(float(value), places)


# --------------------------------------------------------------------------- rate events


class RateEventKind(enum.Enum):
    START = "start"
    RATE_CHANGE = "rate_change"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    BOLUS = "bolus"


@dataclass(frozen=True, slots=True)
class RateEvent:
    """One event of the infusion pump's history.

    ``rate_mg_per_h`` is required (> 0) for START and RATE_CHANGE, optional for RESUME
    (None resumes at the rate in force before the pause) and absent otherwise.
    ``dose_mg`` (> 0) is required for BOLUS and absent otherwise. A rate of zero is
    written as a PAUSE so that paused time is visible in the record.
    """

    kind: RateEventKind
    at: datetime
    rate_mg_per_h: Fraction | None = None
    dose_mg: Fraction | None = None

    def __post_init__(self) -> None:
        _aware(self.at, "at")
        kind = self.kind
        rate = self.rate_mg_per_h
        needs_rate = kind in (RateEventKind.START, RateEventKind.RATE_CHANGE)
        may_have_rate = needs_rate or kind is RateEventKind.RESUME
        if rate is None and needs_rate:
            raise UsageError("rate_mg_per_h", f"a {kind.value} needs a rate")
        if rate is not None:
            if not may_have_rate:
                raise UsageError("rate_mg_per_h", f"a {kind.value} carries no rate")
            value = units.exact(rate, field="rate_mg_per_h")
            if value <= 0:
                raise UsageError("rate_mg_per_h", "must be above zero (record a pause instead)")
            object.__setattr__(self, "rate_mg_per_h", value)
        if kind is RateEventKind.BOLUS:
            if self.dose_mg is None:
                raise UsageError("dose_mg", "a bolus needs a dose")
            dose = units.exact(self.dose_mg, field="dose_mg")
            if dose <= 0:
                raise UsageError("dose_mg", "must be above zero")
            object.__setattr__(self, "dose_mg", dose)
        elif self.dose_mg is not None:
            raise UsageError("dose_mg", f"a {kind.value} carries no dose")

    # Constructors that accept any exact number (the fields hold Fractions).
    @classmethod
    def start(cls, at: datetime, rate_mg_per_h: Number) -> RateEvent:
        return cls(RateEventKind.START, at, units.exact(rate_mg_per_h, field="rate_mg_per_h"))

    @classmethod
    def rate_change(cls, at: datetime, rate_mg_per_h: Number) -> RateEvent:
        return cls(RateEventKind.RATE_CHANGE, at, units.exact(rate_mg_per_h, field="rate_mg_per_h"))

    @classmethod
    def pause(cls, at: datetime) -> RateEvent:
        return cls(RateEventKind.PAUSE, at)

    @classmethod
    def resume(cls, at: datetime, rate_mg_per_h: Number | None = None) -> RateEvent:
        rate = None if rate_mg_per_h is None else units.exact(rate_mg_per_h, field="rate_mg_per_h")
        return cls(RateEventKind.RESUME, at, rate)

    @classmethod
    def stop(cls, at: datetime) -> RateEvent:
        return cls(RateEventKind.STOP, at)

    @classmethod
    def bolus(cls, at: datetime, dose_mg: Number) -> RateEvent:
        return cls(RateEventKind.BOLUS, at, dose_mg=units.exact(dose_mg, field="dose_mg"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "rate_mg_per_h": None if self.rate_mg_per_h is None else str(self.rate_mg_per_h),
            "dose_mg": None if self.dose_mg is None else str(self.dose_mg),
        }


class InfusionStatus(enum.Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RateSegment:
    """A stretch of constant rate: from ``start`` to ``end`` at ``rate_mg_per_h``."""

    start: datetime
    end: datetime
    rate_mg_per_h: Fraction

    @property
    def dose_mg(self) -> Fraction:
        return units.dose_mg(self.rate_mg_per_h, units.h_from_timedelta(self.end - self.start))

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rate_mg_per_h": str(self.rate_mg_per_h),
            "dose_mg": str(self.dose_mg),
        }


@dataclass(frozen=True, slots=True)
class InfusionTotals:
    """Exact totals of one session's ketamine up to ``as_of``.

    All quantities are Fractions; :meth:`to_dict` gives each as an exact string
    (``"245/3"``) and a rounded float.
    """

    as_of: datetime
    status: InfusionStatus
    infused_mg: Fraction
    bolus_mg: Fraction
    weight_kg: Fraction
    concentration_mg_per_ml: Fraction
    current_rate_mg_per_h: Fraction
    rate_before_pause_mg_per_h: Fraction
    infusing_time: timedelta
    paused_time: timedelta
    started_at: datetime | None
    stopped_at: datetime | None
    segments: tuple[RateSegment, ...]
    events: tuple[RateEvent, ...]

    @property
    def total_mg(self) -> Fraction:
        return self.infused_mg + self.bolus_mg

    @property
    def total_mg_per_kg(self) -> Fraction:
        return self.total_mg / self.weight_kg

    @property
    def volume_ml(self) -> Fraction:
        return units.volume_ml(self.total_mg, self.concentration_mg_per_ml)

    @property
    def current_pump_rate_ml_per_h(self) -> Fraction:
        return units.pump_rate_ml_per_h_from_mg_per_h(
            self.current_rate_mg_per_h, self.concentration_mg_per_ml
        )

    def to_dict(self) -> dict[str, Any]:
        quantities = {
            "total_mg": self.total_mg,
            "infused_mg": self.infused_mg,
            "bolus_mg": self.bolus_mg,
            "total_mg_per_kg": self.total_mg_per_kg,
            "volume_ml": self.volume_ml,
            "current_rate_mg_per_h": self.current_rate_mg_per_h,
            "current_pump_rate_ml_per_h": self.current_pump_rate_ml_per_h,
        }
        out: dict[str, Any] = {}
        for name, value in quantities.items():
            out[name] = as_number(value)
            out[f"{name}_exact"] = str(value)
        out.update(
            {
                "as_of": self.as_of.isoformat(),
                "status": self.status.value,
                "infusing_min": self.infusing_time / timedelta(minutes=1),
                "paused_min": self.paused_time / timedelta(minutes=1),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
                "segments": [s.to_dict() for s in self.segments],
                "inputs": {
                    "weight_kg": str(self.weight_kg),
                    "concentration_mg_per_ml": str(self.concentration_mg_per_ml),
                    "events": [e.to_dict() for e in self.events],
                },
            }
        )
        return out


def _check_sequence(events: Sequence[RateEvent]) -> None:
    """Refuse an impossible pump history, naming the first bad event."""
    status = InfusionStatus.NOT_STARTED
    previous: datetime | None = None
    for i, ev in enumerate(events):
        where = f"rate_events[{i}]"
        if previous is not None and ev.at < previous:
            raise UsageError(where, "events must be in time order")
        previous = ev.at
        kind = ev.kind
        if status is InfusionStatus.STOPPED:
            raise UsageError(where, f"{kind.value} after the infusion was stopped")
        allowed = {
            InfusionStatus.NOT_STARTED: {RateEventKind.START, RateEventKind.BOLUS},
            InfusionStatus.RUNNING: {
                RateEventKind.RATE_CHANGE,
                RateEventKind.PAUSE,
                RateEventKind.STOP,
                RateEventKind.BOLUS,
            },
            InfusionStatus.PAUSED: {RateEventKind.RESUME, RateEventKind.STOP, RateEventKind.BOLUS},
        }[status]
        if kind not in allowed:
            raise UsageError(where, f"{kind.value} is not possible while {status.value}")
        status = {
            RateEventKind.START: InfusionStatus.RUNNING,
            RateEventKind.RESUME: InfusionStatus.RUNNING,
            RateEventKind.PAUSE: InfusionStatus.PAUSED,
            RateEventKind.STOP: InfusionStatus.STOPPED,
        }.get(kind, status)


def infusion_totals(
    events: Sequence[RateEvent],
    *,
    weight_kg: Number,
    concentration_mg_per_ml: Number,
    at: datetime | None = None,
) -> InfusionTotals:
    """Exact cumulative ketamine dose [mg, mg/kg] and volume [mL] of one session.

    Parameters
    ----------
    events
        The pump history in time order (the *effective* entries, after corrections).
    weight_kg
        Dosing weight [kg] (the one on the order).
    concentration_mg_per_ml
        Bag concentration [mg/mL]; the volume is total mg / concentration.
    at
        The time to integrate up to; required unless the history ends with STOP (then it
        defaults to the stop time). Events after ``at`` are ignored, so the same history
        gives the dose at any moment of the chart.

    Returns
    -------
    InfusionTotals
        Exact Fractions. A running infusion is integrated up to ``at`` ("now").
    """
    events = tuple(events)
    _check_sequence(events)
    weight = units.exact(weight_kg, field="weight_kg")
    check_plausible("weight_kg", float(weight))
    conc = units.exact(concentration_mg_per_ml, field="concentration_mg_per_ml")
    if conc <= 0:
        raise UsageError("concentration_mg_per_ml", "must be above zero")
    if at is None:
        if not events or events[-1].kind is not RateEventKind.STOP:
            raise UsageError("at", "needed for an infusion that has not been stopped")
        at = events[-1].at
    _aware(at, "at")

    status = InfusionStatus.NOT_STARTED
    rate = Fraction(0)
    rate_before_pause = Fraction(0)
    segment_start: datetime | None = None
    segments: list[RateSegment] = []
    bolus = Fraction(0)
    paused = timedelta(0)
    pause_start: datetime | None = None
    started_at = stopped_at = None

    def close_segment(end: datetime) -> None:
        if segment_start is not None and end > segment_start:
            segments.append(RateSegment(segment_start, end, rate))

    for ev in events:
        if ev.at > at:
            break
        kind = ev.kind
        if kind is RateEventKind.BOLUS:
            assert ev.dose_mg is not None  # guaranteed by RateEvent
            bolus += ev.dose_mg
            continue
        close_segment(ev.at)
        if kind in (RateEventKind.START, RateEventKind.RATE_CHANGE, RateEventKind.RESUME):
            if kind is RateEventKind.START:
                started_at = ev.at
            if kind is RateEventKind.RESUME:
                assert pause_start is not None
                paused += ev.at - pause_start
                pause_start = None
            rate = ev.rate_mg_per_h if ev.rate_mg_per_h is not None else rate_before_pause
            segment_start = ev.at
            status = InfusionStatus.RUNNING
        elif kind is RateEventKind.PAUSE:
            rate_before_pause, rate = rate, Fraction(0)
            segment_start, pause_start = None, ev.at
            status = InfusionStatus.PAUSED
        else:  # STOP
            if pause_start is not None:
                paused += ev.at - pause_start
                pause_start = None
            rate, segment_start, stopped_at = Fraction(0), None, ev.at
            status = InfusionStatus.STOPPED
    close_segment(at)
    if pause_start is not None:
        paused += at - pause_start
    if status is InfusionStatus.RUNNING:
        rate_before_pause = rate

    return InfusionTotals(
        as_of=at,
        status=status,
        infused_mg=sum((s.dose_mg for s in segments), Fraction(0)),
        bolus_mg=bolus,
        weight_kg=weight,
        concentration_mg_per_ml=conc,
        current_rate_mg_per_h=rate,
        rate_before_pause_mg_per_h=rate_before_pause,
        infusing_time=sum((s.end - s.start for s in segments), timedelta(0)),
        paused_time=paused,
        started_at=started_at,
        stopped_at=stopped_at,
        segments=tuple(segments),
        events=events,
    )


# --------------------------------------------------------------------------- limits


SESSION_LIMIT_QUANTITIES = ("session_total_mg", "session_total_mg_per_kg")


@dataclass(frozen=True, slots=True)
class LimitFinding:
    """One session-total limit checked against the projected total
    (:func:`.limit_checks.evaluate_limit`), and when the current rate reaches its upper
    bound (None: no upper bound, not running, or already at or past it)."""

    check: LimitCheck
    reached_at: datetime | None

    @property
    def exceeded(self) -> bool:
        return self.check.exceeded

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.check.to_dict(),
            "reached_at": self.reached_at.isoformat() if self.reached_at else None,
        }


@dataclass(frozen=True, slots=True)
class SessionLimitCheck:
    """The dose so far, the dose projected to the planned end, and each limit's verdict.

    ``assumed_rate_mg_per_h`` is the rate assumed from now to ``planned_end``: the current
    rate, or for a paused infusion the rate before the pause (it may resume).
    """

    current: InfusionTotals
    planned_end: datetime
    assumed_rate_mg_per_h: Fraction
    projected_mg: Fraction
    findings: tuple[LimitFinding, ...]

    @property
    def projected_mg_per_kg(self) -> Fraction:
        return self.projected_mg / self.current.weight_kg

    @property
    def hard_limit_exceeded(self) -> bool:
        return any(f.check.blocks for f in self.findings)

    @property
    def soft_limit_exceeded(self) -> bool:
        return any(f.check.needs_override for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(),
            "planned_end": self.planned_end.isoformat(),
            "assumed_rate_mg_per_h": str(self.assumed_rate_mg_per_h),
            "projected_mg": as_number(self.projected_mg),
            "projected_mg_exact": str(self.projected_mg),
            "projected_mg_per_kg": as_number(self.projected_mg_per_kg),
            "hard_limit_exceeded": self.hard_limit_exceeded,
            "soft_limit_exceeded": self.soft_limit_exceeded,
            "findings": [f.to_dict() for f in self.findings],
        }


def check_session_limits(
    events: Sequence[RateEvent],
    *,
    weight_kg: Number,
    concentration_mg_per_ml: Number,
    now: datetime,
    planned_end: datetime,
    limits: Iterable[Limit],
) -> SessionLimitCheck:
    """Check the projected session total against the protocol's session limits.

    The projection is the exact dose so far plus ``assumed_rate × (planned_end − now)``.
    Only limits on ``session_total_mg`` and ``session_total_mg_per_kg`` are considered
    (other quantities in ``limits`` are ignored); each is judged by the shared
    :func:`.limit_checks.evaluate_limit`, so bounds are inclusive (a projected total equal
    to the bound is within it).
    """
    current = infusion_totals(
        events, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml, at=now
    )
    _aware(planned_end, "planned_end")
    if current.status is InfusionStatus.STOPPED:
        rate = Fraction(0)
        remaining = timedelta(0)
    else:
        rate = (
            current.current_rate_mg_per_h
            if current.status is InfusionStatus.RUNNING
            else current.rate_before_pause_mg_per_h
        )
        remaining = max(planned_end - now, timedelta(0))
    projected = current.total_mg + rate * units.h_from_timedelta(remaining)
    findings = []
    for limit in limits:
        if limit.quantity not in SESSION_LIMIT_QUANTITIES:
            continue
        per_kg = limit.quantity == "session_total_mg_per_kg"
        scale = current.weight_kg if per_kg else Fraction(1)
        check = evaluate_limit(limit, projected / scale)
        reached_at = None
        if limit.upper is not None and rate > 0:
            upper_mg = units.exact(limit.upper, field=f"limits.{limit.quantity}.upper") * scale
            if current.total_mg < upper_mg:
                reached_at = now + units.timedelta_from_h((upper_mg - current.total_mg) / rate)
        findings.append(LimitFinding(check, reached_at))
    return SessionLimitCheck(current, planned_end, rate, projected, tuple(findings))


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


# --------------------------------------------------------------------------- corrections

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class TimelineEntry(Generic[P]):
    """One append-only entry of the session timeline.

    A correction is an entry with ``corrects`` set to the id of the entry it replaces,
    the same ``kind`` and a ``reason``. A retraction ("entered in error") has
    ``entered_in_error=True``, ``corrects`` set and no payload.
    """

    entry_id: str
    kind: str
    at: datetime
    payload: P | None
    corrects: str | None = None
    reason: str = ""
    entered_in_error: bool = False


class EntryStatus(enum.Enum):
    EFFECTIVE = "effective"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered_in_error"
    RETRACTION = "retraction"  # the marker entry that retracted another


@dataclass(frozen=True, slots=True)
class FoldedEntry(Generic[P]):
    entry: TimelineEntry[P]
    status: EntryStatus
    replaced_by: str | None = None  # the correction or retraction that replaced it
    replaces: tuple[str, ...] = field(default=())  # ids this entry replaces, oldest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry.entry_id,
            "kind": self.entry.kind,
            "at": self.entry.at.isoformat(),
            "status": self.status.value,
            "replaced_by": self.replaced_by,
            "replaces": list(self.replaces),
            "reason": self.entry.reason,
        }


def fold_corrections(entries: Sequence[TimelineEntry[P]]) -> tuple[FoldedEntry[P], ...]:
    """Mark every entry of an append-only timeline effective, superseded, entered in
    error, or retraction marker; in record order (the order they were appended).

    A correction or retraction must point at an earlier entry of the same kind that is
    still effective (to change a corrected value, correct the correction), and must give
    a reason. Nothing is dropped: the originals stay, marked.
    """
    state: dict[str, FoldedEntry[P]] = {}
    order: list[str] = []
    for i, e in enumerate(entries):
        where = f"entries[{i}]"
        if e.entry_id in state:
            raise UsageError(where, f"duplicate entry id {e.entry_id!r}")
        if e.corrects is None:
            if e.entered_in_error:
                raise UsageError(where, "an entered-in-error marker must name the entry")
            if e.payload is None:
                raise UsageError(where, "an entry needs a payload")
            state[e.entry_id] = FoldedEntry(e, EntryStatus.EFFECTIVE)
            order.append(e.entry_id)
            continue
        target = state.get(e.corrects)
        if target is None:
            raise UsageError(where, f"corrects unknown or later entry {e.corrects!r}")
        if not e.reason.strip():
            raise UsageError(where, "a correction needs a reason")
        if target.status is not EntryStatus.EFFECTIVE:
            hint = f" (correct {target.replaced_by!r} instead)" if target.replaced_by else ""
            raise UsageError(where, f"entry {e.corrects!r} is {target.status.value}{hint}")
        if target.entry.kind != e.kind:
            raise UsageError(where, f"a {e.kind} entry cannot correct a {target.entry.kind} entry")
        if e.entered_in_error:
            state[e.corrects] = FoldedEntry(
                target.entry, EntryStatus.ENTERED_IN_ERROR, e.entry_id, target.replaces
            )
            state[e.entry_id] = FoldedEntry(e, EntryStatus.RETRACTION, None, (e.corrects,))
        else:
            if e.payload is None:
                raise UsageError(where, "a correction needs the corrected payload")
            state[e.corrects] = FoldedEntry(
                target.entry, EntryStatus.SUPERSEDED, e.entry_id, target.replaces
            )
            state[e.entry_id] = FoldedEntry(
                e, EntryStatus.EFFECTIVE, None, (*target.replaces, e.corrects)
            )
        order.append(e.entry_id)
    return tuple(state[i] for i in order)


def effective_entries(entries: Sequence[TimelineEntry[P]]) -> tuple[TimelineEntry[P], ...]:
    """The derived view: only effective entries, in clinical time order (``at``), ties in
    record order."""
    folded = fold_corrections(entries)
    alive = [f.entry for f in folded if f.status is EntryStatus.EFFECTIVE]
    return tuple(sorted(alive, key=lambda e: e.at))  # sorted() is stable


def effective_payloads(entries: Sequence[TimelineEntry[P]], kind: str) -> tuple[P, ...]:
    """Payloads of the effective entries of one ``kind``, in time order."""
    out: list[P] = []
    for e in effective_entries(entries):
        if e.kind == kind and e.payload is not None:
            out.append(e.payload)
    return tuple(out)
