"""Invariants of the dose checks (hypothesis).

* Every limit fires exactly at its bound: a value equal to the bound is ok, the smallest
  step beyond it is exceeded (bounds are inclusive, values exact).
* No accepted order exceeds a hard limit: whatever the plan and the overrides and
  confirmations given, if :func:`accept` says yes, every quantity the order allows, recomputed
  here independently (minute by minute), is within every hard limit.
"""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical.dosing import (
    DosingRules,
    InfusionPlan,
    ProtocolRef,
    WeightMeasurement,
    check_order,
    check_rate,
)
from ketamine_clinic.clinical.limit_checks import (
    CheckStatus,
    Override,
    accept,
    evaluate_limit,
)
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.units import Bag, Rate, RateForm
from ketamine_clinic.errors import UsageError

TODAY = date(2025, 3, 4)
TINY = Fraction(1, 10**12)  # far below anything a person can type or a pump can deliver


def decimals(low: str, high: str, places: int = 3) -> st.SearchStrategy[Fraction]:
    return st.decimals(Decimal(low), Decimal(high), places=places).map(Fraction)


kinds = st.sampled_from(LimitKind)


def rules_with(*limits: Limit, basis: RateForm = RateForm.MG_PER_H) -> DosingRules:
    return DosingRules(
        protocol=ProtocolRef("prop", "1"),
        dosing_basis=basis,
        usual_rate=Fraction(60) if basis is RateForm.MG_PER_H else Fraction(1),
        allowed_concentrations_mg_per_ml=(Fraction(1), Fraction(2), Fraction(1, 2)),
        limits=limits,
        max_weight_age_days=30,
    )


# --------------------------------------------------------------------------- limits at their bounds


@given(decimals("0.001", "5000"), kinds, st.sampled_from(["upper", "lower"]))
def test_a_limit_is_ok_at_its_bound_and_exceeded_just_beyond_it(
    bound: Fraction, kind: LimitKind, side: str
) -> None:
    as_float = float(bound)  # as it arrives from a TOML file
    if side == "upper":
        limit = Limit("rate_mg_per_h", kind, None, as_float, "test")
        beyond = bound + TINY
    else:
        limit = Limit("rate_mg_per_h", kind, as_float, None, "test")
        beyond = bound - TINY
    assert evaluate_limit(limit, bound).status is CheckStatus.OK
    assert evaluate_limit(limit, beyond).status is CheckStatus.EXCEEDED
    inside = bound - TINY if side == "upper" else bound + TINY
    assert evaluate_limit(limit, inside).status is CheckStatus.OK


@given(
    decimals("0.01", "500"),
    decimals("20", "200", places=1),
    st.sampled_from([Fraction(1), Fraction(2), Fraction(1, 2)]),
    st.sampled_from(RateForm),
    kinds,
)
def test_each_rate_limit_fires_at_its_bound_through_check_rate(
    bound: Fraction, weight: Fraction, concentration: Fraction, form: RateForm, kind: LimitKind
) -> None:
    limit = Limit(form.quantity_name, kind, None, float(bound), "test")
    r = rules_with(limit)

    def status(value: Fraction) -> CheckStatus:
        result = check_rate(
            Rate(value, form), rules=r, weight_kg=weight, concentration_mg_per_ml=concentration
        )
        [check] = result.limit_checks
        return check.status

    assert status(bound) is CheckStatus.OK
    assert status(bound + TINY) is CheckStatus.EXCEEDED


@given(
    decimals("10", "2000", places=1),
    decimals("1", "200", places=1),
    decimals("0.1", "8", places=2),
    kinds,
    st.booleans(),
)
def test_a_session_total_limit_fires_at_its_bound_through_check_rate(
    bound: Fraction, rate_mg_per_h: Fraction, left_h: Fraction, kind: LimitKind, per_kg: bool
) -> None:
    weight = Fraction(70)
    bound_mg = bound * weight if per_kg else bound
    given_mg = bound_mg - rate_mg_per_h * left_h
    assume(given_mg >= 0)
    quantity = "session_total_mg_per_kg" if per_kg else "session_total_mg"
    r = rules_with(Limit(quantity, kind, None, float(bound), "test"))

    def status(given_so_far: Fraction) -> CheckStatus:
        result = check_rate(
            Rate(rate_mg_per_h, RateForm.MG_PER_H),
            rules=r,
            weight_kg=weight,
            concentration_mg_per_ml=Fraction(1),
            session_given_mg=given_so_far,
            session_remaining_h=left_h,
        )
        [check] = result.limit_checks
        return check.status

    assert status(given_mg) is CheckStatus.OK
    assert status(given_mg + TINY) is CheckStatus.EXCEEDED


# ------------------------------------------------------ no accepted order exceeds a hard limit


