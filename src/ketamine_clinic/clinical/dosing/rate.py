"""The one shared rate check: the bag, the wrong-unit cross-checks and :func:`check_rate`,
which every rate (order step, session change, the ``dose`` command) goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.dosing._data import frac, read_reference
from ketamine_clinic.clinical.dosing.rules import DosingRules, ProtocolRef
from ketamine_clinic.clinical.limit_checks import (
    CheckStatus,
    CrossCheck,
    LimitCheck,
    Outcome,
    evaluate_limit,
    outcome_of,
)
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.clinical.units import (
    Bag,
    Rate,
    RateForm,
    RateForms,
    dose_mg,
    pump_rate_ml_per_h_from_mg_per_h,
    rate_forms,
    rate_mg_per_h_from_mg_per_kg_per_h,
    to_float,
    volume_ml,
)
from ketamine_clinic.errors import UsageError


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
    raw = read_reference("dose_error_guards.toml")
    ratio, swap, dev = (
        raw["usual_rate_ratio"],
        raw["pump_rate_equals_mg_per_h"],
        raw["order_deviation"],
    )
    return _Guards(
        high_factor=frac(ratio["high_factor"], "dose_error_guards.toml"),
        low_factor=frac(ratio["low_factor"], "dose_error_guards.toml"),
        ratio_source=str(ratio["source"]),
        match_resolution=frac(swap["match_resolution"], "dose_error_guards.toml"),
        swap_source=str(swap["source"]),
        order_deviation_kind=LimitKind(dev["kind"]),
        order_deviation_source=str(dev["source"]),
    )


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
