"""Dose-error reduction for ketamine infusions: dosing weight, bag, every form of a rate,
titration table, planned totals, limit checks and wrong-unit cross-checks.

Pure functions over frozen dataclasses; all arithmetic is exact (:mod:`.units`). Every
result has ``to_dict()`` giving a JSON-able dict with its inputs, its outputs and the
protocol (name, version) that produced it, for the web layer to store.

One shared rate check
---------------------
:func:`check_rate` is the only place a rate is judged. :func:`check_order` calls it for
each step of the titration table (at order writing and again at signing), and the session
calls it for every later rate change (with the signed order's own bounds added through
:func:`order_limits`). :func:`check_dose` (the ``dose`` command) calls it for one rate.

Decisions
---------
* Limits are inclusive (a value equal to a bound is ok), see :mod:`.limit_checks`.
* A rate may be entered as mg/kg/h, mg/h or mL/h whatever the protocol's dosing basis; all
  three forms are always computed from the dosing weight and the bag's concentration.
* Titration step size and minimum interval bound *increases* only: lowering a rate (for
  side effects) is never held back. Stopping the infusion is not a rate change.
* Planned session total is the most the order allows: titrating up by the full step at
  the minimum interval from the start rate to the maximum rate, then holding the maximum
  until the planned duration ends (plus any bolus). The total if the rate is never raised
  is given too.
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from ketamine_clinic.clinical.limit_checks import (
    KNOWN_QUANTITIES,
    CheckStatus,
    CrossCheck,
    LimitCheck,
    Outcome,
    evaluate_limit,
    outcome_of,
    worst_per_limit,
)
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.clinical.protocol import DosingBasis, Protocol, Quantity
from ketamine_clinic.clinical.units import (
    Bag,
    Bolus,
    BolusForm,
    Rate,
    RateForm,
    RateForms,
    dose_mg,
    exact,
    h_from_min,
    inch_from_cm,
    min_from_h,
    pump_rate_ml_per_h_from_mg_per_h,
    rate_forms,
    rate_forms_from_mg_per_h,
    rate_mg_per_h_from_mg_per_kg_per_h,
    to_float,
    volume_ml,
)
from ketamine_clinic.errors import UsageError

__all__ = [
    "DosingRules",
    "DosingWeight",
    "DoubleCheck",
    "InfusionPlan",
    "OrderCheck",
    "PlanTotals",
    "ProtocolRef",
    "RateCheck",
    "TitrationStep",
    "WeightBasis",
    "WeightMeasurement",
    "adjusted_body_weight_kg",
    "check_bag",
    "check_dose",
    "check_order",
    "check_rate",
    "default_rate_texts",
    "dosing_weight",
    "double_check",
    "ideal_body_weight_kg",
    "order_limits",
    "plan_totals",
    "rules_from_protocol",
    "titration_table",
]

# Software guard, not a clinical number: a table longer than this is a typing error
# (a step of 0.001 mg/h) and would be unreadable.
MAX_TITRATION_STEPS = 200


def _frac(value: float | int | str | Fraction, name: str) -> Fraction:
    return exact(value, field=name)


# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True, slots=True)
class _BodyWeightData:
    ibw_base_kg: dict[str, Fraction]
    ibw_base_height_in: Fraction
    ibw_kg_per_in: Fraction
    ibw_source: str
    adjusted_factor: Fraction
    adjusted_source: str


@cache
def _body_weight_data() -> _BodyWeightData:
    raw = _reference("body_weight.toml")
    ibw, adj = raw["ideal_body_weight"], raw["adjusted_body_weight"]
    return _BodyWeightData(
        ibw_base_kg={sex: _frac(kg, "body_weight.toml") for sex, kg in ibw["base_kg"].items()},
        ibw_base_height_in=_frac(ibw["base_height_in"], "body_weight.toml"),
        ibw_kg_per_in=_frac(ibw["kg_per_in_over_base"], "body_weight.toml"),
        ibw_source=str(ibw["source"]),
        adjusted_factor=_frac(adj["factor_of_excess"], "body_weight.toml"),
        adjusted_source=str(adj["source"]),
    )


@dataclass(frozen=True, slots=True)
class _Guards:
    high_factor: Fraction
    low_factor: Fraction
    ratio_source: str
    match_resolution: Fraction
    swap_source: str
    order_deviation_kind: LimitKind
    order_deviation_source: str


@cache
def _guards() -> _Guards:
    raw = _reference("dose_error_guards.toml")
    ratio, swap, dev = (
        raw["usual_rate_ratio"],
        raw["pump_rate_equals_mg_per_h"],
        raw["order_deviation"],
    )
    return _Guards(
        high_factor=_frac(ratio["high_factor"], "dose_error_guards.toml"),
        low_factor=_frac(ratio["low_factor"], "dose_error_guards.toml"),
        ratio_source=str(ratio["source"]),
        match_resolution=_frac(swap["match_resolution"], "dose_error_guards.toml"),
        swap_source=str(swap["source"]),
        order_deviation_kind=LimitKind(dev["kind"]),
        order_deviation_source=str(dev["source"]),
    )


def _reference(name: str) -> dict[str, Any]:
    text = resources.files("ketamine_clinic.reference").joinpath(name).read_text("utf-8")
    return tomllib.loads(text)


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
        "lower": limit.lower,
        "upper": limit.upper,
        "source": limit.source,
    }


# --------------------------------------------------------------------------- dosing weight


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A recorded body weight.

    ``height_cm`` and ``sex`` (``"male"`` or ``"female"``, the two Devine formulas) are
    needed only when the protocol doses on ideal or adjusted weight.
    """

    weight_kg: Fraction
    measured_on: date
    height_cm: Fraction | None = None
    sex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_kg": to_float(self.weight_kg),
            "measured_on": self.measured_on.isoformat(),
            "height_cm": None if self.height_cm is None else to_float(self.height_cm),
            "sex": self.sex,
        }


