"""The infusion record: rate events, their checked sequence, and the exact totals (dose,
time at each rate, the rate now) summed over the rate segments.
"""


from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.monitoring._common import Number, _aware, as_number
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.errors import UsageError

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
