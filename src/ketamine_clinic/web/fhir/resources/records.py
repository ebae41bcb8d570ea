"""Registry records: conditions, allergies, measurements, and the observations of a session's
chart (vital signs and scores).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict
from zoneinfo import ZoneInfo

from ketamine_clinic.clinical.discharge import get_score_definition
from ketamine_clinic.clinical.scales import BEDSIDE_DISSOCIATION_SCALE, get_scale
from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.chart import Chart, ChartEntry
from ketamine_clinic.web.fhir.resources.common import (
    _latest,
    _status_code,
    _with,
    instant,
    meta,
    ref,
    zone,
)

if TYPE_CHECKING:
    pass

Json = dict[str, Any]


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
