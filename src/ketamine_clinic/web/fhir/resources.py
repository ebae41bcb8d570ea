"""Mapping the app's records to FHIR R4 resources (``fhir.resources`` R4B models).

Each ``*_resource`` function takes rows already read (and, for sessions, a
:class:`~ketamine_clinic.web.fhir.chart.Chart`) and returns the resource as a plain dict;
:func:`validated` turns it into the R4B model, which is what leaves the server: nothing
is served or exported that the model refuses. Codes, systems, units and profiles come from
``reference/fhir.toml`` through :mod:`terminology` (``T``). Times carry the site's offset.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypedDict, cast
from zoneinfo import ZoneInfo

import msgspec

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.discharge import get_score_definition
from ketamine_clinic.clinical.scales import BEDSIDE_DISSOCIATION_SCALE, get_scale
from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.chart import WITHDRAWN, Chart, ChartEntry, MedicationGiven, Segment

if TYPE_CHECKING:
    # The FHIR models load only when a resource is validated.
    from fhir.resources.R4B.resource import Resource

Json = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def validated(resource: Json) -> Resource:
    """The R4B model of ``resource``; raises pydantic's ValidationError if it is not valid."""
    # The FHIR models load only when a resource is validated.
    from fhir.resources.R4B import get_fhir_model_class  # imported on first use: start-up

    cls = get_fhir_model_class(resource["resourceType"])
    return cast("Resource", cls.model_validate(resource))  # every resourceType is a Resource


def to_json(model: Resource) -> str:
    """The model's own serialisation (slow: used by the tests that compare with
    :func:`serve`)."""
    return model.model_dump_json()


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def serve(resource: Json) -> bytes:
    """``resource`` as JSON once the R4B model has accepted it.

    The model validates; the bytes are the same document encoded by msgspec, which is
    about fifty times faster than the model's serialiser and gives the same JSON for
    everything this module builds (``test_served_json_is_the_models_json`` checks every
    resource of a fully charted record).
    """
    validated(resource)
    return _ENCODER.encode(resource)


def ref(resource_type: str, rid: object, display: str = "") -> Json:
    out: Json = {"reference": f"{resource_type}/{rid}"}
    if display:
        out["display"] = display
    return out


def practitioner_ref(user_id: int | None) -> Json | None:
    return None if user_id is None else ref("Practitioner", user_id)


def zone(site: Any) -> ZoneInfo:
    return ZoneInfo(site.time_zone)


def instant(at: datetime, tz: tzinfo) -> str:
    """An instant with the site's offset, to the second (FHIR instants need seconds)."""
    text = at.astimezone(tz).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text  # as the model writes UTC


def meta(last_updated: datetime, tz: ZoneInfo, profile: str | None = None) -> Json:
    out: Json = {"lastUpdated": instant(last_updated, tz)}
    if profile:
        out["profile"] = [T.profile(profile)]
    return out


def _latest(*times: datetime | None) -> datetime:
    return max(t for t in times if t is not None)


def _with(d: Json, **kv: Any) -> Json:
    """``d`` with every key whose value is not None / empty."""
    for k, v in kv.items():
        if v not in (None, "", [], {}):
            d[k] = v
    return d


def _status_code(system_name: str, code: str) -> Json:
    return {"coding": [{"system": T.system(system_name), "code": code}]}


# --------------------------------------------------------------------------- people, places


def organization_resource(site: Any) -> Json:
    tz = zone(site)
    d: Json = {
        "resourceType": "Organization", "id": str(site.pk),
        "meta": meta(datetime.now(tz), tz, T.section("organization")["profile"]),
        "identifier": [{"system": T.system("local_site"), "value": site.code}],
        "active": True, "name": site.name,
    }
    if site.phone:
        d["telecom"] = [{"system": "phone", "value": site.phone, "use": "work"}]
    if site.address:
        d["address"] = [{"text": site.address}]
    return d