@dataclass(frozen=True, slots=True)
class DosingWeight:
    """The weight doses are computed on, and how it was chosen.

    Attributes
    ----------
    weight_kg
        Dosing weight [kg].
    basis
        Which weight it is (actual, ideal or adjusted).
    actual_kg, ideal_kg, adjusted_kg
        The candidates [kg] (ideal/adjusted ``None`` when not computed).
    age_days
        Age of the measurement on the day of the check [days].
    sources
        References of the formulas used.
    """

    weight_kg: Fraction
    basis: WeightBasis
    actual_kg: Fraction
    ideal_kg: Fraction | None
    adjusted_kg: Fraction | None
    measurement: WeightMeasurement
    age_days: int
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_kg": to_float(self.weight_kg),
            "basis": self.basis.value,
            "actual_kg": to_float(self.actual_kg),
            "ideal_kg": None if self.ideal_kg is None else to_float(self.ideal_kg),
            "adjusted_kg": None if self.adjusted_kg is None else to_float(self.adjusted_kg),
            "measurement": self.measurement.to_dict(),
            "age_days": self.age_days,
            "sources": list(self.sources),
        }


def ideal_body_weight_kg(height_cm: Fraction, sex: str) -> Fraction:
    """Ideal body weight by Devine [kg].

    Parameters
    ----------
    height_cm
        Height [cm], within the plausibility range.
    sex
        ``"male"`` or ``"female"``.

    Notes
    -----
    IBW = base_kg(sex) + kg_per_in × (height_in − 60); below 60 in the line is extrapolated.
    Coefficients and source: ``reference/body_weight.toml`` (Devine 1974).
    """
    data = _body_weight_data()
    check_plausible("height_cm", float(height_cm), field="height_cm")
    base = data.ibw_base_kg.get(sex)
    if base is None:
        raise UsageError("sex", f"the Devine formula needs one of {sorted(data.ibw_base_kg)}")
    ibw = base + data.ibw_kg_per_in * (inch_from_cm(height_cm) - data.ibw_base_height_in)
    if ibw <= 0:
        raise UsageError("height_cm", "too short for the Devine formula; dose on actual weight")
    return ibw


def adjusted_body_weight_kg(actual_kg: Fraction, ideal_kg: Fraction) -> Fraction:
    """Adjusted body weight [kg] = IBW + factor × (actual − IBW) (factor from body_weight.toml)."""
    return ideal_kg + _body_weight_data().adjusted_factor * (actual_kg - ideal_kg)


def dosing_weight(
    measurement: WeightMeasurement,
    *,
    basis: WeightBasis,
    max_age_days: int,
    on: date,
    obesity_threshold_ratio: Fraction | None = None,
) -> DosingWeight:
    """Choose the dosing weight and refuse an outdated or implausible measurement.

    Parameters
    ----------
    measurement
        The most recent weight (and height/sex when needed).
    basis
        Actual, ideal or adjusted, as the protocol says.
    max_age_days
        Oldest accepted measurement [days]; a weight exactly that old is accepted.
    on
        The day of the check (order writing, signing, the session).
    obesity_threshold_ratio
        If given, ideal/adjusted weight applies only when actual ≥ ratio × IBW.

    Notes
    -----
    The dosing weight never exceeds the actual weight: an ideal weight above the actual
    one (a thin patient) would overdose, so the actual weight is used then.

    Raises
    ------
    UsageError
        field ``weight`` (outdated, measured in the future, implausible), ``height_cm`` or
        ``sex`` (missing when the basis needs them).
    """
    actual = measurement.weight_kg
    check_plausible("weight_kg", float(actual), field="weight")
    age_days = (on - measurement.measured_on).days
    if age_days < 0:
        raise UsageError("weight", f"measured on {measurement.measured_on}, after {on}")
    if age_days > max_age_days:
        raise UsageError(
            "weight",
            f"measured {age_days} days ago ({measurement.measured_on}); the protocol "
            f"accepts a weight at most {max_age_days} days old: weigh the patient again",
        )
    if basis is WeightBasis.ACTUAL:
        return DosingWeight(actual, basis, actual, None, None, measurement, age_days)
    if measurement.height_cm is None:
        raise UsageError("height_cm", f"needed for {basis.value} body weight")
    if measurement.sex is None:
        raise UsageError("sex", f"needed for {basis.value} body weight")
    data = _body_weight_data()
    ideal = ideal_body_weight_kg(measurement.height_cm, measurement.sex)
    adjusted = adjusted_body_weight_kg(actual, ideal)
    sources = (data.ibw_source,) + (
        (data.adjusted_source,) if basis is WeightBasis.ADJUSTED else ()
    )
    obese = actual > ideal and (
        obesity_threshold_ratio is None or actual >= obesity_threshold_ratio * ideal
    )
    if not obese:
        return DosingWeight(
            actual, WeightBasis.ACTUAL, actual, ideal, adjusted, measurement, age_days, sources
        )
    chosen = ideal if basis is WeightBasis.IDEAL else adjusted
    return DosingWeight(chosen, basis, actual, ideal, adjusted, measurement, age_days, sources)


