"""The visit's billing summary: infusion codes by the published time rules, IV pushes,
drug lines and diagnoses, from what was charted. Pure functions over frozen dataclasses;
rules and codes are data (``reference/billing.toml``) with their sources.

Decision support for the clinic's billing staff: the clinic confirms its payer rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.units import parse_mass_mg
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml


@dataclass(frozen=True)
class DrugCode:
    name: str
    hcpcs: str
    label: str
    unlisted: bool
    per_mg: Fraction | None
    source: str


@dataclass(frozen=True)
class BillingRules:
    version: int
    initial_code: str
    initial_label: str
    addon_code: str
    addon_label: str
    initial_min_minutes: int
    initial_covers_minutes: int
    addon_hour_minutes: int
    addon_counts_above_minutes: int
    infusion_source: str
    push_initial_code: str
    push_initial_label: str
    push_sequential_code: str
    push_sequential_label: str
    push_routes: frozenset[str]
    push_source: str
    drugs: tuple[DrugCode, ...]

    def drug(self, name: str) -> DrugCode | None:
        key = name.strip().lower()
        return next((d for d in self.drugs if d.name == key), None)


@cache
def billing_rules() -> BillingRules:
    """The shipped rules (``reference/billing.toml``)."""
    return rules_from_dict(read_toml("billing.toml"))


def rules_from_dict(d: Mapping[str, Any]) -> BillingRules:
    inf, push = d["infusion"], d["push"]
    return BillingRules(
        version=int(d["version"]), initial_code=inf["initial_code"],
        initial_label=inf["initial_label"], addon_code=inf["addon_code"],
        addon_label=inf["addon_label"], initial_min_minutes=int(inf["initial_min_minutes"]),
        initial_covers_minutes=int(inf["initial_covers_minutes"]),
        addon_hour_minutes=int(inf["addon_hour_minutes"]),
        addon_counts_above_minutes=int(inf["addon_counts_above_minutes"]),
        infusion_source=inf["source"], push_initial_code=push["initial_code"],
        push_initial_label=push["initial_label"], push_sequential_code=push["sequential_code"],
        push_sequential_label=push["sequential_label"],
        push_routes=frozenset(r.upper() for r in push["routes"]), push_source=push["source"],
        drugs=tuple(DrugCode(name=x["name"].lower(), hcpcs=x["hcpcs"], label=x["label"],
                             unlisted=bool(x.get("unlisted", False)),
                             per_mg=Fraction(str(x["per_mg"])) if "per_mg" in x else None,
                             source=x["source"]) for x in d["drug"]))


@dataclass(frozen=True)
class InfusionUnits:
    initial: int  # units of the initial code (0 or 1)
    addon: int  # units of the add-on hour code


def infusion_units(minutes: int, rules: BillingRules) -> InfusionUnits:
    """Units of the initial infusion code and its add-on hours for ``minutes`` [min] of
    infusion: none below ``initial_min_minutes``; the initial code covers the first
    ``initial_covers_minutes``; then one add-on per further full hour, and one for a last
    partial hour of more than ``addon_counts_above_minutes``."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    if minutes < rules.initial_min_minutes:
        return InfusionUnits(0, 0)
    beyond = max(0, minutes - rules.initial_covers_minutes)
    hours, rest = divmod(beyond, rules.addon_hour_minutes)
    return InfusionUnits(1, hours + (1 if rest > rules.addon_counts_above_minutes else 0))


@dataclass(frozen=True)
class Given:
    """A premedication or rescue drug as charted."""

    drug: str
    dose: Fraction
    unit: str
    route: str
    at: datetime


@dataclass(frozen=True)
class Line:
    code: str
    label: str
    units: int | str
    detail: str = ""
    ndc: str = ""
    quantity: str = ""
    at: datetime | None = None
    source: str = ""


@dataclass(frozen=True)
class Summary:
    infusion_started_at: datetime | None
    infusion_stopped_at: datetime | None
    infusion_minutes: int | None
    procedures: tuple[Line, ...]
    drugs: tuple[Line, ...]
    diagnoses: tuple[str, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)
    rules_version: int = 0

    @property
    def billable(self) -> bool:
        return not self.problems