def practitioner_resource(user: Any) -> Json:
    tz = ZoneInfo("UTC")
    name: Json = {"family": user.last_name or user.username}
    if user.first_name:
        name["given"] = [user.first_name]
    if user.title:
        name["suffix"] = [user.title]
    return {
        "resourceType": "Practitioner", "id": str(user.pk),
        "meta": meta(user.date_joined, tz, T.section("practitioner")["profile"]),
        "identifier": [{"system": T.system("local_staff"), "value": user.username}],
        "active": bool(user.is_active), "name": [name],
    }


def group_resource(site: Any, patient_ids: Iterable[int]) -> Json:
    tz = zone(site)
    members = [{"entity": ref("Patient", pid)} for pid in patient_ids]
    return _with({
        "resourceType": "Group", "id": str(site.pk),
        "meta": meta(datetime.now(tz), tz),
        "identifier": [{"system": T.system("local_site"), "value": site.code}],
        "type": "person", "actual": True, "name": f"Patients of {site.name}",
        "managingEntity": ref("Organization", site.pk),
        "quantity": len(members),
    }, member=members)


def patient_resource(p: Any, *, last_updated: datetime | None = None) -> Json:
    tz = zone(p.site)
    sec = T.section("patient")
    d: Json = {
        "resourceType": "Patient", "id": str(p.pk),
        "meta": meta(last_updated or p.created_at, tz, sec["profile"]),
        "extension": [{"url": sec["birthsex_extension"],
                       "valueCode": sec["birthsex"][p.sex_at_birth]}],
        "identifier": [{"use": "usual", "type": T.concept(sec["mrn_type"]),
                        "system": T.system("local_mrn") + p.site.code, "value": p.mrn}],
        "active": True,
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
        "gender": sec["gender"][p.sex_at_birth],
        "birthDate": p.date_of_birth.isoformat(),
        "managingOrganization": ref("Organization", p.site_id),
    }
    telecom = []
    if p.phone:
        telecom.append({"system": "phone", "value": p.phone, "use": "home"})
    if p.email:
        telecom.append({"system": "email", "value": p.email})
    _with(d, telecom=telecom)
    if p.address:
        d["address"] = [{"text": p.address}]
    if p.escort_name:
        contact: Json = {"name": {"text": p.escort_name}}
        if p.escort_relationship:
            contact["relationship"] = [{"text": p.escort_relationship}]
        if p.escort_phone:
            contact["telecom"] = [{"system": "phone", "value": p.escort_phone}]
        d["contact"] = [contact]
    return d


# --------------------------------------------------------------------------- registry records


def condition_resource(dx: Any, site: Any) -> Json:
    tz = zone(site)
    sec = T.section("condition")
    codings = [{"system": T.system(dx.system), "code": dx.code, "display": dx.display}]
    snomed = sec["snomed_for_group"].get(dx.group) if dx.system == "icd10cm" else None
    if snomed:
        codings.append({"system": T.system("snomed"), "code": snomed,
                        "display": sec["snomed_display"][snomed]})
    d: Json = {
        "resourceType": "Condition", "id": str(dx.pk),
        "meta": meta(_latest(dx.recorded_at, dx.entered_in_error_at), tz, sec["profile"]),
        "extension": [{"url": sec["asserted_date_extension"],
                       "valueDateTime": dx.diagnosed_on.isoformat()}],
        "category": [T.concept(sec["category"])],
        "code": {"coding": codings, "text": dx.display},
        "subject": ref("Patient", dx.patient_id),
        "onsetDateTime": dx.diagnosed_on.isoformat(),
        "recordedDate": instant(dx.recorded_at, tz),
        "recorder": ref("Practitioner", dx.recorded_by_id),
    }
    if dx.in_error:
        d["verificationStatus"] = _status_code("condition_verification", "entered-in-error")
        d["note"] = [{"text": f"Entered in error: {dx.entered_in_error_reason}"}]
    else:
        d["clinicalStatus"] = _status_code("condition_clinical", "active")
        d["verificationStatus"] = _status_code("condition_verification", "confirmed")
        if dx.note:
            d["note"] = [{"text": dx.note}]
    return d


