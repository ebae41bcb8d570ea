"""The dosing core and the ``dose`` command against the protocols shipped with the software.

Numbers are worked out by hand here from the clinic-standard protocol's own values
(60 mg/h usual rate, bags of 0.5 or 1 mg/mL, hard limit 140 mg/h and 2 mg/kg/h, 240 min
sessions) rather than copied from the code's output.
"""

from __future__ import annotations

import json
import re
from datetime import date
from fractions import Fraction

import pytest

from ketamine_clinic import cli
from ketamine_clinic.clinical.dosing import (
    WeightBasis,
    WeightMeasurement,
    check_dose,
    check_order,
    rules_from_protocol,
)
from ketamine_clinic.clinical.limit_checks import Outcome
from ketamine_clinic.clinical.protocol import (
    DosingBasis,
    Protocol,
    load_protocol,
    load_protocol_text,
    shipped_protocols,
)
from ketamine_clinic.clinical.units import Bag, RateForm, parse_bag, parse_rate
from ketamine_clinic.commands.dose import rules_for_protocol
from ketamine_clinic.errors import UsageError

SHIPPED = shipped_protocols()


@pytest.mark.parametrize("protocol", SHIPPED, ids=lambda p: p.label)
def test_the_adapter_carries_every_dosing_number_of_a_shipped_protocol(
    protocol: Protocol,
) -> None:
    rules = rules_from_protocol(protocol)
    d = protocol.dosing
    expected_basis = (
        RateForm.MG_PER_H if d.dosing_basis is DosingBasis.FIXED else RateForm.MG_PER_KG_PER_H
    )
    assert rules.protocol.name == protocol.name
    assert rules.protocol.version == str(protocol.version)
    assert rules.dosing_basis is expected_basis
    assert rules.usual_rate == d.usual_rate.value
    assert rules.allowed_concentrations_mg_per_ml == tuple(
        q.value for q in protocol.drug.bag_concentrations_mg_per_ml
    )
    assert rules.limits == protocol.limits
    assert rules.max_weight_age_days == d.max_weight_age_days.value
    assert rules.weight_basis.value == d.weight_rule.value
    plan = rules.default_plan
    assert plan is not None
    assert plan.start_rate.value == d.start_rate.value
    assert plan.start_rate.form is expected_basis
    assert plan.max_rate.value == d.max_rate.value
    assert plan.planned_duration_h * 60 == d.planned_duration_min.value
    assert plan.sessions == protocol.series.sessions.value


@pytest.mark.parametrize("protocol", SHIPPED, ids=lambda p: p.label)
def test_a_shipped_protocols_own_default_plan_is_not_blocked_at_70_kg(
    protocol: Protocol,
) -> None:
    rules = rules_from_protocol(protocol)
    assert rules.default_plan is not None
    concentration = rules.allowed_concentrations_mg_per_ml[-1]
    bag = Bag(concentration * 500, Fraction(500))
    today = date(2026, 3, 1)
    # Height and sex: a protocol dosing on adjusted weight in obesity needs them.
    check = check_order(
        rules=rules,
        weight=WeightMeasurement(Fraction(70), today, height_cm=Fraction(175), sex="male"),
        bag=bag,
        plan=rules.default_plan,
        on=today,
    )
    assert not check.blocked
    assert check.table[0].forms.value_in(rules.dosing_basis) == protocol.dosing.start_rate.value


def _clinic_standard_rules():  # type: ignore[no-untyped-def]
    return rules_from_protocol(load_protocol("clinic-standard"))


def test_sixty_mg_per_h_at_70_kg_and_half_a_mg_per_ml_is_120_ml_per_h() -> None:
    result = check_dose(
        rules=_clinic_standard_rules(),
        weight_kg=Fraction(70),
        bag=parse_bag("250 mg in 500 mL"),
        rate=parse_rate("60 mg/h"),
        duration_h=Fraction(4),
    )
    assert result.forms.rate_mg_per_kg_per_h == Fraction(60, 70)
    assert result.forms.pump_rate_ml_per_h == 120
    assert result.projected_session_total_mg == 240  # 60 mg/h x 4 h
    assert result.outcome is Outcome.OK


