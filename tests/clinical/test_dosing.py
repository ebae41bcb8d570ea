"""Dosing weight, bag, titration table, totals, limit checks and wrong-unit cross-checks.

The rules here are built by hand (not from a shipped protocol) so that each test states
the numbers it depends on; expected values are computed by hand in the comments.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from fractions import Fraction

import pytest

from ketamine_clinic.clinical.dosing import (
    DosingRules,
    InfusionPlan,
    ProtocolRef,
    WeightBasis,
    WeightMeasurement,
    adjusted_body_weight_kg,
    check_bag,
    check_dose,
    check_order,
    check_rate,
    dosing_weight,
    ideal_body_weight_kg,
    order_limits,
)
from ketamine_clinic.clinical.limit_checks import (
    CheckStatus,
    Outcome,
    Override,
    accept,
    override_reasons,
)
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.units import Rate, RateForm, parse_bag, parse_bolus, parse_rate
from ketamine_clinic.errors import UsageError

HARD, SOFT = LimitKind.HARD, LimitKind.SOFT
TODAY = date(2025, 3, 4)


def rules(
    *limits: Limit,
    basis: RateForm = RateForm.MG_PER_H,
    usual: Fraction = Fraction(60),
    weight_basis: WeightBasis = WeightBasis.ACTUAL,
    concentrations: tuple[Fraction, ...] = (Fraction(1), Fraction(2)),
) -> DosingRules:
    return DosingRules(
        protocol=ProtocolRef("test-protocol", "7"),
        dosing_basis=basis,
        usual_rate=usual,
        allowed_concentrations_mg_per_ml=concentrations,
        limits=limits,
        max_weight_age_days=30,
        weight_basis=weight_basis,
    )


def weighed(kg: float, days_ago: int = 0, **kw: object) -> WeightMeasurement:
    return WeightMeasurement(Fraction(str(kg)), TODAY - timedelta(days=days_ago), **kw)  # type: ignore[arg-type]


def plan(
    start: str = "60 mg/h",
    top: str = "120 mg/h",
    step: str | None = "15 mg/h",
    interval_min: int = 15,
    hours: Fraction = Fraction(4),
    sessions: int = 1,
    bolus: str | None = None,
) -> InfusionPlan:
    return InfusionPlan(
        start_rate=parse_rate(start),
        max_rate=parse_rate(top),
        titration_step=None if step is None else parse_rate(step),
        min_step_interval_min=Fraction(interval_min),
        planned_duration_h=hours,
        sessions=sessions,
        bolus=None if bolus is None else parse_bolus(bolus),
    )


def status_of(result: object, quantity: str) -> CheckStatus:
    checks = [c for c in result.limit_checks if c.limit.quantity == quantity]  # type: ignore[attr-defined]
    assert len(checks) == 1, checks
    return checks[0].status


# --------------------------------------------------------------------------- dosing weight


def test_devine_ideal_body_weight_matches_the_formula_at_whole_inches() -> None:
    # 70 in (177.8 cm) man: 50 + 2.3 × 10 = 73 kg; 64 in (162.56 cm) woman: 45.5 + 2.3 × 4 = 54.7 kg
    assert ideal_body_weight_kg(Fraction("177.8"), "male") == Fraction("73")
    assert ideal_body_weight_kg(Fraction("162.56"), "female") == Fraction("54.7")


def test_adjusted_weight_adds_four_tenths_of_the_excess() -> None:
    # 73 + 0.4 × (120 − 73) = 91.8 kg
    assert adjusted_body_weight_kg(Fraction(120), Fraction(73)) == Fraction("91.8")


def test_an_obese_patient_is_dosed_on_adjusted_weight_when_the_protocol_says_so() -> None:
    m = weighed(120, height_cm=Fraction("177.8"), sex="male")
    dw = dosing_weight(m, basis=WeightBasis.ADJUSTED, max_age_days=30, on=TODAY)
    assert (dw.weight_kg, dw.basis, dw.ideal_kg) == (Fraction("91.8"), WeightBasis.ADJUSTED, 73)
    assert any("Devine" in s for s in dw.sources)


def test_a_thin_patient_is_never_dosed_above_the_actual_weight() -> None:
    m = weighed(60, height_cm=Fraction("177.8"), sex="male")  # IBW 73 > 60
    dw = dosing_weight(m, basis=WeightBasis.IDEAL, max_age_days=30, on=TODAY)
    assert (dw.weight_kg, dw.basis) == (60, WeightBasis.ACTUAL)


def test_below_the_obesity_threshold_the_actual_weight_is_used() -> None:
    m = weighed(80, height_cm=Fraction("177.8"), sex="male")  # 80/73 ≈ 1.10 < 1.2
    dw = dosing_weight(
        m,
        basis=WeightBasis.IDEAL,
        max_age_days=30,
        on=TODAY,
        obesity_threshold_ratio=Fraction("1.2"),
    )
    assert dw.weight_kg == 80
    at_threshold = weighed(Fraction(73 * 12, 10), height_cm=Fraction("177.8"), sex="male")  # type: ignore[arg-type]
    dw = dosing_weight(
        at_threshold,
        basis=WeightBasis.IDEAL,
        max_age_days=30,
        on=TODAY,
        obesity_threshold_ratio=Fraction("1.2"),
    )
    assert dw.weight_kg == 73  # inclusive: exactly 1.2 × IBW counts as obese


@pytest.mark.parametrize(
    ("missing", "field"), [({"sex": "male"}, "height_cm"), ({"height_cm": Fraction(170)}, "sex")]
)
def test_ideal_weight_needs_height_and_sex(missing: dict[str, object], field: str) -> None:
    with pytest.raises(UsageError) as err:
        dosing_weight(weighed(120, **missing), basis=WeightBasis.IDEAL, max_age_days=30, on=TODAY)
    assert err.value.field == field


def test_a_weight_exactly_as_old_as_allowed_is_accepted_and_one_day_older_is_refused() -> None:
    assert dosing_weight(weighed(70, 30), basis=WeightBasis.ACTUAL, max_age_days=30, on=TODAY)
    with pytest.raises(UsageError, match="31 days ago") as err:
        dosing_weight(weighed(70, 31), basis=WeightBasis.ACTUAL, max_age_days=30, on=TODAY)
    assert err.value.field == "weight"


@pytest.mark.parametrize("kg", [0, -70, 1, 900])
def test_an_implausible_weight_is_refused_naming_the_weight(kg: int) -> None:
    with pytest.raises(UsageError) as err:
        dosing_weight(weighed(kg), basis=WeightBasis.ACTUAL, max_age_days=30, on=TODAY)
    assert err.value.field == "weight"


def test_a_weight_measured_in_the_future_is_refused() -> None:
    with pytest.raises(UsageError) as err:
        dosing_weight(weighed(70, -1), basis=WeightBasis.ACTUAL, max_age_days=30, on=TODAY)
    assert err.value.field == "weight"


# --------------------------------------------------------------------------- bag


def test_it_refuses_a_concentration_the_protocol_does_not_allow() -> None:
    with pytest.raises(UsageError, match="5 mg/mL is not a concentration") as err:
        check_bag(parse_bag("500 mg in 100 mL"), rules())
    assert err.value.field == "bag"
    assert check_bag(parse_bag("250 mg in 250 mL"), rules()) == 1


# --------------------------------------------------------------------------- titration and totals


def test_the_titration_table_steps_from_start_to_maximum_at_the_minimum_interval() -> None:
    order = check_order(
        rules=rules(), weight=weighed(80), bag=parse_bag("500 mg in 250 mL"), plan=plan(), on=TODAY
    )
    rows = [(r.t_min, r.forms.rate_mg_per_h, r.forms.pump_rate_ml_per_h) for r in order.table]
    # 2 mg/mL: mL/h is half the mg/h
    assert rows == [
        (0, 60, 30),
        (15, 75, Fraction(75, 2)),
        (30, 90, 45),
        (45, 105, Fraction(105, 2)),
        (60, 120, 60),
    ]
    assert order.table[0].forms.rate_mg_per_kg_per_h == Fraction(60, 80)


def test_the_last_step_is_the_maximum_even_when_the_range_is_not_whole_steps() -> None:
    order = check_order(
        rules=rules(),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan("10 mg/h", "30 mg/h", "15 mg/h"),
        on=TODAY,
    )
    assert [r.forms.rate_mg_per_h for r in order.table] == [10, 25, 30]


def test_planned_totals_assume_the_fastest_titration_then_holding_the_maximum() -> None:
    order = check_order(
        rules=rules(),
        weight=weighed(80),
        bag=parse_bag("500 mg in 250 mL"),
        plan=plan(sessions=5),
        on=TODAY,
    )
    # 15 min each at 60, 75, 90, 105 mg/h = 15 + 18.75 + 22.5 + 26.25 = 82.5 mg,
    # then 120 mg/h for 3 h = 360 mg: 442.5 mg per session.
    t = order.totals
    assert t.session_total_mg == Fraction("442.5")
    assert t.session_total_mg_per_kg == Fraction("442.5") / 80
    assert t.session_total_at_start_rate_mg == 240
    assert t.volume_needed_ml == Fraction("221.25")  # at 2 mg/mL
    assert t.bags_needed == 1
    assert t.series_total_mg == Fraction("2212.5")


def test_steps_beyond_the_planned_end_are_listed_but_give_no_drug() -> None:
    order = check_order(
        rules=rules(),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(hours=Fraction(1, 2)),
        on=TODAY,
    )
    assert [r.within_planned_duration for r in order.table] == [True, True, False, False, False]
    assert order.totals.session_total_mg == 15 + Fraction("18.75")


def test_a_bolus_counts_towards_the_session_total_and_is_checked_per_kg() -> None:
    order = check_order(
        rules=rules(Limit("bolus_mg_per_kg", HARD, None, 0.35, "S2")),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(step=None, top="60 mg/h", hours=Fraction(1), bolus="0.4 mg/kg"),
        on=TODAY,
    )
    assert order.totals.session_total_mg == 60 + 32
    assert status_of(order, "bolus_mg_per_kg") is CheckStatus.EXCEEDED
    assert order.outcome is Outcome.BLOCKED


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"start": "130 mg/h"}, "max_rate"),
        ({"step": None}, "titration_step"),
        ({"step": "0.01 mg/h"}, "titration_step"),
        ({"interval_min": 0}, "min_step_interval_min"),
        ({"hours": Fraction(0)}, "planned_duration_h"),
        ({"sessions": 0}, "sessions"),
    ],
)
def test_an_inconsistent_plan_is_refused_naming_the_field(
    kw: dict[str, object], field: str
) -> None:
    with pytest.raises(UsageError) as err:
        check_order(
            rules=rules(),
            weight=weighed(80),
            bag=parse_bag("500 mg in 500 mL"),
            plan=plan(**kw),
            on=TODAY,  # type: ignore[arg-type]
        )
    assert err.value.field == field


# --------------------------------------------------------------------------- limits in an order


SCHWARTZMAN_LIMITS = (
    # [S9]: max 0.35 mg/kg/h, not > 25 mg/h
    Limit("rate_mg_per_kg_per_h", HARD, None, 0.35, "S9"),
    Limit("rate_mg_per_h", HARD, None, 25.0, "S9"),
)


def test_a_heavy_patient_at_the_per_kg_cap_is_blocked_by_the_mg_per_h_cap() -> None:
    r = rules(*SCHWARTZMAN_LIMITS, basis=RateForm.MG_PER_KG_PER_H, usual=Fraction("0.35"))
    order = check_order(
        rules=r,
        weight=weighed(80),  # 0.35 × 80 = 28 mg/h > 25
        bag=parse_bag("100 mg in 100 mL"),
        plan=plan("0.35 mg/kg/h", "0.35 mg/kg/h", None),
        on=TODAY,
    )
    assert status_of(order, "rate_mg_per_kg_per_h") is CheckStatus.OK
    assert status_of(order, "rate_mg_per_h") is CheckStatus.EXCEEDED
    assert order.blocked
    assert not accept(order.limit_checks, order.cross_checks).accepted


def test_a_rate_exactly_at_both_caps_is_accepted() -> None:
    r = rules(*SCHWARTZMAN_LIMITS, basis=RateForm.MG_PER_KG_PER_H, usual=Fraction("0.35"))
    # 25 / 0.35 = 71.428… kg: use a weight where 0.35 mg/kg/h is exactly 25 mg/h
    order = check_order(
        rules=r,
        weight=weighed(Fraction(500, 7)),  # type: ignore[arg-type]
        bag=parse_bag("100 mg in 100 mL"),
        plan=plan("25 mL/h", "25 mL/h", None),
        on=TODAY,
    )
    assert [c.status for c in order.limit_checks] == [CheckStatus.OK, CheckStatus.OK]
    assert order.outcome is Outcome.OK


def test_each_limit_is_reported_once_at_its_most_critical_step() -> None:
    order = check_order(
        rules=rules(
            Limit("rate_mg_per_h", SOFT, 50.0, 100.0, "clinic policy"),
            Limit("titration_step_mg_per_h", HARD, None, 20.0, "clinic policy"),
            Limit("session_total_mg", SOFT, None, 400.0, "clinic policy"),
        ),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(),
        on=TODAY,
    )
    by_q = {c.limit.quantity: c for c in order.limit_checks}
    assert by_q["rate_mg_per_h"].value == 120
    assert by_q["rate_mg_per_h"].side == "upper"
    assert by_q["titration_step_mg_per_h"].value == 15
    assert by_q["session_total_mg"].value == Fraction("442.5")
    assert order.outcome is Outcome.OVERRIDE
    assert {c.limit.quantity for c in order.needs_override} == {"rate_mg_per_h", "session_total_mg"}


def test_a_soft_limit_needs_a_coded_reason_and_free_text() -> None:
    order = check_order(
        rules=rules(Limit("rate_mg_per_h", SOFT, None, 100.0, "clinic policy")),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(),
        on=TODAY,
    )
    missing = accept(order.limit_checks, order.cross_checks)
    assert not missing.accepted
    assert missing.outcome is Outcome.OVERRIDE
    assert [e.event for e in missing.events] == ["hit"]
    with pytest.raises(UsageError) as err:
        accept(order.limit_checks, overrides=[Override("rate_mg_per_h", "because", "x")])
    assert err.value.field == "override.rate_mg_per_h.reason_code"
    with pytest.raises(UsageError) as err:
        accept(order.limit_checks, overrides=[Override("rate_mg_per_h", "prior-tolerance", " ")])
    assert err.value.field == "override.rate_mg_per_h.free_text"
    ok = accept(
        order.limit_checks,
        overrides=[Override("rate_mg_per_h", "prior-tolerance", "120 mg/h on 2025-02-01")],
    )
    assert ok.accepted
    assert [(e.event, e.override.reason_code) for e in ok.events if e.override] == [
        ("override", "prior-tolerance")
    ]


def test_a_hard_limit_cannot_be_overridden() -> None:
    order = check_order(
        rules=rules(Limit("rate_mg_per_h", HARD, None, 100.0, "clinic policy")),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(),
        on=TODAY,
    )
    result = accept(
        order.limit_checks,
        overrides=[Override("rate_mg_per_h", "medical-director-approval", "please")],
    )
    assert not result.accepted
    assert result.outcome is Outcome.BLOCKED
    assert [e.event for e in result.events] == ["block"]


def test_an_override_for_a_limit_that_is_not_exceeded_is_refused() -> None:
    order = check_order(
        rules=rules(Limit("rate_mg_per_h", SOFT, None, 200.0, "clinic policy")),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(),
        on=TODAY,
    )
    with pytest.raises(UsageError):
        accept(order.limit_checks, overrides=[Override("rate_mg_per_h", "other", "just in case")])


def test_the_override_reason_list_is_data_with_an_other_code() -> None:
    codes = [r.code for r in override_reasons()]
    assert "other" in codes
    assert len(codes) == len(set(codes))


def test_an_unknown_limit_quantity_in_the_protocol_is_refused() -> None:
    with pytest.raises(UsageError) as err:
        rules(Limit("rate_mg_per_min", HARD, None, 1.0, "typo"))
    assert err.value.field == "limits.rate_mg_per_min"


# ------------------------------------------------------------------ check_rate in a session


def session_rules() -> DosingRules:
    return rules(
        Limit("rate_mg_per_h", HARD, None, 150.0, "clinic policy"),
        Limit("titration_step_mg_per_h", SOFT, None, 20.0, "clinic policy"),
        Limit("titration_interval_min", SOFT, 15.0, None, "clinic policy"),
        Limit("session_total_mg", HARD, None, 400.0, "clinic policy"),
    )


def change(
    rate: str,
    *,
    previous: int = 60,
    minutes: int = 20,
    given: int = 100,
    left: Fraction = Fraction(2),
) -> object:
    return check_rate(
        parse_rate(rate),
        rules=session_rules(),
        weight_kg=Fraction(80),
        concentration_mg_per_ml=Fraction(1),
        previous_rate_mg_per_h=Fraction(previous),
        minutes_since_last_change=Fraction(minutes),
        session_given_mg=Fraction(given),
        session_remaining_h=left,
    )


def test_a_rate_change_is_checked_for_step_interval_rate_and_projected_total() -> None:
    ok = change("80 mg/h")  # step 20 (at bound), 20 min, 100 + 80 × 2 = 260 mg
    assert ok.outcome is Outcome.OK  # type: ignore[attr-defined]
    assert ok.projected_session_total_mg == 260  # type: ignore[attr-defined]
    too_big = change("81 mg/h")
    assert status_of(too_big, "titration_step_mg_per_h") is CheckStatus.EXCEEDED
    too_soon = change("70 mg/h", minutes=14)
    assert status_of(too_soon, "titration_interval_min") is CheckStatus.EXCEEDED
    too_much = change("80 mg/h", left=Fraction(4))  # 100 + 320 = 420 > 400
    assert status_of(too_much, "session_total_mg") is CheckStatus.EXCEEDED
    assert too_much.blocked  # type: ignore[attr-defined]


def test_lowering_a_rate_is_never_held_back_by_step_or_interval() -> None:
    down = change("10 mg/h", minutes=1)  # a 50 mg/h decrease one minute after the last change
    quantities = {c.limit.quantity for c in down.limit_checks}  # type: ignore[attr-defined]
    assert "titration_step_mg_per_h" not in quantities
    assert "titration_interval_min" not in quantities
    assert down.outcome is Outcome.OK  # type: ignore[attr-defined]


def test_the_signed_order_bounds_later_rate_changes_as_soft_limits() -> None:
    order = check_order(
        rules=session_rules(),
        weight=weighed(80),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(),
        on=TODAY,
    )
    extra = order_limits(order)
    assert {(lim.quantity, lim.kind) for lim in extra} == {
        ("rate_mg_per_h", SOFT),
        ("titration_step_mg_per_h", SOFT),
        ("titration_interval_min", SOFT),
    }
    result = check_rate(
        parse_rate("125 mg/h"),
        rules=session_rules(),
        weight_kg=Fraction(80),
        concentration_mg_per_ml=Fraction(1),
        previous_rate_mg_per_h=Fraction(120),
        minutes_since_last_change=Fraction(30),
        extra_limits=extra,
    )
    exceeded = [(c.limit.quantity, c.limit.kind) for c in result.limit_checks if c.exceeded]
    assert exceeded == [("rate_mg_per_h", SOFT)]  # above the ordered 120, within the hard 150


def test_order_bounds_built_from_a_repeating_fraction_still_admit_the_ordered_rate() -> None:
    # 1/3 mg/kg/h × 100 kg: the order's maximum is 100/3 mg/h, not a finite decimal.
    order = check_order(
        rules=rules(basis=RateForm.MG_PER_KG_PER_H, usual=Fraction(1, 3)),
        weight=weighed(100),
        bag=parse_bag("500 mg in 500 mL"),
        plan=InfusionPlan(
            Rate(Fraction(1, 6), RateForm.MG_PER_KG_PER_H),
            Rate(Fraction(1, 3), RateForm.MG_PER_KG_PER_H),
            Rate(Fraction(1, 12), RateForm.MG_PER_KG_PER_H),
            Fraction(15),
            Fraction(4),
        ),
        on=TODAY,
    )
    rerun = check_rate(
        Rate(Fraction(100, 3), RateForm.MG_PER_H),
        rules=rules(),
        weight_kg=Fraction(100),
        concentration_mg_per_ml=Fraction(1),
        previous_rate_mg_per_h=Fraction(25),
        minutes_since_last_change=Fraction(15),
        extra_limits=order_limits(order),
    )
    assert not any(c.exceeded for c in rerun.limit_checks)


# --------------------------------------------------------------------------- cross-checks


def cross(result: object, code: str) -> CheckStatus:
    [c] = [c for c in result.cross_checks if c.code == code]  # type: ignore[attr-defined]
    return c.status


def test_a_pump_rate_equal_to_the_mg_per_h_number_asks_for_confirmation() -> None:
    # usual 60 mg/h; at 2 mg/mL the pump should run 30 mL/h; "60 mL/h" is 120 mg/h
    r = check_dose(
        rules=rules(),
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 250 mL"),
        rate=parse_rate("60 mL/h"),
    )
    assert cross(r, "pump_rate_equals_mg_per_h") is CheckStatus.CONFIRM
    assert r.outcome is Outcome.CONFIRM
    assert r.forms.rate_mg_per_h == 120


def test_an_mg_per_h_number_equal_to_the_intended_pump_rate_asks_for_confirmation() -> None:
    r = check_dose(
        rules=rules(),
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 250 mL"),
        rate=parse_rate("30 mg/h"),
    )
    assert cross(r, "pump_rate_equals_mg_per_h") is CheckStatus.CONFIRM


def test_at_one_mg_per_ml_equal_numbers_are_expected_and_do_not_ask() -> None:
    r = check_dose(
        rules=rules(),
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 500 mL"),
        rate=parse_rate("60 mL/h"),
    )
    assert cross(r, "pump_rate_equals_mg_per_h") is CheckStatus.OK
    assert r.outcome is Outcome.OK


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("600 mg/h", CheckStatus.CONFIRM),  # 10 × usual: a decimal slip
        ("599 mg/h", CheckStatus.OK),
        ("6 mg/h", CheckStatus.CONFIRM),  # 0.1 × usual
        ("6.1 mg/h", CheckStatus.OK),
        ("7.5 mg/kg/h", CheckStatus.CONFIRM),  # × 80 kg = 600 mg/h
    ],
)
def test_a_rate_ten_times_or_a_tenth_of_the_usual_value_asks_for_confirmation(
    rate: str, expected: CheckStatus
) -> None:
    r = check_dose(
        rules=rules(),
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 500 mL"),
        rate=parse_rate(rate),
    )
    assert cross(r, "usual_rate_ratio") is expected


def test_a_confirmed_cross_check_is_accepted_and_kept_as_an_event() -> None:
    r = check_dose(
        rules=rules(),
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 250 mL"),
        rate=parse_rate("60 mL/h"),
    )
    assert not accept(r.limit_checks, r.cross_checks).accepted
    done = accept(r.limit_checks, r.cross_checks, confirmed={"pump_rate_equals_mg_per_h"})
    assert done.accepted
    assert [e.event for e in done.events] == ["confirm"]


# --------------------------------------------------------------------------- records


def test_every_result_serialises_to_json_with_its_inputs_and_protocol_version() -> None:
    order = check_order(
        rules=rules(Limit("rate_mg_per_h", SOFT, None, 100.0, "clinic policy")),
        weight=weighed(80, 3),
        bag=parse_bag("500 mg in 500 mL"),
        plan=plan(bolus="10 mg"),
        on=TODAY,
    )
    record = json.loads(json.dumps(order.to_dict()))
    assert record["protocol"] == {"name": "test-protocol", "version": "7"}
    assert record["inputs"]["bag"]["text"] == "500 mg in 500 mL"
    assert record["inputs"]["plan"]["start_rate"]["text"] == "60 mg/h"
    assert record["inputs"]["weight"]["measured_on"] == "2025-03-01"
    assert record["limits"][0]["status"] == "exceeded"
    assert record["titration_table"][-1]["rate_mg_per_h"] == 120.0
    rate_record = json.loads(json.dumps(order.step_checks[1].to_dict()))
    assert rate_record["inputs"]["previous_rate_mg_per_h"] == 60.0
    decision = accept(
        order.limit_checks, overrides=[Override("rate_mg_per_h", "other", "documented")]
    )
    assert (
        json.loads(json.dumps(decision.to_dict()))["events"][0]["override"]["reason_code"]
        == "other"
    )