def allergy_resource(a: Any, site: Any) -> Json:
    tz = zone(site)
    d: Json = {
        "resourceType": "AllergyIntolerance", "id": str(a.pk),
        "meta": meta(_latest(a.recorded_at, a.entered_in_error_at), tz,
                     T.section("allergy")["profile"]),
        "code": {"text": a.substance},
        "patient": ref("Patient", a.patient_id),
        "recordedDate": instant(a.recorded_at, tz),
        "recorder": ref("Practitioner", a.recorded_by_id),
    }
    if a.in_error:
        d["verificationStatus"] = _status_code("allergy_verification", "entered-in-error")
    else:
        d["clinicalStatus"] = _status_code("allergy_clinical", "active")
        d["verificationStatus"] = _status_code("allergy_verification", "confirmed")
    if a.reaction:
        reaction: Json = {"manifestation": [{"text": a.reaction}]}
        if a.severity:
            reaction["severity"] = a.severity
        d["reaction"] = [reaction]
    return d


def _observation(oid: str, *, status: str, category: list[Json], code: Json,
                 patient_id: int, at: datetime, tz: ZoneInfo, last_updated: datetime,
                 profile: str | None, performer_id: int | None,
                 encounter_id: int | None = None) -> Json:
    d: Json = {
        "resourceType": "Observation", "id": oid,
        "meta": meta(last_updated, tz, profile or None),
        "status": status, "category": category, "code": code,
        "subject": ref("Patient", patient_id),
        "effectiveDateTime": instant(at, tz),
    }
    if encounter_id is not None:
        d["encounter"] = ref("Encounter", encounter_id)
    if performer_id is not None:
        d["performer"] = [ref("Practitioner", performer_id)]
    return d


def _loinc(code: str, display: str) -> Json:
    return {"system": T.system("loinc"), "code": code, "display": display}


def _vs_category() -> list[Json]:
    return [T.concept(T.section("observation")["vital_signs_category"])]


def measurement_observation(m: Any, site: Any) -> Json | None:
    """Body weight or height from the registry (pregnancy status is not sent)."""
    entry = T.section("measurement").get(m.kind)
    if entry is None or m.value_number is None:
        return None
    tz = zone(site)
    d = _observation(
        f"m-{m.pk}", status="entered-in-error" if m.in_error else "final",
        category=_vs_category(),
        code={"coding": [_loinc(entry["loinc"], entry["display"])], "text": entry["display"]},
        patient_id=m.patient_id, at=m.measured_at, tz=tz,
        last_updated=_latest(m.recorded_at, m.entered_in_error_at),
        profile=entry["profile"], performer_id=m.recorded_by_id)
    d["valueQuantity"] = T.quantity(m.value_number, entry["unit"])
    return d


class _ObservationCommon(TypedDict):
    """What every observation of one charted set shares."""

    status: str
    patient_id: int
    at: datetime
    tz: ZoneInfo
    last_updated: datetime
    performer_id: int | None
    encounter_id: int | None


