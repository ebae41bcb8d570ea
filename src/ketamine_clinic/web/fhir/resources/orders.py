"""Orders: the ketamine MedicationRequest, its dosage text, and one request per premedication
or rescue line.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ketamine_clinic.clinical import units
from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.resources.common import _latest, instant, meta, ref, zone

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


# --------------------------------------------------------------------------- orders





def order_drug(order: Any) -> Json:
    name = T.section("drug_alias").get(order.drug, order.drug)
    return T.drug(name, strength_mg_per_ml=Decimal(order.vial_strength_mg_per_ml))


def _rates(order: Any, text: str) -> units.RateForms | None:
    if not text:
        return None
    weight = Fraction(str(order.dosing_weight_kg))
    conc = Fraction(str(order.bag_drug_mg)) / Fraction(str(order.bag_volume_ml))
    return units.rate_forms(units.parse_rate(text), weight_kg=weight,
                            concentration_mg_per_ml=conc)


def _mg_h(value: Fraction) -> Json:
    return T.quantity(value, "mg_per_h", T.precision("rate_mg_per_h"))


def _ml_h(value: Fraction) -> Json:
    return T.quantity(value, "ml_per_h", T.precision("rate_ml_per_h"))


MEDREQ_STATUS = {"active": "active", "completed": "completed", "discontinued": "stopped"}
EXPORTED_ORDER_STATUSES = tuple(MEDREQ_STATUS)


def order_dosage_text(order: Any) -> str:
    parts = [f"Ketamine IV infusion, bag {order.bag_drug_mg.normalize():f} mg in "
             f"{order.bag_volume_ml.normalize():f} mL, starting at {order.start_rate_text}"]
    if order.titration_step_text:
        parts.append(f"titrated by {order.titration_step_text} no more often than every "
                     f"{order.min_step_interval_min} min")
    parts.append(f"to at most {order.max_rate_text}")
    parts.append(f"for {order.planned_duration_min} min per session")
    text = ", ".join(parts)
    if order.bolus_text:
        text += f"; bolus {order.bolus_text}"
    return text + f"; {order.series.planned_sessions} sessions."


def medication_request_resource(order: Any, site: Any) -> Json:
    tz = zone(site)
    sec = T.section("medication_request")
    start, top = _rates(order, order.start_rate_text), _rates(order, order.max_rate_text)
    assert start is not None
    assert top is not None
    ordered, calculated = T.concept(sec["ordered_rate"]), T.concept(sec["calculated_rate"])
    dose_and_rate = [
        {"type": ordered, "rateQuantity": _mg_h(start.rate_mg_per_h)},
        {"type": calculated, "rateQuantity": _ml_h(start.pump_rate_ml_per_h)},
        {"type": ordered, "rateRange": {"low": _mg_h(start.rate_mg_per_h),
                                        "high": _mg_h(top.rate_mg_per_h)}},
    ]
    dosage: list[Json] = [{
        "sequence": 1, "text": order_dosage_text(order),
        "timing": {"repeat": {"count": order.series.planned_sessions,
                              "duration": order.planned_duration_min, "durationUnit": "min"}},
        "route": T.route("IV"),
        "doseAndRate": dose_and_rate,
        "maxDosePerPeriod": {"numerator": T.quantity(top.rate_mg_per_h, "mg",
                                                     T.precision("rate_mg_per_h")),
                             "denominator": T.quantity(1, "h")},
    }]
    for row in (order.computed or {}).get("titration_table", []):
        if row.get("step", 0) == 0:
            continue
        dosage.append({
            "sequence": 1 + int(row["step"]),
            "text": f"Titration step {row['step']}: {row['rate_mg_per_h']:g} mg/h "
                    f"({row['pump_rate_ml_per_h']:g} mL/h), not before "
                    f"{row['t_min']:g} min from the start",
            "route": T.route("IV"),
            "doseAndRate": [
                {"type": ordered, "rateQuantity": _mg_h(Fraction(str(row["rate_mg_per_h"])))},
                {"type": calculated,
                 "rateQuantity": _ml_h(Fraction(str(row["pump_rate_ml_per_h"])))}],
        })
    requester = order.signed_by_id or order.written_by_id
    d: Json = {
        "resourceType": "MedicationRequest", "id": str(order.pk),
        "meta": meta(_latest(order.written_at, order.signed_at, order.verified_at,
                             order.ended_at), tz, sec["profile"]),
        "identifier": [{"system": T.system("local_order"), "value": str(order.pk)}],
        "status": MEDREQ_STATUS[order.status], "intent": "order",
        "category": [T.concept(sec["category"])],
        "reportedBoolean": False,
        "medicationCodeableConcept": order_drug(order),
        "subject": ref("Patient", order.patient_id),
        "authoredOn": instant(order.signed_at or order.written_at, tz),
        "requester": ref("Practitioner", requester),
        "note": [{"text": f"Protocol {order.protocol_version.name} "
                          f"v{order.protocol_version.version}"}],
        "dosageInstruction": dosage,
    }
    if order.replaces_id:
        d["priorPrescription"] = ref("MedicationRequest", order.replaces_id)
    if order.ended_reason and order.status == "discontinued":
        d["statusReason"] = {"text": order.ended_reason}
    return d


def order_line_id(order_id: int, kind: str, index: int) -> str:
    return f"{order_id}-{'premedication' if kind == 'premedication' else 'rescue'}-{index}"


def order_line_resource(order: Any, site: Any, kind: str, index: int, line: Json) -> Json:
    """A premedication or rescue line of an infusion order, as its own request."""
    tz = zone(site)
    sec = T.section("medication_request")
    dose_unit = T.unit_key(str(line.get("unit", "")))
    dose: Json = ({"doseQuantity": T.quantity(Decimal(str(line["dose"])), dose_unit)}
                  if dose_unit else {})
    text = f"{line['drug']} {line['dose']:g} {line.get('unit', '')} {line.get('route', '')}"
    extra = line.get("timing") or line.get("indication") or ""
    dosage: Json = {"sequence": 1, "text": f"{text}, {extra}" if extra else text,
                    "route": T.route(str(line.get("route", "")))}
    if dose:
        dosage["doseAndRate"] = [{"type": T.concept(sec["ordered_rate"]), **dose}]
    if kind == "rescue_medication":
        dosage["asNeededCodeableConcept"] = {"text": line.get("indication") or "as needed"}
    return {
        "resourceType": "MedicationRequest", "id": order_line_id(order.pk, kind, index),
        "meta": meta(_latest(order.written_at, order.signed_at, order.verified_at,
                             order.ended_at), tz, sec["profile"]),
        "status": MEDREQ_STATUS[order.status], "intent": "order",
        "category": [T.concept(sec["category"])],
        "reportedBoolean": False,
        "medicationCodeableConcept": T.drug(str(line["drug"])),
        "subject": ref("Patient", order.patient_id),
        "authoredOn": instant(order.signed_at or order.written_at, tz),
        "requester": ref("Practitioner", order.signed_by_id or order.written_by_id),
        "basedOn": [ref("MedicationRequest", order.pk)],
        "dosageInstruction": [dosage],
    }


def order_resources(order: Any, site: Any) -> list[Json]:
    out = [medication_request_resource(order, site)]
    for kind, lines in (("premedication", order.premedications),
                        ("rescue_medication", order.rescue_medications)):
        for i, line in enumerate(lines or []):
            out.append(order_line_resource(order, site, kind, i, line))
    return out