def _mg(dose: Fraction, unit: str) -> Fraction | None:
    """The dose in mg through the one unit parser (None for a unit that is not a mass)."""
    try:
        return parse_mass_mg(f"{_qty(dose)} {unit}")
    except UsageError:
        return None


def _qty(x: Fraction) -> str:
    return f"{float(x):.3f}".rstrip("0").rstrip(".")


def summarize(*, rules: BillingRules, started_at: datetime | None,
              stopped_at: datetime | None, infusing_minutes: Fraction | None,
              ketamine_mg: Fraction | None, ketamine_ndcs: Sequence[str],
              given: Sequence[Given], diagnoses: Sequence[str]) -> Summary:
    """The billing summary of one visit from what was charted. ``infusing_minutes`` is
    the time the pump ran (pauses excluded); the units count whole minutes of it."""
    problems: list[str] = []
    procedures: list[Line] = []
    minutes: int | None = None
    if started_at is None:
        problems.append("no infusion start is charted: no infusion code can be billed")
    elif stopped_at is None:
        problems.append("the infusion stop time is missing (the most common denial): chart "
                        "the stop before billing")
    elif infusing_minutes is not None:
        minutes = math.floor(infusing_minutes)
        iu = infusion_units(minutes, rules)
        if iu.initial:
            procedures.append(Line(rules.initial_code, rules.initial_label, 1,
                                   detail=f"{minutes} min of infusion",
                                   source=rules.infusion_source))
        else:
            problems.append(f"the infusion ran {minutes} min, under the "
                            f"{rules.initial_min_minutes} min that {rules.initial_code} "
                            "needs: no infusion code")
        if iu.addon:
            procedures.append(Line(rules.addon_code, rules.addon_label, iu.addon,
                                   detail=f"{minutes} min of infusion",
                                   source=rules.infusion_source))
    infusion_billed = any(p.code == rules.initial_code for p in procedures)
    seen: set[str] = set()
    first_push = not infusion_billed
    for g in sorted(given, key=lambda x: x.at):
        name = g.drug.strip().lower()
        if g.route.strip().upper() not in rules.push_routes or name in seen:
            continue
        seen.add(name)
        code, label = ((rules.push_initial_code, rules.push_initial_label) if first_push
                       else (rules.push_sequential_code, rules.push_sequential_label))
        first_push = False
        procedures.append(Line(code, label, 1, detail=f"{g.drug} {_qty(g.dose)} {g.unit} "
                               f"{g.route}", at=g.at, source=rules.push_source))
    drugs: list[Line] = []
    ket = rules.drug("ketamine")
    if ket is not None:
        if ketamine_mg is None:
            problems.append("the ketamine given is not known (the infusion is not stopped)")
        else:
            ndc = ", ".join(sorted(set(ketamine_ndcs)))
            if not ndc:
                problems.append("no NDC for the ketamine: record the vial drawn for this "
                                "session in the controlled-substance record")
            drugs.append(Line(ket.hcpcs, ket.label, 1, ndc=ndc,
                              quantity=f"{_qty(ketamine_mg)} mg", source=ket.source))
    for g in given:
        dc = rules.drug(g.drug)
        mg = _mg(g.dose, g.unit)
        if dc is None:
            drugs.append(Line("", f"{g.drug} (no code in the billing reference)", "",
                              quantity=f"{_qty(g.dose)} {g.unit}", at=g.at))
            continue
        # A per-mg code bills every started mg; an unlisted code bills the quantity given.
        count = math.ceil(mg / dc.per_mg) if dc.per_mg is not None and mg is not None else 1
        drugs.append(Line(dc.hcpcs, dc.label, count, quantity=f"{_qty(g.dose)} {g.unit}",
                          at=g.at, source=dc.source))
    if not diagnoses:
        problems.append("no diagnosis code is recorded for the patient")
    return Summary(infusion_started_at=started_at, infusion_stopped_at=stopped_at,
                   infusion_minutes=minutes, procedures=tuple(procedures), drugs=tuple(drugs),
                   diagnoses=tuple(diagnoses), problems=tuple(problems),
                   rules_version=rules.version)
