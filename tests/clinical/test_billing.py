"""Billing rules against hand-worked examples (CPT 96365/96366 time rules: 16-90 min is
one 96365; +96366 per further hour, a last part counting when over 30 min)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from ketamine_clinic.clinical.billing import (
    Given,
    Summary,
    billing_rules,
    infusion_units,
    summarize,
)

RULES = billing_rules()
T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

# (infused minutes, units of 96365, units of 96366), worked by hand from the rule text.
HAND_WORKED = [
    (15, 0, 0),    # under 16 minutes: no infusion code
    (16, 1, 0),    # the shortest 96365
    (90, 1, 0),    # 60 + 30: the last 30 min do not count
    (91, 1, 1),    # 60 + 31: one 96366
    (150, 1, 1),   # 60 + 60 + 30
    (151, 1, 2),   # 60 + 60 + 31
    (240, 1, 3),   # a 4-hour session: 60 + 3 x 60
    (270, 1, 3),   # 60 + 3 x 60 + 30
    (271, 1, 4),
]


@pytest.mark.parametrize(("minutes", "initial", "addon"), HAND_WORKED)
def test_infusion_units_follow_the_published_time_rule(minutes: int, initial: int,
                                                       addon: int) -> None:
    units = infusion_units(minutes, RULES)
    assert (units.initial, units.addon) == (initial, addon)


def test_the_codes_are_the_published_ones() -> None:
    assert (RULES.initial_code, RULES.addon_code) == ("96365", "96366")
    assert (RULES.push_initial_code, RULES.push_sequential_code) == ("96374", "96375")
    assert RULES.drug("Ketamine").hcpcs == "J3490"  # type: ignore[union-attr]
    assert RULES.drug("midazolam").hcpcs == "J2250"  # type: ignore[union-attr]


def _summary(minutes: int | None, given: list[Given], *, stop: bool = True,
             ndcs: tuple[str, ...] = ("0409-2053-05",)) -> Summary:
    return summarize(rules=RULES, started_at=T0,
                     stopped_at=T0 + timedelta(minutes=minutes or 0) if stop else None,
                     infusing_minutes=Fraction(minutes) if minutes is not None else None,
                     ketamine_mg=Fraction(240) if stop else None, ketamine_ndcs=ndcs,
                     given=given, diagnoses=["G90.512"])


def test_with_an_infusion_every_push_of_a_new_drug_is_the_sequential_code() -> None:
    given = [Given("glycopyrrolate", Fraction("0.2"), "mg", "IV", T0 - timedelta(minutes=10)),
             Given("ondansetron", Fraction(4), "mg", "IV", T0 + timedelta(minutes=60)),
             Given("ondansetron", Fraction(4), "mg", "IV", T0 + timedelta(minutes=120))]
    s = _summary(240, given)
    codes = [(p.code, p.units) for p in s.procedures]
    assert codes == [("96365", 1), ("96366", 3), ("96375", 1), ("96375", 1)]
    ondansetron = [d for d in s.drugs if d.code == "J2405"]
    assert [d.units for d in ondansetron] == [4, 4]  # 4 mg at J2405's 1 mg per unit
    [ketamine] = [d for d in s.drugs if "ketamine" in d.label]
    assert (ketamine.code, ketamine.quantity, ketamine.ndc) == ("J3490", "240 mg",
                                                                 "0409-2053-05")
    assert s.billable


def test_without_a_billable_infusion_the_first_push_is_the_initial_push() -> None:
    given = [Given("midazolam", Fraction(2), "mg", "IV", T0),
             Given("ondansetron", Fraction(4), "mg", "oral", T0)]  # not a push
    s = _summary(10, given)
    assert [p.code for p in s.procedures] == ["96374"]
    assert any("under the 16 min" in p for p in s.problems)


def test_a_missing_stop_time_or_ndc_is_named() -> None:
    s = _summary(None, [], stop=False)
    assert any("stop time is missing" in p for p in s.problems)
    s = _summary(120, [], ndcs=())
    assert any("no NDC" in p for p in s.problems)
