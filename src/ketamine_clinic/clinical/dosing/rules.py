"""What dosing needs from a protocol version: the protocol reference, the infusion plan,
the dosing rules, and the adapter that builds them from a loaded :class:`.Protocol`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.limit_checks import (
    KNOWN_QUANTITIES,
)
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.protocol import DosingBasis, Protocol, Quantity
from ketamine_clinic.clinical.units import (
    Bolus,
    BolusForm,
    Rate,
    RateForm,
    h_from_min,
    to_float,
)
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- protocol inputs


@dataclass(frozen=True, slots=True)
class ProtocolRef:
    """Which protocol version produced a result."""

    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


class WeightBasis(enum.Enum):
    """Which weight a protocol doses on."""

    ACTUAL = "actual"
    IDEAL = "ideal"  # Devine ideal body weight
    ADJUSTED = "adjusted"  # IBW + factor × (actual − IBW)


@dataclass(frozen=True, slots=True)
class InfusionPlan:
    """The infusion part of an order (or a protocol's defaults for it).

    Attributes
    ----------
    start_rate, max_rate
        As entered, any form [mg/kg/h, mg/h or mL/h]; start ≤ max.
    titration_step
        Increase per step, any form; ``None`` for a fixed rate (start must equal max).
    min_step_interval_min
        Minimum time between increases [min], > 0.
    planned_duration_h
        Planned infusion time per session [h], > 0.
    sessions
        Sessions in the series, ≥ 1.
    bolus
        Optional loading bolus [mg or mg/kg], counted in the session total.
    """

    start_rate: Rate
    max_rate: Rate
    titration_step: Rate | None
    min_step_interval_min: Fraction
    planned_duration_h: Fraction
    sessions: int = 1
    bolus: Bolus | None = None

    def __post_init__(self) -> None:
        if self.min_step_interval_min <= 0:
            raise UsageError("min_step_interval_min", "must be greater than zero")
        if self.planned_duration_h <= 0:
            raise UsageError("planned_duration_h", "must be greater than zero")
        if isinstance(self.sessions, bool) or self.sessions < 1:
            raise UsageError("sessions", "must be a whole number of at least 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_rate": self.start_rate.to_dict(),
            "max_rate": self.max_rate.to_dict(),
            "titration_step": None
            if self.titration_step is None
            else self.titration_step.to_dict(),
            "min_step_interval_min": to_float(self.min_step_interval_min),
            "planned_duration_h": to_float(self.planned_duration_h),
            "sessions": self.sessions,
            "bolus": None if self.bolus is None else self.bolus.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class DosingRules:
    """What dosing needs from a protocol version (built from a Protocol by an adapter).

    Attributes
    ----------
    protocol
        Name and version, carried into every result.
    dosing_basis
        ``RateForm.MG_PER_H`` (fixed) or ``RateForm.MG_PER_KG_PER_H`` (weight-based).
    usual_rate
        The protocol's usual rate in ``dosing_basis``'s unit, for the decimal-slip guard.
    allowed_concentrations_mg_per_ml
        Bag concentrations the protocol allows [mg/mL]; exact match required.
    limits
        Hard and soft limits; every quantity must be in ``KNOWN_QUANTITIES``.
    weight_basis, obesity_threshold_ratio
        Dose on actual, ideal or adjusted weight; with a ratio, IBW/adjusted weight is used
        only when actual ≥ ratio × IBW.
    max_weight_age_days
        Oldest weight measurement the protocol accepts [days], inclusive.
    default_plan
        The protocol's start rate, step, interval, maximum and duration, if it has them.
    """

    protocol: ProtocolRef
    dosing_basis: RateForm
    usual_rate: Fraction
    allowed_concentrations_mg_per_ml: tuple[Fraction, ...]
    limits: tuple[Limit, ...]
    max_weight_age_days: int
    weight_basis: WeightBasis = WeightBasis.ACTUAL
    obesity_threshold_ratio: Fraction | None = None
    default_plan: InfusionPlan | None = None

    def __post_init__(self) -> None:
        if self.dosing_basis is RateForm.ML_PER_H:
            raise UsageError("dosing_basis", "a protocol doses in mg/h or mg/kg/h, not mL/h")
        if self.usual_rate <= 0:
            raise UsageError("usual_rate", "must be greater than zero")
        if not self.allowed_concentrations_mg_per_ml:
            raise UsageError("allowed_concentrations_mg_per_ml", "the protocol allows none")
        for limit in self.limits:
            if limit.quantity not in KNOWN_QUANTITIES:
                # A limit nobody checks is a silent hole: refuse it.
                raise UsageError(f"limits.{limit.quantity}", "unknown limit quantity")
            if limit.lower is None and limit.upper is None:
                raise UsageError(f"limits.{limit.quantity}", "has neither bound")
        if self.max_weight_age_days < 0:
            raise UsageError("max_weight_age_days", "must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.to_dict(),
            "dosing_basis": self.dosing_basis.value,
            "usual_rate": to_float(self.usual_rate),
            "allowed_concentrations_mg_per_ml": [
                to_float(c) for c in self.allowed_concentrations_mg_per_ml
            ],
            "weight_basis": self.weight_basis.value,
            "obesity_threshold_ratio": None
            if self.obesity_threshold_ratio is None
            else to_float(self.obesity_threshold_ratio),
            "max_weight_age_days": self.max_weight_age_days,
            "limits": [_limit_dict(lim) for lim in self.limits],
        }


def _limit_dict(limit: Limit) -> dict[str, Any]:
    return {
        "quantity": limit.quantity,
        "kind": limit.kind.value,
        "lower": None if limit.lower is None else to_float(limit.lower),
        "upper": None if limit.upper is None else to_float(limit.upper),
        "source": limit.source,
    }


# --------------------------------------------------------------------------- protocol adapter


_BASES = {
    DosingBasis.FIXED: RateForm.MG_PER_H,
    DosingBasis.WEIGHT: RateForm.MG_PER_KG_PER_H,
}


def rules_from_protocol(protocol: Protocol) -> DosingRules:
    """The :class:`DosingRules` of a loaded protocol version (:mod:`.protocol`).

    Reads ``protocol.dosing`` (basis, rates in the basis unit, interval [min], planned
    duration [min], weight rule, maximum weight age [d], obesity ratio, bolus [mg/kg]),
    ``protocol.drug.bag_concentrations_mg_per_ml``, ``protocol.series.sessions`` and
    ``protocol.limits``. The loader has already checked units and sources; numbers are
    the exact fractions it read.
    """
    d = protocol.dosing
    basis = _BASES[d.dosing_basis]

    def rate(q: Quantity) -> Rate:
        return Rate(q.value, basis, f"{_number_text(q.value)} {basis.value}")

    default_plan = None
    if d.titration_step is None or d.min_step_interval_min is not None:
        # A fixed-rate protocol may leave the interval out; it is then never used.
        interval = d.min_step_interval_min
        default_plan = InfusionPlan(
            start_rate=rate(d.start_rate),
            max_rate=rate(d.max_rate),
            titration_step=None if d.titration_step is None else rate(d.titration_step),
            min_step_interval_min=d.planned_duration_min.value
            if interval is None
            else interval.value,
            planned_duration_h=h_from_min(d.planned_duration_min.value),
            sessions=int(protocol.series.sessions.value),
            bolus=None
            if d.bolus_mg_per_kg is None
            else Bolus(
                d.bolus_mg_per_kg.value,
                BolusForm.MG_PER_KG,
                f"{_number_text(d.bolus_mg_per_kg.value)} mg/kg",
            ),
        )
    ratio = d.obesity_threshold_ratio
    return DosingRules(
        protocol=ProtocolRef(protocol.name, str(protocol.version)),
        dosing_basis=basis,
        usual_rate=d.usual_rate.value,
        allowed_concentrations_mg_per_ml=tuple(
            q.value for q in protocol.drug.bag_concentrations_mg_per_ml
        ),
        limits=tuple(protocol.limits),
        max_weight_age_days=int(d.max_weight_age_days.value),
        weight_basis=WeightBasis(d.weight_basis.value),
        obesity_threshold_ratio=None if ratio is None else ratio.value,
        default_plan=default_plan,
    )


def default_rate_texts(protocol: Protocol, weight_kg: Fraction | None) -> tuple[str, str]:
    """The start and maximum rates an order form starts from, as text with the unit.

    A weight-based protocol with ``dosing.rate_cap_mg_per_h`` caps itself: when the rate
    times the dosing weight [kg] is above the cap, the default is the cap in mg/h
    (Schwartzman 2009: 0.35 mg/kg/h, never more than 25 mg/h [S9]); otherwise, and when the
    weight is not known, the protocol's own rates. The prescriber may still type others;
    the order check judges what is typed.
    """
    d = protocol.dosing
    unit = d.rate_unit
    cap = d.rate_cap_mg_per_h

    def text(q: Quantity) -> str:
        if cap is not None and weight_kg is not None and q.value * weight_kg > cap.value:
            return f"{_number_text(cap.value)} mg/h"
        return f"{_number_text(q.value)} {unit}"

    return text(d.start_rate), text(d.max_rate)


def _number_text(value: Fraction) -> str:
    """A protocol number as it was written (the loader read it exactly from a decimal)."""
    return repr(to_float(value)).removesuffix(".0")
