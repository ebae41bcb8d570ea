"""The medication administration record: a drug is given from the signed order's list,
at its dose and route, within its count and interval, and never to a patient allergic
to it. Ketamine is given only as the ordered infusion, through the pump."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from ketamine_clinic.clinical.allergies import allergy_matches
from ketamine_clinic.clinical.bedside import words
from ketamine_clinic.clinical.bedside.model import MedicationLine
from ketamine_clinic.clinical.bedside.view import SessionView
from ketamine_clinic.clinical.drugs import lookup_drug, normalise_drug_name
from ketamine_clinic.clinical.units import exact

INFUSED_DRUG = "ketamine"


@dataclass(frozen=True, slots=True)
class GiveRequest:
    drug: str
    dose: Fraction
    unit: str
    route: str
    at: datetime


def judge_give(view: SessionView, request: GiveRequest) -> tuple[MedicationLine | None,
                                                               tuple[str, ...]]:
    """The order line the dose is given from, and every reason it may not be given."""
    drug = normalise_drug_name(request.drug)
    dose = exact(request.dose, field="dose")
    tz = view.facts.time_zone
    if drug == INFUSED_DRUG or (lookup_drug(drug) is not None
                                and lookup_drug(drug).generic == INFUSED_DRUG):  # type: ignore[union-attr]
        return None, ("Ketamine is given only as the ordered infusion, through the pump: "
                      "it cannot be charted as a premedication or rescue drug. Change the "
                      "rate instead, or ask the physician.",)
    line = view.order.line(drug)
    if line is None:
        listed = ", ".join(ln.label for ln in view.order.lines) or "no other drugs"
        return None, (f"{request.drug} is not on the signed order (it lists {listed}): "
                      "ask the physician to change the order before it is given.",)
    reasons: list[str] = []
    for match in allergy_matches(view.facts.allergies, line.drug)[:1]:
        reasons.append(f"{match.message} Do not give {line.drug}; tell the physician.")
    if request.unit != line.unit:
        reasons.append(f"The order gives {line.drug} in {line.unit}, not {request.unit}: "
                       f"chart the dose in {line.unit}.")
    elif dose > line.dose:
        reasons.append(f"{words.num(dose, 2)} {request.unit} of {line.drug} is above "
                       f"the ordered dose of {words.num(line.dose, 2)} {line.unit} "
                       f"{words.tag(line.source)}: give the ordered dose, or ask the "
                       "physician to change the order.")
    if request.route.strip().upper() != line.route.upper():
        reasons.append(f"The order gives {line.drug} {line.route}, not {request.route}.")
    before = [e for e in view.given(line.drug) if e.at <= request.at]
    if len(before) >= line.max_doses:
        times = ", ".join(words.clock(e.at, tz) for e in before)
        reasons.append(f"{len(before)} of {line.max_doses} ordered doses of {line.drug} are "
                       f"already given (at {times}): a further dose needs the physician to "
                       "change the order.")
    elif before and line.min_interval is not None:
        last = before[-1].at
        if request.at - last < line.min_interval:
            due = last + line.min_interval
            reasons.append(f"The last dose of {line.drug} was at {words.clock(last, tz)}; the "
                           f"order allows the next one {words.minutes(line.min_interval)} "
                           f"later, from {words.clock(due, tz)}.")
    return line, tuple(reasons)