def vitals_observations(c: ChartEntry, *, patient_id: int, session_id: int,
                        tz: ZoneInfo) -> list[Json]:
    """One Observation per vital sign of a charted set (blood pressure as the panel)."""
    out = []
    p = c.payload
    common: _ObservationCommon = {
        "status": c.status, "patient_id": patient_id, "at": c.at, "tz": tz,
        "last_updated": c.recorded_at, "performer_id": c.recorded_by_id,
        "encounter_id": session_id}
    vitals = T.section("vital")
    bp = vitals["blood_pressure"]
    if p.get(bp["systolic_field"]) is not None and p.get(bp["diastolic_field"]) is not None:
        d = _observation(f"v-{c.entry_id}-blood-pressure", category=_vs_category(),
                         code={"coding": [_loinc(bp["loinc"], bp["display"])],
                               "text": "Blood pressure"},
                         profile=bp["profile"], **common)
        d["component"] = [
            {"code": {"coding": [_loinc(bp[f"{part}_loinc"], bp[f"{part}_display"])]},
             "valueQuantity": T.quantity(p[bp[f"{part}_field"]], bp["unit"])}
            for part in ("systolic", "diastolic")]
        out.append(d)
    for key, v in vitals.items():
        if key == "blood_pressure" or p.get(v["field"]) is None:
            continue
        if "loinc" in v:
            codings = [_loinc(v["loinc"], v["display"])]
            if v.get("companion_loinc"):
                codings.append(_loinc(v["companion_loinc"], v["companion_display"]))
        else:
            codings = [{"system": T.system("local_vital"), "code": v["local"],
                        "display": v["display"]}]
        d = _observation(f"v-{c.entry_id}-{key.replace('_', '-')}", category=_vs_category(),
                         code={"coding": codings, "text": v["display"]},
                         profile=v["profile"] or None, **common)
        d["valueQuantity"] = T.quantity(p[v["field"]], v["unit"])
        if key == "spo2" and p.get("on_oxygen"):
            d["note"] = [{"text": "Measured on supplemental oxygen."}]
        out.append(d)
    return out


def _score_category() -> list[Json]:
    obs = T.section("observation")
    return [T.concept(obs["survey_category"]), T.concept(obs["screening_category"])]


def score_observation(c: ChartEntry, *, patient_id: int, session_id: int,
                      tz: ZoneInfo) -> Json:
    """A pain, sedation, dissociation or recovery score charted in a session."""
    p = c.payload
    components: list[Json] = []
    if c.kind in ("pain", "sedation", "dissociation"):
        scale = get_scale({"pain": "pain_nrs"}.get(c.kind)
                          or p.get("scale", BEDSIDE_DISSOCIATION_SCALE))
        text = f"{scale.short}: {scale.name}"
        if scale.loinc:
            code = {"coding": [_loinc(scale.loinc, scale.name)], "text": text}
        else:
            code = {"coding": [{"system": T.system("local_scale"), "code": scale.key,
                                "display": scale.name}], "text": text}
        value: Any = p["nrs"] if c.kind == "pain" else p.get("score", p.get("total"))
        if c.kind == "dissociation":
            components = [
                {"code": {"coding": [{"system": T.system("local_scale"),
                                      "code": f"{scale.key}-item-{item}",
                                      "display": f"{scale.short} item {item}"}]},
                 "valueInteger": int(points)}
                for item, points in sorted(p.get("items", {}).items(), key=lambda kv: int(kv[0]))]
        oid = f"{c.kind}-{c.entry_id}"
    else:  # recovery_score
        definition = get_score_definition(p["score_name"])
        code = {"coding": [{"system": T.system("local_recovery"), "code": definition.key,
                            "display": definition.name}], "text": definition.name}
        value = p["total"]
        labels = {i.key: i.label for i in definition.items}
        components = [
            {"code": {"coding": [{"system": T.system("local_recovery"),
                                  "code": f"{definition.key}-{item}",
                                  "display": labels.get(item, item)}]},
             "valueInteger": int(points)}
            for item, points in p.get("items", {}).items()]
        oid = f"recovery-{c.entry_id}"
    d = _observation(oid, status=c.status, category=_score_category(), code=code,
                     patient_id=patient_id, at=c.at, tz=tz, last_updated=c.recorded_at,
                     profile=T.section("score")["profile"], performer_id=c.recorded_by_id,
                     encounter_id=session_id)
    d["valueQuantity"] = T.quantity(value, "score")
    if c.kind == "pain":
        d["note"] = [{"text": f"Phase: {p.get('phase', '')}"}]
    _with(d, component=components)
    return d


def chart_observations(chart: Chart) -> list[Json]:
    s = chart.session
    tz = zone(s.site)
    out: list[Json] = []
    for c in chart.observations:
        if c.kind == "vitals":
            out.extend(vitals_observations(c, patient_id=s.patient_id, session_id=s.pk, tz=tz))
        else:
            out.append(score_observation(c, patient_id=s.patient_id, session_id=s.pk, tz=tz))
    return out


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