def test_the_pump_rate_typed_as_the_usual_mg_per_h_number_asks_for_confirmation() -> None:
    result = check_dose(
        rules=_clinic_standard_rules(),
        weight_kg=Fraction(70),
        bag=parse_bag("250 mg in 500 mL"),  # 0.5 mg/mL: 60 mL/h is only 30 mg/h
        rate=parse_rate("60 mL/h"),
    )
    asking = {c.code for c in result.needs_confirmation}
    assert asking == {"pump_rate_equals_mg_per_h"}
    assert result.forms.rate_mg_per_h == 30


def test_a_tenfold_rate_is_blocked_by_the_hard_limit_and_flagged_as_a_decimal_slip() -> None:
    result = check_dose(
        rules=_clinic_standard_rules(),
        weight_kg=Fraction(70),
        bag=parse_bag("500 mg in 500 mL"),
        rate=parse_rate("600 mg/h"),
    )
    assert result.blocked
    blocking = {c.limit.quantity for c in result.limit_checks if c.blocks}
    assert blocking == {"rate_mg_per_h", "rate_mg_per_kg_per_h"}  # 600 > 140; 8.6 > 2
    assert "usual_rate_ratio" in {c.code for c in result.needs_confirmation}


def test_a_bag_strength_the_protocol_does_not_allow_is_refused_naming_the_bag() -> None:
    with pytest.raises(UsageError) as err:
        check_dose(
            rules=_clinic_standard_rules(),
            weight_kg=Fraction(70),
            bag=parse_bag("500 mg in 250 mL"),  # 2 mg/mL
            rate=parse_rate("60 mg/h"),
        )
    assert err.value.field == "bag"
    assert "0.5, 1" in err.value.problem


_WEIGHT_BASED_DOSING = """[dosing]
basis = { value = "weight_mg_per_kg_per_h", source = "S2" }
start_rate = { value = 0.5, unit = "mg/kg/h", source = "S2" }
usual_rate = { value = 0.5, unit = "mg/kg/h", source = "S2" }
titration_step = { value = 0.25, unit = "mg/kg/h", source = "S2" }
min_step_interval_min = { value = 15, unit = "min", source = "S12" }
max_rate = { value = 1, unit = "mg/kg/h", source = "S2" }
planned_duration_min = { value = 240, unit = "min", source = "S9" }
weight_rule = { value = "adjusted", source = "S2" }
obesity_threshold_ratio = { value = 1.2, unit = "ratio", source = "S2" }
max_weight_age_days = { value = 7, unit = "d", source = "S2" }

"""


def _weight_based_protocol() -> Protocol:
    text = load_protocol("clinic-standard").text
    text = re.sub(r"\[dosing\]\n.*?\n\n", _WEIGHT_BASED_DOSING, text, count=1, flags=re.S)
    text = text.replace('name = "clinic-standard"', 'name = "weight-test"')
    return load_protocol_text(text, "weight-test.toml")


def test_a_weight_based_protocol_on_adjusted_weight_is_read_as_such() -> None:
    rules = rules_from_protocol(_weight_based_protocol())
    assert rules.dosing_basis is RateForm.MG_PER_KG_PER_H
    assert rules.weight_basis is WeightBasis.ADJUSTED
    assert rules.obesity_threshold_ratio == Fraction(12, 10)
    assert rules.max_weight_age_days == 7
    assert rules.default_plan is not None
    assert rules.default_plan.titration_step is not None
    assert rules.default_plan.titration_step.value == Fraction(1, 4)
    # 0.5 mg/kg/h at 80 kg and 1 mg/mL: 40 mg/h = 40 mL/h
    result = check_dose(
        rules=rules,
        weight_kg=Fraction(80),
        bag=parse_bag("500 mg in 500 mL"),
        rate=parse_rate("0.5 mg/kg/h"),
    )
    assert result.forms.rate_mg_per_h == 40
    assert result.forms.pump_rate_ml_per_h == 40