# --------------------------------------------------------------------------- bag


def check_bag(bag: Bag, rules: DosingRules, *, field: str = "bag") -> Fraction:
    """The bag's concentration [mg/mL], or :class:`UsageError` if the protocol does not allow it.

    The match is exact (500 mg in 500 mL is exactly 1 mg/mL).
    """
    concentration = bag.concentration_mg_per_ml
    if concentration not in rules.allowed_concentrations_mg_per_ml:
        allowed = ", ".join(f"{float(c):g}" for c in rules.allowed_concentrations_mg_per_ml)
        raise UsageError(
            field,
            f"{float(concentration):g} mg/mL is not a concentration protocol "
            f"{rules.protocol.name} {rules.protocol.version} allows ({allowed} mg/mL)",
        )
    return concentration


# --------------------------------------------------------------------------- cross-checks


def _close(a: Fraction, b: Fraction, resolution: Fraction) -> bool:
    return abs(a - b) * 2 < resolution


def cross_check_rate(
    rate: Rate,
    forms: RateForms,
    *,
    rules: DosingRules,
    weight_kg: Fraction,
    concentration_mg_per_ml: Fraction,
    reference_rates_mg_per_h: Sequence[Fraction] = (),
) -> tuple[CrossCheck, CrossCheck]:
    """The wrong-unit and decimal-slip guards for one entered rate.

    1. ``pump_rate_equals_mg_per_h``: with a concentration other than 1 mg/mL, a rate
       entered in mL/h whose number equals an intended mg/h number (the protocol's usual
       rate, the current rate, the ordered rates), or entered in mg/h equal to an intended
       pump mL/h number, asks for confirmation.
    2. ``usual_rate_ratio``: a rate ≥ high_factor × or ≤ low_factor × the protocol's usual
       rate (compared in the protocol's dosing unit) asks for confirmation.

    Configuration and source: ``reference/dose_error_guards.toml``.
    """
    g = _guards()
    usual_mg_per_h = (
        rate_mg_per_h_from_mg_per_kg_per_h(rules.usual_rate, weight_kg)
        if rules.dosing_basis is RateForm.MG_PER_KG_PER_H
        else rules.usual_rate
    )
    references = (usual_mg_per_h, *reference_rates_mg_per_h)
    swap_hit: Fraction | None = None
    if concentration_mg_per_ml != 1:
        if rate.form is RateForm.ML_PER_H:
            swap_hit = next(
                (r for r in references if _close(rate.value, r, g.match_resolution)), None
            )
        elif rate.form is RateForm.MG_PER_H:
            swap_hit = next(
                (
                    pump_rate_ml_per_h_from_mg_per_h(r, concentration_mg_per_ml)
                    for r in references
                    if _close(
                        rate.value,
                        pump_rate_ml_per_h_from_mg_per_h(r, concentration_mg_per_ml),
                        g.match_resolution,
                    )
                ),
                None,
            )
    entered = f"{float(rate.value):g} {rate.form.value}"
    if swap_hit is not None:
        other = "mg/h" if rate.form is RateForm.ML_PER_H else "mL/h"
        swap = CrossCheck(
            "pump_rate_equals_mg_per_h",
            CheckStatus.CONFIRM,
            f"{entered} has the same number as an intended rate in {other} "
            f"({float(swap_hit):g} {other}) at {float(concentration_mg_per_ml):g} mg/mL: "
            f"was it typed in the wrong unit? {entered} is "
            f"{float(forms.rate_mg_per_h):g} mg/h = {float(forms.pump_rate_ml_per_h):g} mL/h",
            rate.value,
            swap_hit,
            rate.form.value,
            g.swap_source,
        )
    else:
        swap = CrossCheck(
            "pump_rate_equals_mg_per_h",
            CheckStatus.OK,
            "no sign of a rate typed in the wrong unit",
            rate.value,
            rate.value,
            rate.form.value,
            g.swap_source,
        )

    in_basis = forms.value_in(rules.dosing_basis)
    ratio = in_basis / rules.usual_rate
    unit = rules.dosing_basis.value
    if ratio >= g.high_factor or ratio <= g.low_factor:
        ratio_check = CrossCheck(
            "usual_rate_ratio",
            CheckStatus.CONFIRM,
            f"{float(in_basis):g} {unit} is {float(ratio):.3g} × the protocol's usual "
            f"{float(rules.usual_rate):g} {unit}: a decimal slip?",
            in_basis,
            rules.usual_rate,
            unit,
            g.ratio_source,
        )
    else:
        ratio_check = CrossCheck(
            "usual_rate_ratio",
            CheckStatus.OK,
            f"{float(ratio):.3g} × the protocol's usual rate",
            in_basis,
            rules.usual_rate,
            unit,
            g.ratio_source,
        )
    return swap, ratio_check