# --------------------------------------------------------------------------- documents, answers


def consent_resource(consent: Any, site: Any, document: Any | None) -> Json:
    tz = zone(site)
    sec = T.section("consent")
    withdrawal = getattr(consent, "withdrawal", None)
    provision: Json = {"type": "permit", "period": {"start": instant(consent.signed_at, tz)}}
    if withdrawal is not None:
        provision["period"]["end"] = instant(withdrawal.withdrawn_at, tz)
    pv = consent.protocol_version
    d: Json = {
        "resourceType": "Consent", "id": str(consent.pk),
        "meta": meta(_latest(consent.recorded_at,
                             withdrawal.recorded_at if withdrawal else None), tz),
        "status": "inactive" if withdrawal is not None else "active",
        "scope": T.concept(sec["scope"]),
        "category": [T.concept(sec["category"])],
        "patient": ref("Patient", consent.patient_id),
        "dateTime": instant(consent.signed_at, tz),
        "performer": [ref("Patient", consent.patient_id)],
        "organization": [ref("Organization", site.pk)],
        "policyRule": T.concept(sec["policy_rule"]),
        "provision": provision,
    }
    if document is not None:
        raw = document.text.encode()
        d["sourceAttachment"] = {
            "contentType": "text/markdown; charset=utf-8", "language": "en",
            "data": base64.b64encode(raw).decode(),
            "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode(),
            "size": len(raw), "title": document.title,
            "creation": instant(consent.signed_at, tz),
        }
    else:
        where = f": {consent.paper_reference}" if consent.paper_reference else ""
        d["sourceAttachment"] = {"title": f"Consent for {pv.name} v{pv.version} "
                                          f"({consent.get_method_display().lower()}{where})"}
    return d


FOLLOW_UP_QUESTIONNAIRE = "follow-up"
QUESTIONS = (
    ("pain_average_nrs", "Average pain over the past week (0-10)", "integer"),
    ("pain_worst_nrs", "Worst pain over the past week (0-10)", "integer"),
    ("global_impression", "Patient global impression of change", "integer"),
    ("opioid_mme_per_day", "Opioid use (morphine milligram equivalents per day)", "decimal"),
)


def questionnaire_url() -> str:
    return T.system("local_questionnaire") + FOLLOW_UP_QUESTIONNAIRE


def questionnaire_resource() -> Json:
    tz = ZoneInfo("UTC")
    return {
        "resourceType": "Questionnaire", "id": FOLLOW_UP_QUESTIONNAIRE,
        "meta": meta(datetime.fromisoformat(T.section("fhir")["questionnaire_date"]), tz),
        "url": questionnaire_url(), "name": "FollowUp", "title": "Follow-up after infusions",
        "status": "active", "subjectType": ["Patient"],
        "item": [{"linkId": key, "text": text, "type": kind} for key, text, kind in QUESTIONS],
    }


def questionnaire_response_resource(r: Any, follow_up: Any, site: Any) -> Json:
    tz = zone(site)
    items = []
    for key, text, kind in QUESTIONS:
        value = getattr(r, key)
        if value is None:
            continue
        answer = ({"valueInteger": int(value)} if kind == "integer"
                  else {"valueDecimal": T.number(Decimal(value))})
        items.append({"linkId": key, "text": text, "answer": [answer]})
    author = (ref("Patient", follow_up.patient_id) if r.via_patient_link or r.entered_by_id is None
              else ref("Practitioner", r.entered_by_id))
    d: Json = {
        "resourceType": "QuestionnaireResponse", "id": str(r.pk),
        "meta": meta(r.recorded_at, tz, T.section("questionnaire_response")["profile"]),
        "identifier": {"system": T.system("local_questionnaire") + "response",
                       "value": str(r.pk)},
        "questionnaire": questionnaire_url(),
        "status": "amended" if r.corrects_id else "completed",
        "subject": ref("Patient", follow_up.patient_id),
        "authored": instant(r.answered_at, tz),
        "author": author,
        "item": items,
    }
    if follow_up.session_id:
        d["encounter"] = ref("Encounter", follow_up.session_id)
    return d


