"""Session limits during the infusion: the dose given so far and the dose projected to the
planned end, each against the protocol's session-total limits.
"""


from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.limit_checks import LimitCheck, evaluate_limit
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.monitoring._common import Number, _aware, as_number
from ketamine_clinic.clinical.monitoring.infusion import (
    InfusionStatus,
    InfusionTotals,
    RateEvent,
    infusion_totals,
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
            upper_mg = limit.upper * scale
            if current.total_mg < upper_mg:
                reached_at = now + units.timedelta_from_h((upper_mg - current.total_mg) / rate)
        findings.append(LimitFinding(check, reached_at))
    return SessionLimitCheck(current, planned_end, rate, projected, tuple(findings))