# --------------------------------------------------------------------------- check_rate


class _Checked:
    """Shared verdict properties of results that carry limit and cross-checks."""

    __slots__ = ()
    limit_checks: tuple[LimitCheck, ...]
    cross_checks: tuple[CrossCheck, ...]

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.limit_checks, self.cross_checks)

    @property
    def blocked(self) -> bool:
        return any(c.blocks for c in self.limit_checks)

    @property
    def needs_override(self) -> tuple[LimitCheck, ...]:
        return tuple(c for c in self.limit_checks if c.needs_override)

    @property
    def needs_confirmation(self) -> tuple[CrossCheck, ...]:
        return tuple(c for c in self.cross_checks if c.asks)


@dataclass(frozen=True, slots=True)
class RateCheck(_Checked):
    """One proposed rate judged against the protocol (and the signed order, in a session).

    Attributes
    ----------
    rate
        As entered.
    forms
        The rate in mg/kg/h, mg/h and mL/h.
    weight_kg, concentration_mg_per_ml
        Dosing weight [kg] and bag concentration [mg/mL] used.
    previous_rate_mg_per_h, minutes_since_last_change
        The running rate [mg/h] and time since it was set [min] (``None`` for a first rate).
    step_mg_per_h
        New minus previous rate [mg/h] (``None`` for a first rate); negative = decrease.
    session_given_mg, session_remaining_h
        Drug already given this session [mg] and time left to the planned end [h].
    projected_session_total_mg
        given + new rate × remaining [mg] (``None`` without a remaining time).
    projected_series_total_mg
        Series given before this session + projected session total [mg] (or ``None``).
    limit_checks, cross_checks
        Every applicable limit, and both wrong-unit guards.
    protocol
        Protocol name and version used.
    """

    rate: Rate
    forms: RateForms
    weight_kg: Fraction
    concentration_mg_per_ml: Fraction
    previous_rate_mg_per_h: Fraction | None
    minutes_since_last_change: Fraction | None
    step_mg_per_h: Fraction | None
    session_given_mg: Fraction
    session_remaining_h: Fraction | None
    projected_session_total_mg: Fraction | None
    series_given_mg: Fraction | None
    projected_series_total_mg: Fraction | None
    limit_checks: tuple[LimitCheck, ...]
    cross_checks: tuple[CrossCheck, ...]
    protocol: ProtocolRef

    @property
    def projected_session_total_mg_per_kg(self) -> Fraction | None:
        total = self.projected_session_total_mg
        return None if total is None else total / self.weight_kg

    @property
    def projected_session_volume_ml(self) -> Fraction | None:
        total = self.projected_session_total_mg
        return None if total is None else volume_ml(total, self.concentration_mg_per_ml)

    def to_dict(self) -> dict[str, Any]:
        def opt(x: Fraction | None) -> float | None:
            return None if x is None else to_float(x)

        return {
            "protocol": self.protocol.to_dict(),
            "inputs": {
                "rate": self.rate.to_dict(),
                "weight_kg": to_float(self.weight_kg),
                "concentration_mg_per_ml": to_float(self.concentration_mg_per_ml),
                "previous_rate_mg_per_h": opt(self.previous_rate_mg_per_h),
                "minutes_since_last_change": opt(self.minutes_since_last_change),
                "session_given_mg": to_float(self.session_given_mg),
                "session_remaining_h": opt(self.session_remaining_h),
                "series_given_mg": opt(self.series_given_mg),
            },
            **self.forms.to_dict(),
            "concentration_mg_per_ml": to_float(self.concentration_mg_per_ml),
            "step_mg_per_h": opt(self.step_mg_per_h),
            "projected_session_total_mg": opt(self.projected_session_total_mg),
            "projected_session_total_mg_per_kg": opt(self.projected_session_total_mg_per_kg),
            "projected_session_volume_ml": opt(self.projected_session_volume_ml),
            "projected_series_total_mg": opt(self.projected_series_total_mg),
            "outcome": self.outcome.value,
            "limits": [c.to_dict() for c in self.limit_checks],
            "cross_checks": [c.to_dict() for c in self.cross_checks],
        }