def _dose(capsys: pytest.CaptureFixture[str], *flags: str, **options: str) -> tuple[int, str, str]:
    """Run ``dose`` on clinic-standard, 70 kg, 60 mg/h, 1 mg/mL, with ``options`` replaced
    (``weight_kg="0"`` sets ``--weight-kg 0``)."""
    values = {
        "protocol": "clinic-standard",
        "weight_kg": "70",
        "rate": "60 mg/h",
        "bag": "500 mg in 500 mL",
        **options,
    }
    argv = [x for key, v in values.items() for x in ("--" + key.replace("_", "-"), v)]
    code = cli.main(["dose", *argv, *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_dose_command_reads_the_shipped_clinic_standard_protocol(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _dose(capsys, "--json")
    assert code == 0
    record = json.loads(out)
    protocol = load_protocol("clinic-standard")
    assert record["protocol"] == {"name": "clinic-standard", "version": str(protocol.version)}
    assert record["rate_mg_per_kg_per_h"] == pytest.approx(60 / 70, rel=1e-15)
    assert record["pump_rate_ml_per_h"] == 60
    # default duration: the protocol's planned 240 min, so 60 mg/h x 4 h
    assert record["projected_session_total_mg"] == 240
    assert record["outcome"] == "ok"


def test_the_dose_command_exits_one_above_the_protocols_hard_rate_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _dose(capsys, rate="150 mg/h")
    assert code == 1
    assert "BLOCKED" in out
    assert re.search(r"rate_mg_per_h\s+hard\s+≤ 140\s+150\s+EXCEEDED", out)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("protocol", "no-such-protocol"),
        ("bag", "500 mg in 250 mL"),
        ("rate", "60 mg"),
        ("weight_kg", "0"),
    ],
)
def test_the_dose_command_refuses_bad_input_against_a_shipped_protocol(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code, _, err = _dose(capsys, **{option: value})
    assert code == 2
    assert "--" + option.replace("_", "-") in err


@pytest.mark.parametrize("protocol", SHIPPED, ids=lambda p: p.label)
def test_rules_for_protocol_resolves_every_shipped_name(protocol: Protocol) -> None:
    newest = load_protocol(protocol.name)
    assert rules_for_protocol(protocol.name).protocol.version == str(newest.version)


def _signed_order(bag: str = "250 mg in 500 mL"):  # type: ignore[no-untyped-def]
    rules = _clinic_standard_rules()
    assert rules.default_plan is not None
    today = date(2026, 3, 1)
    return check_order(
        rules=rules,
        weight=WeightMeasurement(Fraction(70), today),
        bag=parse_bag(bag),
        plan=rules.default_plan,
        on=today,
    )


def test_a_double_check_that_agrees_with_the_order_matches() -> None:
    from ketamine_clinic.clinical.dosing import double_check

    # 60 mg/h from a 0.5 mg/mL bag: 120 mL/h
    result = double_check(
        _signed_order(), concentration_mg_per_ml=Fraction(1, 2), pump_rate_ml_per_h=Fraction(120)
    )
    assert result.matches
    assert result.to_dict()["mismatches"] == []


@pytest.mark.parametrize(
    ("concentration", "pump", "fields"),
    [
        (Fraction(1), Fraction(120), {"concentration_mg_per_ml"}),
        (Fraction(1, 2), Fraction(60), {"pump_rate_ml_per_h"}),  # mg/h typed as mL/h
        (Fraction(1, 2), Fraction("120.05"), {"pump_rate_ml_per_h"}),  # half a step off
        (Fraction(1), Fraction(60), {"concentration_mg_per_ml", "pump_rate_ml_per_h"}),
    ],
)
def test_a_double_check_that_disagrees_names_each_mismatched_entry(
    concentration: Fraction, pump: Fraction, fields: set[str]
) -> None:
    from ketamine_clinic.clinical.dosing import double_check

    result = double_check(
        _signed_order(), concentration_mg_per_ml=concentration, pump_rate_ml_per_h=pump
    )
    assert not result.matches
    assert {m[0] for m in result.mismatches} == fields


def test_a_pump_rate_within_the_pumps_resolution_matches() -> None:
    from ketamine_clinic.clinical.dosing import double_check

    # 60 mg/h from a 1 mg/mL bag is 60 mL/h; 60.04 mL/h is closer than half of the
    # pump's 0.1 mL/h entry resolution.
    result = double_check(
        _signed_order("500 mg in 500 mL"),
        concentration_mg_per_ml=Fraction(1),
        pump_rate_ml_per_h=Fraction("60.04"),
    )
    assert result.matches
