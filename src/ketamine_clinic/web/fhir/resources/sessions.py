"""Sessions: the encounter, the infusion procedure, and the administrations of a session's
chart (each rate segment and each medication given).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.chart import WITHDRAWN, Chart, MedicationGiven, Segment
from ketamine_clinic.web.fhir.resources.common import _latest, _with, instant, meta, ref, zone
from ketamine_clinic.web.fhir.resources.orders import _mg_h, order_drug, order_line_id

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


# --------------------------------------------------------------------------- sessions


ENCOUNTER_STATUS = {
    "scheduled": "planned", "checked_in": "arrived",
    "pre_assessment_complete": "triaged", "premedication_given": "in-progress",
    "infusing": "in-progress", "paused": "in-progress", "stopped": "in-progress",
    "recovering": "in-progress", "discharged": "finished", "transferred": "finished",
    "abandoned": "cancelled",
}
PROCEDURE_STATUS = {"infusing": "in-progress", "paused": "in-progress"}


def _session_last_updated(chart: Chart) -> datetime:
    return _latest(chart.session.created_at, chart.last_recorded_at)


def encounter_resource(chart: Chart) -> Json:
    s = chart.session
    tz = zone(s.site)
    sec = T.section("encounter")
    period: Json = {}
    begin = chart.arrived_at or (None if s.state == "scheduled" else s.scheduled_for)
    if begin is not None:
        period["start"] = instant(begin, tz)
    if chart.ended_at is not None:
        period["end"] = instant(chart.ended_at, tz)
    participants = []
    for i, uid in enumerate(chart.charted_by):
        kind = sec["participant_primary"] if i == 0 else sec["participant"]
        participants.append({"type": [T.concept(kind)],
                             "individual": ref("Practitioner", uid)})
    d: Json = {
        "resourceType": "Encounter", "id": str(s.pk),
        "meta": meta(_session_last_updated(chart), tz, sec["profile"]),
        "identifier": [{"system": T.system("local_session"), "value": str(s.pk)}],
        "status": ENCOUNTER_STATUS.get(s.state, "unknown"),
        "class": T.coding(sec["class"]),
        "type": [T.concept(sec["type"], "Ketamine infusion session")],
        "subject": ref("Patient", s.patient_id),
        "serviceProvider": ref("Organization", s.site_id),
    }
    _with(d, period=period, participant=participants)
    if s.state == "scheduled":
        d["period"] = {"start": instant(s.scheduled_for, tz)}
    if chart.ended_kind == "discharge":
        d["hospitalization"] = {"dischargeDisposition": T.concept(sec["discharge_home"])}
    if s.chair:
        d["location"] = [{"location": {"display": f"Chair {s.chair}, {s.site.name}"}}]
    return d


def procedure_resource(chart: Chart) -> Json | None:
    """The infusion as a procedure: only once it has started."""
    s = chart.session
    if chart.started_at is None:
        return None
    tz = zone(s.site)
    sec = T.section("procedure")
    status = PROCEDURE_STATUS.get(s.state, "completed")
    if s.state == "abandoned" and chart.stopped_at is None:
        status = "stopped"
    period: Json = {"start": instant(chart.started_at, tz)}
    if chart.stopped_at is not None:
        period["end"] = instant(chart.stopped_at, tz)
    performers = [{"actor": ref("Practitioner", uid)} for uid in
                  dict.fromkeys(seg.recorded_by_id for seg in chart.segments)]
    d: Json = {
        "resourceType": "Procedure", "id": str(s.pk),
        "meta": meta(_session_last_updated(chart), tz, sec["profile"]),
        "basedOn": [ref("MedicationRequest", s.order_id)],
        "status": status,
        "code": T.concept(sec["code"], "Ketamine intravenous infusion"),
        "subject": ref("Patient", s.patient_id),
        "encounter": ref("Encounter", s.pk),
        "performedPeriod": period,
    }
    _with(d, performer=performers)
    if chart.total_mg is not None:
        d["note"] = [{"text": f"Ketamine infused: "
                              f"{T.number(chart.total_mg, T.precision('dose_mg'))} mg"}]
    return d


def segment_administration(chart: Chart, seg: Segment) -> Json:
    s = chart.session
    tz = zone(s.site)
    period: Json = {"start": instant(seg.start, tz)}
    if seg.end is not None:
        period["end"] = instant(seg.end, tz)
    dosage: Json = {
        "text": f"{T.number(seg.rate_mg_per_h, T.precision('rate_mg_per_h'))} mg/h "
                f"({T.number(seg.pump_rate_ml_per_h, T.precision('rate_ml_per_h'))} mL/h)",
        "route": T.route("IV"),
        "rateQuantity": _mg_h(seg.rate_mg_per_h),
    }
    if seg.dose_mg is not None:
        dosage["dose"] = T.quantity(seg.dose_mg, "mg", T.precision("dose_mg"))
    return {
        "resourceType": "MedicationAdministration", "id": f"seg-{seg.entry_id}",
        "meta": meta(_session_last_updated(chart), tz),
        "partOf": [ref("Procedure", s.pk)],
        "status": "in-progress" if seg.end is None else "completed",
        "medicationCodeableConcept": order_drug(s.order),
        "subject": ref("Patient", s.patient_id),
        "context": ref("Encounter", s.pk),
        "effectivePeriod": period,
        "performer": [{"actor": ref("Practitioner", seg.recorded_by_id)}],
        "request": ref("MedicationRequest", s.order_id),
        "dosage": dosage,
    }


def given_administration(chart: Chart, med: MedicationGiven) -> Json:
    s = chart.session
    tz = zone(s.site)
    unit_name = T.unit_key(med.unit)
    dosage: Json = {"text": f"{med.drug} {T.number(med.dose)} {med.unit} {med.route}".strip(),
                    "route": T.route(med.route)}
    if unit_name:
        dosage["dose"] = T.quantity(med.dose, unit_name)
    d: Json = {
        "resourceType": "MedicationAdministration", "id": f"med-{med.entry_id}",
        "meta": meta(_session_last_updated(chart), tz),
        "status": "entered-in-error" if med.status == WITHDRAWN else "completed",
        "category": {"text": "premedication" if med.kind == "premedication"
                     else "rescue medication"},
        "medicationCodeableConcept": T.drug(med.drug),
        "subject": ref("Patient", s.patient_id),
        "context": ref("Encounter", s.pk),
        "effectiveDateTime": instant(med.at, tz),
        "performer": [{"actor": ref("Practitioner", med.recorded_by_id)}],
        "dosage": dosage,
    }
    if med.order_line is not None:
        d["request"] = ref("MedicationRequest", order_line_id(s.order_id, med.kind,
                                                              med.order_line))
    if med.indication:
        d["reasonCode"] = [{"text": med.indication}]
    return d


def chart_administrations(chart: Chart) -> list[Json]:
    return ([segment_administration(chart, seg) for seg in chart.segments]
            + [given_administration(chart, m) for m in chart.medications])