def check_rate(
    rate: Rate,
    *,
    rules: DosingRules,
    weight_kg: Fraction,
    concentration_mg_per_ml: Fraction,
    previous_rate_mg_per_h: Fraction | None = None,
    minutes_since_last_change: Fraction | None = None,
    session_given_mg: Fraction = Fraction(0),
    session_remaining_h: Fraction | None = None,
    series_given_mg: Fraction | None = None,
    extra_limits: Sequence[Limit] = (),
    reference_rates_mg_per_h: Sequence[Fraction] = (),
    cross_check: bool = True,
) -> RateCheck:
    """Judge a proposed rate: the one shared check for orders and session rate changes.

    Parameters
    ----------
    rate
        The proposed rate, any form (> 0; stopping is not a rate change).
    rules
        The protocol's dosing rules.
    weight_kg
        Dosing weight [kg] (> 0).
    concentration_mg_per_ml
        Bag concentration [mg/mL] (> 0), already checked against the protocol.
    previous_rate_mg_per_h
        The rate running now [mg/h]; ``None`` for the first rate.
    minutes_since_last_change
        Time since the running rate was set [min]; checked against the interval limits
        (``titration_interval_min``) for increases only.
    session_given_mg
        Drug given so far in this session, boluses included [mg].
    session_remaining_h
        Time from now to the planned end of the session [h]; needed for session totals.
    series_given_mg
        Drug given in earlier sessions of the series [mg]; needed for series totals.
    extra_limits
        More limits to apply, e.g. :func:`order_limits` of the signed order.
    reference_rates_mg_per_h
        Intended rates for the wrong-unit guard (the current and ordered rates).
    cross_check
        ``False`` for derived rates nobody typed (inner titration steps).

    Returns
    -------
    RateCheck
        Every applicable limit checked (inclusive bounds), the cross-checks, the verdict.
    """
    forms = rate_forms(rate, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml)
    values: dict[str, Fraction] = {
        "rate_mg_per_kg_per_h": forms.rate_mg_per_kg_per_h,
        "rate_mg_per_h": forms.rate_mg_per_h,
        "pump_rate_ml_per_h": forms.pump_rate_ml_per_h,
        "concentration_mg_per_ml": concentration_mg_per_ml,
    }
    step = None
    if previous_rate_mg_per_h is not None:
        step = forms.rate_mg_per_h - previous_rate_mg_per_h
        if step > 0:  # increases only: a decrease is never held back
            values["titration_step_mg_per_h"] = step
            values["titration_step_mg_per_kg_per_h"] = step / weight_kg
            if minutes_since_last_change is not None:
                values["titration_interval_min"] = minutes_since_last_change
    projected_session = None
    if session_remaining_h is not None:
        projected_session = session_given_mg + dose_mg(forms.rate_mg_per_h, session_remaining_h)
        values["session_total_mg"] = projected_session
        values["session_total_mg_per_kg"] = projected_session / weight_kg
    projected_series = None
    if series_given_mg is not None and projected_session is not None:
        projected_series = series_given_mg + projected_session
        values["series_total_mg"] = projected_series
        values["series_total_mg_per_kg"] = projected_series / weight_kg
    checks = tuple(
        evaluate_limit(limit, values[limit.quantity])
        for limit in (*rules.limits, *extra_limits)
        if limit.quantity in values
    )
    cross: tuple[CrossCheck, ...] = ()
    if cross_check:
        refs = tuple(reference_rates_mg_per_h) + (
            () if previous_rate_mg_per_h is None else (previous_rate_mg_per_h,)
        )
        cross = cross_check_rate(
            rate,
            forms,
            rules=rules,
            weight_kg=weight_kg,
            concentration_mg_per_ml=concentration_mg_per_ml,
            reference_rates_mg_per_h=refs,
        )
    return RateCheck(
        rate=rate,
        forms=forms,
        weight_kg=weight_kg,
        concentration_mg_per_ml=concentration_mg_per_ml,
        previous_rate_mg_per_h=previous_rate_mg_per_h,
        minutes_since_last_change=minutes_since_last_change,
        step_mg_per_h=step,
        session_given_mg=session_given_mg,
        session_remaining_h=session_remaining_h,
        projected_session_total_mg=projected_session,
        series_given_mg=series_given_mg,
        projected_series_total_mg=projected_series,
        limit_checks=checks,
        cross_checks=cross,
        protocol=rules.protocol,
    )


# --------------------------------------------------------------------------- titration


@dataclass(frozen=True, slots=True)
class TitrationStep:
    """One row of the titration table.

    Attributes
    ----------
    index
        0 for the start rate.
    t_min
        Earliest time the step may start, from the start of the infusion [min].
    forms
        The step's rate in mg/kg/h, mg/h and mL/h.
    within_planned_duration
        Whether the step can start before the planned end.
    dose_mg
        Drug given during this step on the fastest schedule [mg].
    """

    index: int
    t_min: Fraction
    forms: RateForms
    within_planned_duration: bool
    dose_mg: Fraction

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "t_min": to_float(self.t_min),
            **self.forms.to_dict(),
            "within_planned_duration": self.within_planned_duration,
            "dose_mg": to_float(self.dose_mg),
        }


def _plan_rates_mg_per_h(
    plan: InfusionPlan, *, weight_kg: Fraction, concentration_mg_per_ml: Fraction
) -> tuple[Fraction, Fraction, Fraction | None]:
    def mg_per_h(r: Rate) -> Fraction:
        return rate_forms(
            r, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml
        ).rate_mg_per_h

    start, top = mg_per_h(plan.start_rate), mg_per_h(plan.max_rate)
    step = None if plan.titration_step is None else mg_per_h(plan.titration_step)
    if start > top:
        raise UsageError("max_rate", "is below the start rate")
    if step is None and start != top:
        raise UsageError("titration_step", "needed when the maximum rate is above the start rate")
    if step is not None and (top - start) / step > MAX_TITRATION_STEPS:
        raise UsageError(
            "titration_step", f"too small: more than {MAX_TITRATION_STEPS} steps to the maximum"
        )
    return start, top, step


