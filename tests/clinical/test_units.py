"""Units: parsing human strings at the edge and exact conversions between rate forms."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.units import (
    BolusForm,
    Rate,
    RateForm,
    exact,
    parse_bag,
    parse_bolus,
    parse_concentration_mg_per_ml,
    parse_duration_h,
    parse_interval_min,
    parse_rate,
    parse_weight_kg,
    pump_rate_ml_per_h_from_mg_per_h,
    rate_forms,
    rate_mg_per_h_from_mg_per_kg_per_h,
    rate_mg_per_h_from_pump_ml_per_h,
    rate_mg_per_kg_per_h_from_mg_per_h,
)
from ketamine_clinic.errors import UsageError


# Decimal numbers as people type them: up to 3 decimals, within clinical ranges.
def decimals(low: str, high: str, places: int = 3) -> st.SearchStrategy[Fraction]:
    return st.decimals(Decimal(low), Decimal(high), places=places).map(Fraction)


rates_mg_per_kg_per_h = decimals("0.001", "10")
rates_mg_per_h = decimals("0.1", "1000", places=2)
weights_kg = decimals("2", "350", places=1)
concentrations_mg_per_ml = decimals("0.01", "100", places=2)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "value", "form"),
    [
        ("0.5 mg/kg/h", Fraction(1, 2), RateForm.MG_PER_KG_PER_H),
        ("60 mg/h", Fraction(60), RateForm.MG_PER_H),
        ("25 mL/h", Fraction(25), RateForm.ML_PER_H),
        ("60 mg/hr", Fraction(60), RateForm.MG_PER_H),
        ("60 mg per hour", Fraction(60), RateForm.MG_PER_H),
        ("0.35 mg / kg / hour", Fraction(35, 100), RateForm.MG_PER_KG_PER_H),
        # 8 µg/kg/min = 0.008 mg/kg/min × 60 min/h = 0.48 mg/kg/h (hand-computed)
        ("8 mcg/kg/min", Fraction(48, 100), RateForm.MG_PER_KG_PER_H),
        ("1 g/h", Fraction(1000), RateForm.MG_PER_H),
        ("0.5 mL/min", Fraction(30), RateForm.ML_PER_H),
        ("25 cc/h", Fraction(25), RateForm.ML_PER_H),
        ("1.5e1 mL/h", Fraction(15), RateForm.ML_PER_H),
    ],
)
def test_it_reads_a_rate_in_any_form_and_converts_it_to_the_internal_unit(
    text: str, value: Fraction, form: RateForm
) -> None:
    rate = parse_rate(text)
    assert (rate.value, rate.form) == (value, form)
    assert rate.text == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("60", "no unit"),
        ("mg/h", "does not start with a number"),
        ("sixty mg/h", "does not start with a number"),
        ("nan mg/h", "does not start with a number"),
        ("inf mg/h", "does not start with a number"),
        ("0 mg/h", "greater than zero"),
        ("-5 mg/h", "greater than zero"),
        ("1,5 mg/h", "decimal point"),
        ("60 mg", "not a unit for a rate"),
        ("60 mg/kg", "not a unit for a rate"),
        ("60 mL", "not a unit for a rate"),
        ("60 mg/h/h", "not a unit for a rate"),
        ("60 kg/kg/h", "not a unit for a rate"),
        ("60 blargs/h", "unknown unit"),
        ("60 mg/h)", "unknown unit"),
    ],
)
def test_it_refuses_a_bad_rate_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as err:
        parse_rate(text, field="start_rate")
    assert err.value.field == "start_rate"


def test_it_refuses_a_rate_that_is_not_text() -> None:
    with pytest.raises(UsageError) as err:
        parse_rate(60, field="rate")  # type: ignore[arg-type]
    assert err.value.field == "rate"


@pytest.mark.parametrize(
    ("text", "drug_mg", "volume_ml", "concentration"),
    [
        ("500 mg in 500 mL", 500, 500, Fraction(1)),
        ("0.5 g IN 0.25 L", 500, 250, Fraction(2)),
        ("100 mg in 100 ml", 100, 100, Fraction(1)),
        ("250 mg in 500 mL", 250, 500, Fraction(1, 2)),
    ],
)
def test_it_reads_a_bag_and_gives_its_concentration(
    text: str, drug_mg: int, volume_ml: int, concentration: Fraction
) -> None:
    bag = parse_bag(text)
    assert (bag.drug_mg, bag.volume_ml) == (drug_mg, volume_ml)
    assert bag.concentration_mg_per_ml == concentration


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("500 mg", "<amount> in <volume>"),
        ("500 mg / 500 mL", "<amount> in <volume>"),
        ("500 mL in 500 mg", "not an amount of drug"),
        ("500 in 500 mL", "no unit"),
        ("500 mg in 0 mL", "greater than zero"),
        ("0 mg in 500 mL", "greater than zero"),
        ("500 mg in -500 mL", "greater than zero"),
        ("500 mg in 500 bananas", "unknown unit"),
    ],
)
def test_it_refuses_a_bad_bag_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as err:
        parse_bag(text)
    assert err.value.field == "bag"


def test_it_reads_a_weight_with_or_without_a_unit() -> None:
    assert parse_weight_kg("72.5") == Fraction(145, 2)
    assert parse_weight_kg("72.5 kg") == Fraction(145, 2)
    # 1 lb = 0.45359237 kg exactly (international pound): 160 lb = 72.5747792 kg
    assert parse_weight_kg("160 lb") == Fraction("72.5747792")


@pytest.mark.parametrize("text", ["0", "-70", "seventy", "70 mL", "", "70 kg kg"])
def test_it_refuses_a_bad_weight_naming_the_field(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_weight_kg(text, field="--weight-kg")
    assert err.value.field == "--weight-kg"


def test_it_reads_durations_intervals_concentrations_and_boluses() -> None:
    assert parse_duration_h("240 min") == 4
    assert parse_duration_h("4") == 4
    assert parse_interval_min("0.5 h") == 30
    assert parse_concentration_mg_per_ml("1000 mcg/mL") == 1
    bolus = parse_bolus("0.35 mg/kg")
    assert (bolus.value, bolus.form) == (Fraction(7, 20), BolusForm.MG_PER_KG)
    assert bolus.dose_mg(Fraction(80)) == 28
    assert parse_bolus("0.02 g").dose_mg(Fraction(80)) == 20


def test_it_reads_floats_as_the_decimal_that_was_written() -> None:
    assert exact(0.35, field="x") == Fraction(35, 100)
    assert exact(0.1, field="x") + exact(0.2, field="x") == exact(0.3, field="x")
    assert exact("0.35", field="x") == exact(Decimal("0.35"), field="x")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1 mg", None])
def test_it_refuses_what_is_not_a_finite_number(value: object) -> None:
    with pytest.raises(UsageError) as err:
        exact(value, field="weight_kg")  # type: ignore[arg-type]
    assert err.value.field == "weight_kg"


# --------------------------------------------------------------------------- conversions


def test_a_published_example_converts_as_the_fact_sheet_derives_it() -> None:
    # Fact sheet: 60 mg/h for 70 kg is ≈0.86 mg/kg/h (derived); 60/70 = 0.857142…
    per_kg = rate_mg_per_kg_per_h_from_mg_per_h(Fraction(60), Fraction(70))
    assert float(per_kg) == pytest.approx(0.857142857, rel=1e-9)
    # Schwartzman [S9]: 25 mL/h of a 100 mg in 100 mL bag is 25 mg/h.
    bag = parse_bag("100 mg in 100 mL")
    assert rate_mg_per_h_from_pump_ml_per_h(Fraction(25), bag.concentration_mg_per_ml) == 25


@given(rates_mg_per_kg_per_h, weights_kg)
def test_mg_per_kg_per_h_and_mg_per_h_are_exact_inverses(rate: Fraction, w: Fraction) -> None:
    there = rate_mg_per_h_from_mg_per_kg_per_h(rate, w)
    assert rate_mg_per_kg_per_h_from_mg_per_h(there, w) == rate


@given(rates_mg_per_h, concentrations_mg_per_ml)
def test_mg_per_h_and_pump_ml_per_h_are_exact_inverses(rate: Fraction, c: Fraction) -> None:
    there = pump_rate_ml_per_h_from_mg_per_h(rate, c)
    assert rate_mg_per_h_from_pump_ml_per_h(there, c) == rate


@given(rates_mg_per_kg_per_h, weights_kg, concentrations_mg_per_ml, st.sampled_from(RateForm))
def test_a_rate_entered_in_any_form_gives_the_same_three_forms(
    per_kg: Fraction, w: Fraction, c: Fraction, form: RateForm
) -> None:
    reference = rate_forms(
        Rate(per_kg, RateForm.MG_PER_KG_PER_H), weight_kg=w, concentration_mg_per_ml=c
    )
    entered = Rate(reference.value_in(form), form)
    again = rate_forms(entered, weight_kg=w, concentration_mg_per_ml=c)
    assert again == reference
    # and the three forms are tied by the definitions, independently of the code's path
    assert again.rate_mg_per_h == per_kg * w
    assert again.pump_rate_ml_per_h * c == again.rate_mg_per_h


@given(st.decimals(Decimal("0.001"), Decimal("9999"), places=3), st.sampled_from(RateForm))
def test_parsing_a_typed_rate_keeps_the_typed_number_exactly(
    number: Decimal, form: RateForm
) -> None:
    rate = parse_rate(f"{number} {form.value}")
    assert rate.value == Fraction(number)
    assert rate.form is form


@given(rates_mg_per_h)
def test_floats_leave_the_core_within_one_part_in_ten_to_the_fifteen(rate: Fraction) -> None:
    # The stated tolerance of everything shown or sent as JSON.
    assert abs(Fraction(units.to_float(rate)) - rate) <= rate * Fraction(1, 10**15)
