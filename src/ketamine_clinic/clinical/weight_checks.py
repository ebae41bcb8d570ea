"""Checks on a body weight as it is entered: an impossible adult weight is refused, and a
large change from the last weight (a number typed in pounds, most often) must be confirmed
before it is used for dosing. Thresholds: ``reference/body_weight.toml [entry_checks]``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.units import exact, kg_from_lb
from ketamine_clinic.reference import read_toml


@dataclass(frozen=True, slots=True)
class WeightFinding:
    """``blocks``: the weight is refused; otherwise it is recorded only once confirmed."""

    code: str
    message: str
    blocks: bool


@cache
def _checks() -> dict[str, Any]:
    data: dict[str, Any] = read_toml("body_weight.toml")["entry_checks"]
    return data


def _kg(x: Fraction) -> str:
    return f"{float(x):.1f}".rstrip("0").rstrip(".")


def weight_findings(weight_kg: Fraction | float | str, *, age_years: int | None,
                    previous: tuple[Fraction | float | str, date] | None,
                    on: date) -> tuple[WeightFinding, ...]:
    """What is wrong or doubtful about a new weight of ``weight_kg`` [kg] measured ``on``
    for a patient of ``age_years``, given the ``previous`` weight and its date."""
    c = _checks()
    weight = exact(weight_kg, field="weight_kg")
    out: list[WeightFinding] = []
    if age_years is not None and age_years >= int(c["adult_age_years"]) \
            and weight < exact(c["adult_minimum_kg"], field="adult_minimum_kg"):
        out.append(WeightFinding(
            "adult_minimum",
            f"{_kg(weight)} kg is below {c['adult_minimum_kg']} kg, less than any adult "
            "weighs [clinic policy]: check the number and the unit.", True))
    if previous is not None:
        before = exact(previous[0], field="previous_weight_kg")
        days = (on - previous[1]).days
        change = abs(weight - before) / before * 100
        if before > 0 and 0 <= days <= int(c["change_window_days"]) \
                and change >= exact(c["change_confirm_percent"], field="change_confirm_percent"):
            pounds = kg_from_lb(weight)
            tolerance = exact(c["pounds_tolerance_percent"], field="pounds_tolerance_percent")
            looks_like_lb = abs(pounds - before) / before * 100 <= tolerance
            hint = (f" It looks like pounds: {_kg(weight)} lb is {_kg(pounds)} kg."
                    if looks_like_lb else "")
            out.append(WeightFinding(
                "large_change",
                f"{_kg(weight)} kg is {float(change):.0f}% away from the {_kg(before)} kg "
                f"recorded on {previous[1]:%d %b %Y} [clinic policy].{hint} Check the scale "
                "and the unit, then confirm the weight to record it.", False))
    return tuple(out)