def titration_table(
    plan: InfusionPlan, *, weight_kg: Fraction, concentration_mg_per_ml: Fraction
) -> tuple[TitrationStep, ...]:
    """Each step from the start rate to the maximum rate, at the minimum interval.

    Step k runs at min(start + k × step, max) [mg/h] from k × interval [min]; the last step
    is the maximum rate (a smaller last increase when the range is not a whole number of
    steps). ``dose_mg`` of each step assumes the fastest schedule, the last step held to
    the planned end; steps that cannot start before the planned end give 0 mg.
    """
    start, top, step = _plan_rates_mg_per_h(
        plan, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml
    )
    count = 1 if step is None else math.ceil((top - start) / step) + 1
    end_min = min_from_h(plan.planned_duration_h)
    rows = []
    for k in range(count):
        r = top if step is None else min(start + k * step, top)
        t = k * plan.min_step_interval_min
        t_next = end_min if k == count - 1 else min((k + 1) * plan.min_step_interval_min, end_min)
        given = dose_mg(r, h_from_min(t_next - t)) if t < end_min else Fraction(0)
        forms = rate_forms_from_mg_per_h(
            r, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml
        )
        rows.append(TitrationStep(k, t, forms, t < end_min, given))
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """Planned amounts for one session and the series.

    Attributes
    ----------
    session_total_mg, session_total_mg_per_kg
        Most the order allows in one session (fastest titration, then held) [mg, mg/kg],
        bolus included.
    session_total_at_start_rate_mg
        If the rate is never raised [mg], bolus included.
    bolus_mg
        The bolus [mg] (0 if none).
    volume_needed_ml
        Bag volume for ``session_total_mg`` [mL] (bolus included when given from the bag).
    bags_needed
        Whole bags of the prepared volume for one session.
    series_total_mg, series_total_mg_per_kg
        sessions × session total [mg, mg/kg].
    """

    session_total_mg: Fraction
    session_total_mg_per_kg: Fraction
    session_total_at_start_rate_mg: Fraction
    bolus_mg: Fraction
    volume_needed_ml: Fraction
    bags_needed: int
    series_total_mg: Fraction
    series_total_mg_per_kg: Fraction

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_total_mg": to_float(self.session_total_mg),
            "session_total_mg_per_kg": to_float(self.session_total_mg_per_kg),
            "session_total_at_start_rate_mg": to_float(self.session_total_at_start_rate_mg),
            "bolus_mg": to_float(self.bolus_mg),
            "volume_needed_ml": to_float(self.volume_needed_ml),
            "bags_needed": self.bags_needed,
            "series_total_mg": to_float(self.series_total_mg),
            "series_total_mg_per_kg": to_float(self.series_total_mg_per_kg),
        }


def plan_totals(
    plan: InfusionPlan,
    table: Sequence[TitrationStep],
    *,
    weight_kg: Fraction,
    bag: Bag,
) -> PlanTotals:
    """Planned session and series totals [mg, mg/kg] and the bag volume needed [mL].

    The bolus is assumed to be given from the bag (it counts towards the volume).
    """
    bolus = Fraction(0) if plan.bolus is None else plan.bolus.dose_mg(weight_kg)
    infused = sum((s.dose_mg for s in table), Fraction(0))
    session = infused + bolus
    at_start = dose_mg(table[0].forms.rate_mg_per_h, plan.planned_duration_h) + bolus
    needed = volume_ml(session, bag.concentration_mg_per_ml)
    return PlanTotals(
        session_total_mg=session,
        session_total_mg_per_kg=session / weight_kg,
        session_total_at_start_rate_mg=at_start,
        bolus_mg=bolus,
        volume_needed_ml=needed,
        bags_needed=math.ceil(needed / bag.volume_ml),
        series_total_mg=session * plan.sessions,
        series_total_mg_per_kg=session * plan.sessions / weight_kg,
    )


# --------------------------------------------------------------------------- the order


@dataclass(frozen=True, slots=True)
class OrderCheck(_Checked):
    """Everything computed for an order (or its signature): one self-contained record.

    ``limit_checks`` holds each limit once, at its most critical value over the titration
    table, plus the order-level limits (bolus, series); ``step_checks`` keeps the full
    :func:`check_rate` result of each table step.
    """

    protocol: ProtocolRef
    checked_on: date
    weight: DosingWeight
    bag: Bag
    plan: InfusionPlan
    table: tuple[TitrationStep, ...]
    totals: PlanTotals
    step_checks: tuple[RateCheck, ...]
    limit_checks: tuple[LimitCheck, ...]
    cross_checks: tuple[CrossCheck, ...]
    rules: DosingRules = field(repr=False)

    @property
    def start(self) -> RateForms:
        return self.table[0].forms

    @property
    def maximum(self) -> RateForms:
        return self.table[-1].forms

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.to_dict(),
            "checked_on": self.checked_on.isoformat(),
            "inputs": {
                "weight": self.weight.measurement.to_dict(),
                "bag": self.bag.to_dict(),
                "plan": self.plan.to_dict(),
            },
            "rules": self.rules.to_dict(),
            "dosing_weight": self.weight.to_dict(),
            "concentration_mg_per_ml": to_float(self.bag.concentration_mg_per_ml),
            "start": self.start.to_dict(),
            "maximum": self.maximum.to_dict(),
            "titration_table": [s.to_dict() for s in self.table],
            "totals": self.totals.to_dict(),
            "outcome": self.outcome.value,
            "limits": [c.to_dict() for c in self.limit_checks],
            "cross_checks": [c.to_dict() for c in self.cross_checks],
        }