@st.composite
def orders(draw: st.DrawFn) -> tuple[DosingRules, Fraction, Bag, InfusionPlan]:
    weight = draw(decimals("40", "150", places=1))
    start = draw(decimals("5", "100", places=1))
    step = draw(decimals("2", "30", places=1))
    steps = draw(st.integers(0, 8))
    top = start + steps * step - draw(decimals("0", "1.9", places=1)) * (1 if steps else 0)
    interval = draw(st.integers(5, 30))
    duration_min = draw(st.integers(30, 360))
    sessions = draw(st.integers(1, 10))
    bag = Bag(Fraction(500), draw(st.sampled_from([Fraction(250), Fraction(500), Fraction(1000)])))

    limits = []
    for quantity, low, high in [
        ("rate_mg_per_h", "10", "250"),
        ("rate_mg_per_kg_per_h", "0.1", "3"),
        ("pump_rate_ml_per_h", "10", "400"),
        ("titration_step_mg_per_h", "2", "30"),
        ("titration_interval_min", "5", "30"),
        ("session_total_mg", "50", "1200"),
        ("session_total_mg_per_kg", "1", "15"),
        ("series_total_mg", "200", "8000"),
    ]:
        if draw(st.booleans()):
            value = float(draw(decimals(low, high, places=1)))
            kind = draw(kinds)
            if quantity == "titration_interval_min":
                limits.append(Limit(quantity, kind, value, None, "prop"))
            else:
                limits.append(Limit(quantity, kind, None, value, "prop"))
    plan = InfusionPlan(
        start_rate=Rate(start, RateForm.MG_PER_H),
        max_rate=Rate(max(top, start), RateForm.MG_PER_H),
        titration_step=Rate(step, RateForm.MG_PER_H),
        min_step_interval_min=Fraction(interval),
        planned_duration_h=Fraction(duration_min, 60),
        sessions=sessions,
    )
    return rules_with(*limits), weight, bag, plan


def independent_values(
    plan: InfusionPlan, weight: Fraction, concentration: Fraction
) -> dict[str, list[Fraction]]:
    """Every value of every quantity the order allows, recomputed without the code under test."""
    start, top = plan.start_rate.value, plan.max_rate.value
    step = plan.titration_step.value if plan.titration_step else Fraction(0)
    rates = [start]
    while rates[-1] < top:
        rates.append(min(rates[-1] + step, top))
    interval = int(plan.min_step_interval_min)
    duration_min = int(plan.planned_duration_h * 60)
    # minute by minute: in minute m the pump runs the rate of step floor(m / interval)
    session = sum(
        (rates[min(m // interval, len(rates) - 1)] / 60 for m in range(duration_min)), Fraction(0)
    )
    return {
        "rate_mg_per_h": rates,
        "rate_mg_per_kg_per_h": [r / weight for r in rates],
        "pump_rate_ml_per_h": [r / concentration for r in rates],
        "titration_step_mg_per_h": [b - a for a, b in itertools.pairwise(rates)],
        "titration_interval_min": [plan.min_step_interval_min] if len(rates) > 1 else [],
        "session_total_mg": [session],
        "session_total_mg_per_kg": [session / weight],
        "series_total_mg": [session * plan.sessions],
    }


@settings(max_examples=300, deadline=None)
@given(orders(), st.booleans(), st.booleans())
def test_no_accepted_order_exceeds_a_hard_limit(
    order_inputs: tuple[DosingRules, Fraction, Bag, InfusionPlan],
    override_everything: bool,
    confirm_everything: bool,
) -> None:
    rules, weight, bag, plan = order_inputs
    try:
        order = check_order(
            rules=rules, weight=WeightMeasurement(weight, TODAY), bag=bag, plan=plan, on=TODAY
        )
    except UsageError:
        assume(False)  # refused as bad input: nothing accepted
        return
    # The physician overrides every soft limit (and tries to override the hard ones too).
    overrides = (
        [
            Override(c.limit.quantity, "medical-director-approval", "property test")
            for c in order.limit_checks
            if c.exceeded
        ]
        if override_everything
        else []
    )
    confirmed = {c.code for c in order.cross_checks} if confirm_everything else set()
    decision = accept(
        order.limit_checks, order.cross_checks, overrides=overrides, confirmed=confirmed
    )
    note(f"outcome={order.outcome} accepted={decision.accepted}")
    event(f"{order.outcome.value}, accepted={decision.accepted}")
    values = independent_values(plan, weight, bag.concentration_mg_per_ml)
    hard_breaches = [
        (lim.quantity, v)
        for lim in rules.limits
        if lim.kind is LimitKind.HARD
        for v in values[lim.quantity]
        if (lim.upper is not None and v > lim.upper)
        or (lim.lower is not None and v < lim.lower)
    ]
    if decision.accepted:
        assert not hard_breaches
    # and the converse: a hard breach found independently is always caught
    if hard_breaches:
        assert order.blocked
        assert not decision.accepted