# --------------------------------------------------------------------------- provenance, audit


def provenance_resource(target: Json, *, site: Any, recorded: datetime,
                        author_id: int | None, verifier_id: int | None = None,
                        author_is_patient: bool = False) -> Json:
    """Who authored ``target`` (and who verified it), on behalf of the site."""
    tz = zone(site)
    sec = T.section("provenance")
    rtype, rid = target["resourceType"], target["id"]
    agents = []
    if author_is_patient:
        subject = target.get("subject") or target.get("patient")
        agents.append({"type": T.concept(sec["author"]), "who": subject})
    elif author_id is not None:
        agents.append({"type": T.concept(sec["author"]), "who": ref("Practitioner", author_id),
                       "onBehalfOf": ref("Organization", site.pk)})
    if verifier_id is not None:
        agents.append({"type": T.concept(sec["verifier"]),
                       "who": ref("Practitioner", verifier_id),
                       "onBehalfOf": ref("Organization", site.pk)})
    agents.append({"type": T.concept(sec["transmitter"]),
                   "who": ref("Organization", site.pk)})
    return {
        "resourceType": "Provenance", "id": f"{rtype}-{rid}",
        "meta": meta(recorded, tz, sec["profile"]),
        "target": [ref(rtype, rid)],
        "recorded": instant(recorded, tz),
        "agent": agents,
    }


AUDIT_ACTIONS = {"view": "R", "read": "R", "search": "E", "list": "E", "browse": "E",
                 "export": "E", "download": "R", "print": "R"}
OBJECT_TYPES = {"patient": "Patient", "session": "Encounter", "order": "MedicationRequest",
                "consent": "Consent", "diagnosis": "Condition", "allergy": "AllergyIntolerance"}


def audit_event_resource(entry: Any) -> Json:
    """One entry of the keyed, hash-chained audit trail (IHE Basic Audit Log Patterns shape)."""
    tz = ZoneInfo("UTC")
    sec = T.section("audit_event")
    verb = entry.action.rsplit(".", 1)[-1]
    denied = "denied" in verb
    if entry.action.startswith(("login", "logout", "auth")):
        event_type = sec["login_type"]
    elif verb in ("search", "list", "browse"):
        event_type = sec["query_type"]
    elif "export" in entry.action:
        event_type = sec["export_type"]
    else:
        event_type = sec["rest_type"]
    agent: Json = {"requestor": True, "type": {"text": entry.role or "system"}}
    if entry.user_id_value is not None:
        agent["who"] = ref("Practitioner", entry.user_id_value, entry.username)
    else:
        agent["who"] = {"display": entry.username or "system"}
    if entry.client_address:
        agent["network"] = {"address": entry.client_address, "type": "2"}
    entities: list[Json] = []
    if entry.object_type:
        what: Json
        if entry.object_type in OBJECT_TYPES and entry.object_id.isdigit():
            what = ref(OBJECT_TYPES[entry.object_type], entry.object_id)
        else:
            what = {"identifier": {"system": T.system("local_site").replace("site", "object"),
                                   "value": f"{entry.object_type}/{entry.object_id}"}}
        entities.append({"what": what, "type": {"code": entry.object_type},
                         "detail": [{"type": "chain", "valueString":
                                     f"entry {entry.pk} {entry.mac}"}]})
    return _with({
        "resourceType": "AuditEvent", "id": str(entry.pk),
        "meta": meta(entry.at, tz, sec["profile"]),
        "type": T.coding(event_type),
        "subtype": [{"code": entry.action, "display": entry.action}],
        "action": "E" if denied else AUDIT_ACTIONS.get(verb, "E"),
        "recorded": instant(entry.at, tz),
        "outcome": "4" if denied else "0",
        "agent": [agent],
        "source": {"site": entry.site_code or None,
                   "observer": {"display": "ketamine-clinic"},
                   "type": [T.coding(sec["source_type"])]},
    }, entity=entities)