def check_order(
    *,
    rules: DosingRules,
    weight: WeightMeasurement,
    bag: Bag,
    plan: InfusionPlan,
    on: date,
) -> OrderCheck:
    """Compute and check an order: at writing and again, unchanged, at signing.

    Parameters
    ----------
    rules
        The protocol version's dosing rules.
    weight
        The latest weight measurement; refused if older than the protocol allows on ``on``.
    bag
        Bag preparation; its concentration must be one the protocol allows.
    plan
        Start/step/maximum rates, interval, duration, sessions, bolus.
    on
        Day of the check.

    Returns
    -------
    OrderCheck
        Dosing weight, every rate form, the titration table, totals, limit and
        cross-checks; ``outcome`` says whether it is ok, needs a confirmation, an override,
        or is blocked.

    Raises
    ------
    UsageError
        Outdated/implausible weight, a concentration the protocol does not allow, an
        inconsistent plan.
    """
    dw = dosing_weight(
        weight,
        basis=rules.weight_basis,
        max_age_days=rules.max_weight_age_days,
        on=on,
        obesity_threshold_ratio=rules.obesity_threshold_ratio,
    )
    w = dw.weight_kg
    concentration = check_bag(bag, rules)
    table = titration_table(plan, weight_kg=w, concentration_mg_per_ml=concentration)
    totals = plan_totals(plan, table, weight_kg=w, bag=bag)
    ordered = tuple(s.forms.rate_mg_per_h for s in table)
    end_h = plan.planned_duration_h
    step_checks = []
    given = totals.bolus_mg
    for k, row in enumerate(table):
        entered = plan.start_rate if k == 0 else plan.max_rate if k == len(table) - 1 else None
        t_h = min(h_from_min(row.t_min), end_h)
        if entered is None:  # an inner step nobody typed: express it in the protocol's unit
            entered = Rate(row.forms.value_in(rules.dosing_basis), rules.dosing_basis)
            typed = False
        else:
            typed = True
        step_checks.append(
            check_rate(
                entered,
                rules=rules,
                weight_kg=w,
                concentration_mg_per_ml=concentration,
                previous_rate_mg_per_h=None if k == 0 else table[k - 1].forms.rate_mg_per_h,
                minutes_since_last_change=None if k == 0 else plan.min_step_interval_min,
                session_given_mg=given,
                session_remaining_h=end_h - t_h,
                reference_rates_mg_per_h=ordered,
                cross_check=typed,
            )
        )
        given += row.dose_mg
    order_values: dict[str, Fraction] = {
        "series_total_mg": totals.series_total_mg,
        "series_total_mg_per_kg": totals.series_total_mg_per_kg,
        "session_duration_h": plan.planned_duration_h,
    }
    if plan.bolus is not None:
        order_values["bolus_mg"] = totals.bolus_mg
        order_values["bolus_mg_per_kg"] = totals.bolus_mg / w
    order_checks = [
        evaluate_limit(limit, order_values[limit.quantity])
        for limit in rules.limits
        if limit.quantity in order_values
    ]
    limit_checks = worst_per_limit(
        [*(c for s in step_checks for c in s.limit_checks), *order_checks]
    )
    cross = _merge_cross_checks(c for s in step_checks for c in s.cross_checks)
    return OrderCheck(
        protocol=rules.protocol,
        checked_on=on,
        weight=dw,
        bag=bag,
        plan=plan,
        table=table,
        totals=totals,
        step_checks=tuple(step_checks),
        limit_checks=limit_checks,
        cross_checks=cross,
        rules=rules,
    )


def _merge_cross_checks(checks: Iterable[CrossCheck]) -> tuple[CrossCheck, ...]:
    """One per code: the first that asks, else the first."""
    merged: dict[str, CrossCheck] = {}
    for c in checks:
        seen = merged.get(c.code)
        if seen is None or (c.asks and not seen.asks):
            merged[c.code] = c
    return tuple(merged.values())


def order_limits(order: OrderCheck) -> tuple[Limit, ...]:
    """The signed order's own bounds, for :func:`check_rate` during its sessions.

    Above the ordered maximum rate, a bigger increase than the ordered step, or an
    increase sooner than the ordered interval; the kind and source come from
    ``reference/dose_error_guards.toml`` (``[order_deviation]``).
    """
    g = _guards()
    source = (
        f"signed order ({order.protocol.name} {order.protocol.version}); {g.order_deviation_source}"
    )
    kind = g.order_deviation_kind
    top = order.maximum.rate_mg_per_h
    limits = [Limit("rate_mg_per_h", kind, None, _float_at_least(top), source)]
    if len(order.table) > 1:
        step = order.table[1].forms.rate_mg_per_h - order.table[0].forms.rate_mg_per_h
        interval = order.plan.min_step_interval_min
        limits.append(Limit("titration_step_mg_per_h", kind, None, _float_at_least(step), source))
        limits.append(Limit("titration_interval_min", kind, _float_at_most(interval), None, source))
    return tuple(limits)


