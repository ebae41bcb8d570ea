"""The order: titration table, planned totals, :func:`check_order` (at writing and at
signing), the signed order's own bounds for its sessions, and the verifier's blind
double check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.dosing.rate import (
    RateCheck,
    _Checked,
    _close,
    _guards,
    check_bag,
    check_rate,
)
from ketamine_clinic.clinical.dosing.rules import DosingRules, InfusionPlan, ProtocolRef
from ketamine_clinic.clinical.dosing.weight import DosingWeight, WeightMeasurement, dosing_weight
from ketamine_clinic.clinical.limit_checks import (
    CrossCheck,
    LimitCheck,
    evaluate_limit,
    worst_per_limit,
)
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.units import (
    Bag,
    Rate,
    RateForms,
    dose_mg,
    h_from_min,
    min_from_h,
    rate_forms,
    rate_forms_from_mg_per_h,
    to_float,
    volume_ml,
)
from ketamine_clinic.errors import UsageError

# Software guard, not a clinical number: a table longer than this is a typing error
# (a step of 0.001 mg/h) and would be unreadable.
MAX_TITRATION_STEPS = 200


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
    limits = [Limit("rate_mg_per_h", kind, None, top, source)]
    if len(order.table) > 1:
        step = order.table[1].forms.rate_mg_per_h - order.table[0].forms.rate_mg_per_h
        interval = order.plan.min_step_interval_min
        limits.append(Limit("titration_step_mg_per_h", kind, None, step, source))
        limits.append(Limit("titration_interval_min", kind, interval, None, source))
    return tuple(limits)


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