def _float_at_least(x: Fraction) -> float:
    """The float nearest ``x`` that, read back as a decimal, is not below ``x``.

    Limit bounds are floats; an exact order value such as 200/3 mg/h must stay within
    the bound made from it, so the bound is rounded outwards.
    """
    f = float(x)
    return f if exact(f, field="bound") >= x else math.nextafter(f, math.inf)


def _float_at_most(x: Fraction) -> float:
    """The float nearest ``x`` that, read back as a decimal, is not above ``x``."""
    f = float(x)
    return f if exact(f, field="bound") <= x else math.nextafter(f, -math.inf)


# --------------------------------------------------------------------------- double check


@dataclass(frozen=True, slots=True)
class DoubleCheck:
    """A second clinician's independent check of a signed order.

    The verifier reads the bag's concentration [mg/mL] off the prepared bag and works out
    the first pump rate [mL/h] without seeing the physician's numbers. ``mismatches``
    names each entry that disagrees with the order (field, entered, ordered).
    """

    concentration_mg_per_ml: Fraction
    pump_rate_ml_per_h: Fraction
    ordered_concentration_mg_per_ml: Fraction
    ordered_pump_rate_ml_per_h: Fraction
    resolution_ml_per_h: Fraction
    mismatches: tuple[tuple[str, Fraction, Fraction], ...]

    @property
    def matches(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "entered": {
                "concentration_mg_per_ml": to_float(self.concentration_mg_per_ml),
                "pump_rate_ml_per_h": to_float(self.pump_rate_ml_per_h),
            },
            "ordered": {
                "concentration_mg_per_ml": to_float(self.ordered_concentration_mg_per_ml),
                "pump_rate_ml_per_h": to_float(self.ordered_pump_rate_ml_per_h),
            },
            "resolution_ml_per_h": to_float(self.resolution_ml_per_h),
            "matches": self.matches,
            "mismatches": [
                {"field": f, "entered": to_float(e), "ordered": to_float(o)}
                for f, e, o in self.mismatches
            ],
        }


def double_check(
    order: OrderCheck, *, concentration_mg_per_ml: Fraction, pump_rate_ml_per_h: Fraction
) -> DoubleCheck:
    """Compare a verifier's blind entries with the signed order.

    Parameters
    ----------
    order
        The signed order's check (its bag and first titration step).
    concentration_mg_per_ml
        The bag concentration the verifier read [mg/mL], > 0; must equal the order's.
    pump_rate_ml_per_h
        The first pump rate the verifier worked out [mL/h], > 0; equal to the order's
        start pump rate within half the pump's entry resolution
        (``reference/dose_error_guards.toml``, 0.1 mL/h), as the pump is programmed.
    """
    if concentration_mg_per_ml <= 0:
        raise UsageError("concentration_mg_per_ml", "must be greater than zero")
    if pump_rate_ml_per_h <= 0:
        raise UsageError("pump_rate_ml_per_h", "must be greater than zero")
    resolution = _guards().match_resolution
    ordered_c = order.bag.concentration_mg_per_ml
    ordered_r = order.start.pump_rate_ml_per_h
    mismatches = []
    if concentration_mg_per_ml != ordered_c:
        mismatches.append(("concentration_mg_per_ml", concentration_mg_per_ml, ordered_c))
    if not _close(pump_rate_ml_per_h, ordered_r, resolution):
        mismatches.append(("pump_rate_ml_per_h", pump_rate_ml_per_h, ordered_r))
    return DoubleCheck(
        concentration_mg_per_ml=concentration_mg_per_ml,
        pump_rate_ml_per_h=pump_rate_ml_per_h,
        ordered_concentration_mg_per_ml=ordered_c,
        ordered_pump_rate_ml_per_h=ordered_r,
        resolution_ml_per_h=resolution,
        mismatches=tuple(mismatches),
    )


# --------------------------------------------------------------------------- one rate


def check_dose(
    *,
    rules: DosingRules,
    weight_kg: Fraction,
    bag: Bag,
    rate: Rate,
    duration_h: Fraction | None = None,
) -> RateCheck:
    """Check one rate for a given dosing weight and bag (the ``dose`` command).

    With ``duration_h`` [h] the rate is assumed held that long, and session limits are
    checked on that total. Raises :class:`UsageError` for a concentration the protocol
    does not allow or an implausible weight.
    """
    check_plausible("weight_kg", float(weight_kg), field="weight")
    concentration = check_bag(bag, rules)
    return check_rate(
        rate,
        rules=rules,
        weight_kg=weight_kg,
        concentration_mg_per_ml=concentration,
        session_remaining_h=duration_h,
    )


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
