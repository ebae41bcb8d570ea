"""Each resource mapping against hand-written expected JSON (the R4B model's output).

The expected documents are written out field by field; only the ids and clinical times the
fixture's services assigned are filled in. ``meta.lastUpdated`` is checked separately.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, timedelta
from typing import Any

import pytest

from ketamine_clinic.web.fhir import resources as R
from ketamine_clinic.web.fhir import sources
from tests.web.fhir.conftest import Charted, local

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
IV = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}],
      "text": "IV"}
VITAL_SIGNS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                      "observation-category",
                            "code": "vital-signs", "display": "Vital Signs"}]}]
SCORE_CATEGORIES = [
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                 "code": "survey", "display": "Survey"}]},
    {"coding": [{"system": "http://hl7.org/fhir/us-core/CodeSystem/us-core-category",
                 "code": "functional-status", "display": "Functional Status"}]}]


def served(batch: sources.Batch, resource_type: str, rid: str) -> dict[str, Any]:
    """The resource exactly as it leaves the server (validated, then serialised)."""
    found = [r for r in batch.resources(resource_type) if r["id"] == rid]
    assert len(found) == 1, f"{resource_type}/{rid} not built"
    out: dict[str, Any] = json.loads(R.to_json(R.validated(found[0])))
    return out


def without_meta(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k != "meta"}


@pytest.fixture
def batch(charted: Charted) -> sources.Batch:
    return sources.Batch(sources.Scope((charted.cast.ana,)))


def q(value: Any, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def test_patient_maps_identity_mrn_birth_sex_and_escort(charted: Charted,
                                                        batch: sources.Batch) -> None:
    ana = charted.cast.ana
    res = served(batch, "Patient", str(ana.pk))
    assert res["meta"]["profile"] == [US_CORE + "us-core-patient"]
    assert res["meta"]["lastUpdated"] == local(ana.created_at)
    assert without_meta(res) == {
        "resourceType": "Patient", "id": str(ana.pk),
        "extension": [{"url": US_CORE + "us-core-birthsex", "valueCode": "F"}],
        "identifier": [{"use": "usual",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/"
                                                       "CodeSystem/v2-0203",
                                             "code": "MR",
                                             "display": "Medical record number"}]},
                        "system": "urn:ketamine-clinic:mrn:denver", "value": "DEN-1"}],
        "active": True,
        "name": [{"use": "official", "family": "Ruiz", "given": ["Ana"]}],
        "gender": "female",
        "birthDate": ana.date_of_birth.isoformat(),
        "contact": [{"name": {"text": "Luis Ruiz"}}],
        "managingOrganization": {"reference": f"Organization/{charted.cast.denver.pk}"},
    }


def test_condition_carries_icd10cm_and_the_snomed_crps_concept(charted: Charted,
                                                               batch: sources.Batch) -> None:
    dx = charted.diagnosis
    res = served(batch, "Condition", str(dx.pk))
    assert res["meta"]["profile"] == [US_CORE + "us-core-condition-problems-health-concerns"]
    assert without_meta(res) == {
        "resourceType": "Condition", "id": str(dx.pk),
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
                       "valueDateTime": dx.diagnosed_on.isoformat()}],
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                     "condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                            "condition-category",
                                  "code": "problem-list-item",
                                  "display": "Problem List Item"}]}],
        "code": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G90.512",
             "display": "Complex regional pain syndrome I of left upper limb"},
            {"system": SNOMED, "code": "734947007",
             "display": "Complex regional pain syndrome type I"}],
            "text": "Complex regional pain syndrome I of left upper limb"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "onsetDateTime": dx.diagnosed_on.isoformat(),
        "recordedDate": local(dx.recorded_at),
        "recorder": {"reference": f"Practitioner/{charted.cast.alice.pk}"},
    }


def test_a_condition_entered_in_error_says_so_and_has_no_clinical_status(
        charted: Charted) -> None:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients.services import record_mark_in_error

    record_mark_in_error(actor=Actor(user=charted.cast.alice), record=charted.diagnosis,
                         reason="wrong limb")
    res = served(sources.Batch(sources.Scope((charted.cast.ana,))), "Condition",
                 str(charted.diagnosis.pk))
    assert "clinicalStatus" not in res
    assert res["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert res["note"] == [{"text": "Entered in error: wrong limb"}]


def test_allergy_maps_substance_reaction_and_severity(charted: Charted,
                                                      batch: sources.Batch) -> None:
    a = charted.allergy
    res = served(batch, "AllergyIntolerance", str(a.pk))
    assert res["meta"]["profile"] == [US_CORE + "us-core-allergyintolerance"]
    assert without_meta(res) == {
        "resourceType": "AllergyIntolerance", "id": str(a.pk),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "allergyintolerance-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                     "allergyintolerance-verification",
                                           "code": "confirmed"}]},
        "code": {"text": "latex"},
        "patient": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "recordedDate": local(a.recorded_at),
        "recorder": {"reference": f"Practitioner/{charted.cast.bob.pk}"},
        "reaction": [{"manifestation": [{"text": "hives"}], "severity": "moderate"}],
    }


def test_body_weight_and_height_are_us_core_vital_signs_in_ucum(charted: Charted,
                                                                batch: sources.Batch) -> None:
    w, h = charted.weight, charted.height
    weight = served(batch, "Observation", f"m-{w.pk}")
    assert weight["meta"]["profile"] == [US_CORE + "us-core-body-weight"]
    assert without_meta(weight) == {
        "resourceType": "Observation", "id": f"m-{w.pk}", "status": "final",
        "category": VITAL_SIGNS,
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}],
                 "text": "Body weight"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "effectiveDateTime": local(w.measured_at),
        "performer": [{"reference": f"Practitioner/{charted.cast.bob.pk}"}],
        "valueQuantity": q(70, "kg"),
    }
    height = served(batch, "Observation", f"m-{h.pk}")
    assert height["meta"]["profile"] == [US_CORE + "us-core-body-height"]
    assert height["code"]["coding"] == [{"system": LOINC, "code": "8302-2",
                                         "display": "Body height"}]
    assert height["valueQuantity"] == q(165, "cm")


def test_a_charted_vital_sign_set_becomes_one_observation_per_sign(
        charted: Charted, batch: sources.Batch) -> None:
    e = charted.entries["vitals_pre"]
    at = local(e.occurred_at)
    common = {"resourceType": "Observation", "status": "final", "category": VITAL_SIGNS,
              "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
              "encounter": {"reference": f"Encounter/{charted.session.pk}"},
              "effectiveDateTime": at,
              "performer": [{"reference": f"Practitioner/{charted.cast.bob.pk}"}]}
    hr = served(batch, "Observation", f"v-{e.pk}-heart-rate")
    assert hr["meta"]["profile"] == [US_CORE + "us-core-heart-rate"]
    assert hr["meta"]["lastUpdated"] == local(e.recorded_at)
    assert without_meta(hr) == {
        **common, "id": f"v-{e.pk}-heart-rate",
        "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}],
                 "text": "Heart rate"},
        "valueQuantity": q(72, "/min"),
    }
    bp = served(batch, "Observation", f"v-{e.pk}-blood-pressure")
    assert bp["meta"]["profile"] == [US_CORE + "us-core-blood-pressure"]
    assert without_meta(bp) == {
        **common, "id": f"v-{e.pk}-blood-pressure",
        "code": {"coding": [{"system": LOINC, "code": "85354-9",
                             "display": "Blood pressure panel with all children optional"}],
                 "text": "Blood pressure"},
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6",
                                  "display": "Systolic blood pressure"}]},
             "valueQuantity": q(122, "mmHg", "mm[Hg]")},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4",
                                  "display": "Diastolic blood pressure"}]},
             "valueQuantity": q(78, "mmHg", "mm[Hg]")}],
    }
    spo2 = served(batch, "Observation", f"v-{e.pk}-spo2")
    assert spo2["meta"]["profile"] == [US_CORE + "us-core-pulse-oximetry"]
    assert spo2["code"]["coding"] == [
        {"system": LOINC, "code": "59408-5",
         "display": "Oxygen saturation in Arterial blood by Pulse oximetry"},
        {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}]
    assert spo2["valueQuantity"] == q(98, "%")
    rr = served(batch, "Observation", f"v-{e.pk}-respiratory-rate")
    assert rr["code"]["coding"][0]["code"] == "9279-1"
    temp = served(batch, "Observation", f"v-{e.pk}-temperature")
    assert temp["valueQuantity"] == q(36.8, "°C", "Cel")
    assert temp["code"]["coding"][0]["code"] == "8310-5"
    ids = {r["id"] for r in batch.resources("Observation")}
    during = charted.entries["vitals_during"]
    assert f"v-{e.pk}-temperature" in ids
    assert f"v-{during.pk}-temperature" not in ids  # not charted: not sent


def test_pain_sedation_dissociation_and_recovery_scores(charted: Charted,
                                                        batch: sources.Batch) -> None:
    pain_e = charted.entries["pain_pre"]
    pain = served(batch, "Observation", f"pain-{pain_e.pk}")
    assert pain["meta"]["profile"] == [US_CORE + "us-core-observation-screening-assessment"]
    assert without_meta(pain) == {
        "resourceType": "Observation", "id": f"pain-{pain_e.pk}", "status": "final",
        "category": SCORE_CATEGORIES,
        "code": {"coding": [{"system": LOINC, "code": "72514-3",
                             "display": "Pain severity, 0-10 numeric rating scale"}],
                 "text": "NRS: Pain severity, 0-10 numeric rating scale"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "encounter": {"reference": f"Encounter/{charted.session.pk}"},
        "effectiveDateTime": local(pain_e.occurred_at),
        "performer": [{"reference": f"Practitioner/{charted.cast.bob.pk}"}],
        "valueQuantity": q(7, "{score}"),
        "note": [{"text": "Phase: pre"}],
    }
    sed = served(batch, "Observation", f"sedation-{charted.entries['sedation'].pk}")
    assert sed["code"] == {
        "coding": [{"system": "urn:ketamine-clinic:code:scale", "code": "moaas",
                    "display": "Modified Observer's Assessment of Alertness/Sedation"}],
        "text": "MOAA/S: Modified Observer's Assessment of Alertness/Sedation"}
    assert sed["valueQuantity"] == q(4, "{score}")
    dis = served(batch, "Observation", f"dissociation-{charted.entries['dissociation'].pk}")
    assert dis["valueQuantity"] == q(5, "{score}")
    assert [(c["code"]["coding"][0]["code"], c["valueInteger"]) for c in dis["component"]] == [
        ("cadss6-item-1", 1), ("cadss6-item-2", 0), ("cadss6-item-6", 2),
        ("cadss6-item-7", 1), ("cadss6-item-15", 0), ("cadss6-item-22", 1)]
    rec = served(batch, "Observation", f"recovery-{charted.entries['recovery'].pk}")
    assert rec["code"]["coding"] == [{"system": "urn:ketamine-clinic:code:recovery-score",
                                      "code": "aldrete_modified_1995",
                                      "display": "Modified Aldrete score (1995)"}]
    assert rec["valueQuantity"] == q(10, "{score}")
    assert {c["code"]["coding"][0]["code"]: c["valueInteger"] for c in rec["component"]} == {
        "aldrete_modified_1995-activity": 2, "aldrete_modified_1995-respiration": 2,
        "aldrete_modified_1995-circulation": 2, "aldrete_modified_1995-consciousness": 2,
        "aldrete_modified_1995-oxygen_saturation": 2}


def test_the_verified_order_is_a_medication_request_with_text_and_structured_rates(
        charted: Charted, batch: sources.Batch) -> None:
    o = charted.order
    res = served(batch, "MedicationRequest", str(o.pk))
    assert res["meta"]["profile"] == [US_CORE + "us-core-medicationrequest"]
    ordered = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                           "code": "ordered", "display": "Ordered"}]}
    calculated = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                        "dose-rate-type",
                              "code": "calculated", "display": "Calculated"}]}
    first = {
        "sequence": 1,
        "text": "Ketamine IV infusion, bag 500 mg in 500 mL, starting at 60 mg/h, titrated "
                "by 10 mg/h no more often than every 15 min, to at most 100 mg/h, for 240 "
                "min per session; 5 sessions.",
        "timing": {"repeat": {"count": 5, "duration": 240, "durationUnit": "min"}},
        "route": IV,
        "doseAndRate": [
            {"type": ordered, "rateQuantity": q(60, "mg/h")},
            {"type": calculated, "rateQuantity": q(60, "mL/h")},
            {"type": ordered, "rateRange": {"low": q(60, "mg/h"), "high": q(100, "mg/h")}}],
        "maxDosePerPeriod": {"numerator": q(100, "mg"), "denominator": q(1, "h")},
    }
    assert without_meta({**res, "dosageInstruction": res["dosageInstruction"][:1]}) == {
        "resourceType": "MedicationRequest", "id": str(o.pk),
        "identifier": [{"system": "urn:ketamine-clinic:order", "value": str(o.pk)}],
        "status": "active", "intent": "order",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                            "medicationrequest-category",
                                  "code": "outpatient", "display": "Outpatient"}]}],
        "reportedBoolean": False,
        "medicationCodeableConcept": {
            "coding": [{"system": "urn:ketamine-clinic:code:drug", "code": "ketamine",
                        "display": "ketamine 50 MG/ML Injectable Solution"}],
            "text": "ketamine 50 MG/ML Injectable Solution"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "authoredOn": local(o.signed_at),
        "requester": {"reference": f"Practitioner/{charted.cast.alice.pk}"},
        "note": [{"text": f"Protocol clinic-standard v{o.protocol_version.version}"}],
        "dosageInstruction": [first],
    }
    steps = res["dosageInstruction"][1:]
    table = [row for row in o.computed["titration_table"] if row["step"] > 0]
    assert len(steps) == len(table) > 0
    assert steps[0]["doseAndRate"][0]["rateQuantity"] == q(70, "mg/h")
    assert steps[-1]["doseAndRate"][0]["rateQuantity"] == q(100, "mg/h")


def test_premedication_and_rescue_lines_are_requests_based_on_the_order(
        charted: Charted, batch: sources.Batch) -> None:
    o = charted.order
    pre = served(batch, "MedicationRequest", f"{o.pk}-premedication-0")
    assert pre["medicationCodeableConcept"] == {
        "coding": [{"system": RXNORM, "code": "238212",
                    "display": "glycopyrrolate 0.2 MG/ML Injectable Solution"}],
        "text": "glycopyrrolate 0.2 MG/ML Injectable Solution"}
    assert pre["basedOn"] == [{"reference": f"MedicationRequest/{o.pk}"}]
    assert pre["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == q(0.2, "mg")
    rescue = served(batch, "MedicationRequest", f"{o.pk}-rescue-1")
    assert rescue["medicationCodeableConcept"]["coding"] == [
        {"system": RXNORM, "code": "26225", "display": "ondansetron"}]
    assert rescue["dosageInstruction"][0]["asNeededCodeableConcept"] == {"text": "nausea"}


def test_each_constant_rate_segment_is_an_administration_with_rate_period_and_dose(
        charted: Charted, batch: sources.Batch) -> None:
    e, s = charted.entries, charted.session
    walk = charted.walk
    seg = served(batch, "MedicationAdministration", f"seg-{e['start'].pk}")
    assert without_meta(seg) == {
        "resourceType": "MedicationAdministration", "id": f"seg-{e['start'].pk}",
        "partOf": [{"reference": f"Procedure/{s.pk}"}],
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "urn:ketamine-clinic:code:drug", "code": "ketamine",
                        "display": "ketamine 50 MG/ML Injectable Solution"}],
            "text": "ketamine 50 MG/ML Injectable Solution"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "context": {"reference": f"Encounter/{s.pk}"},
        "effectivePeriod": {"start": local(walk.at(30)), "end": local(walk.at(60))},
        "performer": [{"actor": {"reference": f"Practitioner/{charted.cast.bob.pk}"}}],
        "request": {"reference": f"MedicationRequest/{charted.order.pk}"},
        "dosage": {"text": "60 mg/h (60 mL/h)", "route": IV, "dose": q(30, "mg"),
                   "rateQuantity": q(60, "mg/h")},
    }
    # 70 mg/h from minute 60 to the pause at 90, then from the resume at 100 to the stop
    # at 150: 35 mg and 58.33 mg (70 x 50/60), no segment while paused.
    second = served(batch, "MedicationAdministration", f"seg-{e['titrate'].pk}")
    assert second["effectivePeriod"] == {"start": local(walk.at(60)), "end": local(walk.at(90))}
    assert second["dosage"]["dose"] == q(35, "mg")
    third = served(batch, "MedicationAdministration", f"seg-{e['resume'].pk}")
    assert third["effectivePeriod"] == {"start": local(walk.at(100)),
                                        "end": local(walk.at(150))}
    assert third["dosage"]["dose"] == q(58.33, "mg")
    assert third["dosage"]["rateQuantity"] == q(70, "mg/h")
    segments = [r for r in batch.resources("MedicationAdministration")
                if r["id"].startswith("seg-")]
    assert len(segments) == 3


def test_premedication_and_rescue_doses_point_at_their_order_lines(
        charted: Charted, batch: sources.Batch) -> None:
    e, o = charted.entries, charted.order
    pre = served(batch, "MedicationAdministration", f"med-{e['premed'].pk}")
    assert without_meta(pre) == {
        "resourceType": "MedicationAdministration", "id": f"med-{e['premed'].pk}",
        "status": "completed", "category": {"text": "premedication"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "238212",
                        "display": "glycopyrrolate 0.2 MG/ML Injectable Solution"}],
            "text": "glycopyrrolate 0.2 MG/ML Injectable Solution"},
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "context": {"reference": f"Encounter/{charted.session.pk}"},
        "effectiveDateTime": local(charted.walk.at(20)),
        "performer": [{"actor": {"reference": f"Practitioner/{charted.cast.bob.pk}"}}],
        "request": {"reference": f"MedicationRequest/{o.pk}-premedication-0"},
        "dosage": {"text": "glycopyrrolate 0.2 mg IV", "route": IV, "dose": q(0.2, "mg")},
    }
    rescue = served(batch, "MedicationAdministration", f"med-{e['rescue'].pk}")
    assert rescue["request"] == {"reference": f"MedicationRequest/{o.pk}-rescue-1"}
    assert rescue["reasonCode"] == [{"text": "nausea"}]
    assert rescue["category"] == {"text": "rescue medication"}


def test_the_session_is_an_encounter_and_the_infusion_a_procedure(
        charted: Charted, batch: sources.Batch) -> None:
    s, walk, cast = charted.session, charted.walk, charted.cast
    enc = served(batch, "Encounter", str(s.pk))
    assert enc["meta"]["profile"] == [US_CORE + "us-core-encounter"]
    cpt = {"system": "http://www.ama-assn.org/go/cpt", "code": "96365",
           "display": "Intravenous infusion, for therapy, prophylaxis, or diagnosis; "
                      "initial, up to 1 hour"}
    assert without_meta(enc) == {
        "resourceType": "Encounter", "id": str(s.pk),
        "identifier": [{"system": "urn:ketamine-clinic:session", "value": str(s.pk)}],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                  "display": "ambulatory"},
        "type": [{"coding": [cpt], "text": "Ketamine infusion session"}],
        "subject": {"reference": f"Patient/{cast.ana.pk}"},
        "participant": [{"type": [{"coding": [{"system": "http://terminology.hl7.org/"
                                                         "CodeSystem/v3-ParticipationType",
                                               "code": "PPRF",
                                               "display": "primary performer"}]}],
                         "individual": {"reference": f"Practitioner/{cast.bob.pk}"}}],
        "period": {"start": local(walk.at(0)), "end": local(walk.at(215))},
        "hospitalization": {"dischargeDisposition": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
             "code": "home", "display": "Home"}]}},
        "location": [{"location": {"display": "Chair 3, Denver"}}],
        "serviceProvider": {"reference": f"Organization/{cast.denver.pk}"},
    }
    proc = served(batch, "Procedure", str(s.pk))
    assert without_meta(proc) == {
        "resourceType": "Procedure", "id": str(s.pk),
        "basedOn": [{"reference": f"MedicationRequest/{charted.order.pk}"}],
        "status": "completed",
        "code": {"coding": [cpt], "text": "Ketamine intravenous infusion"},
        "subject": {"reference": f"Patient/{cast.ana.pk}"},
        "encounter": {"reference": f"Encounter/{s.pk}"},
        "performedPeriod": {"start": local(walk.at(30)), "end": local(walk.at(150))},
        "performer": [{"actor": {"reference": f"Practitioner/{cast.bob.pk}"}}],
        "note": [{"text": "Ketamine infused: 123.33 mg"}],
    }


def test_consent_attaches_the_signed_document_text(charted: Charted) -> None:
    from ketamine_clinic.web.documents.models import ConsentDocument

    consent = charted.clinic.consent
    text = "# Consent\n\nI agree to a ketamine infusion series."
    ConsentDocument.objects.create(protocol_version=consent.protocol_version,
                                   sha256=consent.document_sha256, title="Consent v1",
                                   text=text, template_sha256="t" * 64)
    res = served(sources.Batch(sources.Scope((charted.cast.ana,))), "Consent", str(consent.pk))
    raw = text.encode()
    assert without_meta(res) == {
        "resourceType": "Consent", "id": str(consent.pk), "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "treatment", "display": "Treatment"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0",
                                  "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "dateTime": local(consent.signed_at),
        "performer": [{"reference": f"Patient/{charted.cast.ana.pk}"}],
        "organization": [{"reference": f"Organization/{charted.cast.denver.pk}"}],
        "sourceAttachment": {
            "contentType": "text/markdown; charset=utf-8", "language": "en",
            "data": base64.b64encode(raw).decode(),
            "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode(),
            "size": len(raw), "title": "Consent v1", "creation": local(consent.signed_at)},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "OPTIN", "display": "opt-in"}]},
        "provision": {"type": "permit", "period": {"start": local(consent.signed_at)}},
    }


def test_a_withdrawn_consent_is_inactive_and_its_provision_ends(charted: Charted) -> None:
    from django.utils import timezone

    from ketamine_clinic.web.documents.models import ConsentWithdrawal

    consent = charted.clinic.consent
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    ConsentWithdrawal.objects.create(consent=consent, reason="changed mind", withdrawn_at=at,
                                     recorded_by=charted.cast.bob)
    res = served(sources.Batch(sources.Scope((charted.cast.ana,))), "Consent", str(consent.pk))
    assert res["status"] == "inactive"
    assert res["provision"]["period"] == {"start": local(consent.signed_at), "end": local(at)}


def test_a_follow_up_answer_is_a_questionnaire_response(charted: Charted,
                                                        batch: sources.Batch) -> None:
    r = charted.response
    res = served(batch, "QuestionnaireResponse", str(r.pk))
    assert res["meta"]["profile"] == [US_CORE + "us-core-questionnaireresponse"]
    assert without_meta(res) == {
        "resourceType": "QuestionnaireResponse", "id": str(r.pk),
        "identifier": {"system": "urn:ketamine-clinic:questionnaire:response",
                       "value": str(r.pk)},
        "questionnaire": "urn:ketamine-clinic:questionnaire:follow-up",
        "status": "completed",
        "subject": {"reference": f"Patient/{charted.cast.ana.pk}"},
        "encounter": {"reference": f"Encounter/{charted.session.pk}"},
        "authored": local(r.answered_at),
        "author": {"reference": f"Practitioner/{charted.cast.carol.pk}"},
        "item": [
            {"linkId": "pain_average_nrs", "text": "Average pain over the past week (0-10)",
             "answer": [{"valueInteger": 3}]},
            {"linkId": "pain_worst_nrs", "text": "Worst pain over the past week (0-10)",
             "answer": [{"valueInteger": 5}]},
            {"linkId": "global_impression", "text": "Patient global impression of change",
             "answer": [{"valueInteger": 2}]}],
    }


def test_provenance_names_the_signer_and_the_second_checker_of_the_order(
        charted: Charted, batch: sources.Batch) -> None:
    o, cast = charted.order, charted.cast
    res = served(batch, "Provenance", f"MedicationRequest-{o.pk}")
    agent_type = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    assert without_meta(res) == {
        "resourceType": "Provenance", "id": f"MedicationRequest-{o.pk}",
        "target": [{"reference": f"MedicationRequest/{o.pk}"}],
        "recorded": local(o.signed_at),
        "agent": [
            {"type": {"coding": [{"system": agent_type, "code": "author",
                                  "display": "Author"}]},
             "who": {"reference": f"Practitioner/{cast.alice.pk}"},
             "onBehalfOf": {"reference": f"Organization/{cast.denver.pk}"}},
            {"type": {"coding": [{"system": agent_type, "code": "verifier",
                                  "display": "Verifier"}]},
             "who": {"reference": f"Practitioner/{cast.bob.pk}"},
             "onBehalfOf": {"reference": f"Organization/{cast.denver.pk}"}},
            {"type": {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/"
                                            "us-core-provenance-participant-type",
                                  "code": "transmitter", "display": "Transmitter"}]},
             "who": {"reference": f"Organization/{cast.denver.pk}"}}],
    }


def test_staff_and_sites_map_to_practitioner_and_organization(charted: Charted) -> None:
    cast = charted.cast
    cast.alice.last_name, cast.alice.title = "Alvarez", "MD"
    cast.alice.save()
    doc = json.loads(R.to_json(R.validated(R.practitioner_resource(cast.alice))))
    assert without_meta(doc) == {
        "resourceType": "Practitioner", "id": str(cast.alice.pk),
        "identifier": [{"system": "urn:ketamine-clinic:staff", "value": "alice"}],
        "active": True,
        "name": [{"family": "Alvarez", "given": ["Alice"], "suffix": ["MD"]}]}
    org = json.loads(R.to_json(R.validated(R.organization_resource(cast.denver))))
    assert without_meta(org) == {
        "resourceType": "Organization", "id": str(cast.denver.pk),
        "identifier": [{"system": "urn:ketamine-clinic:site", "value": "denver"}],
        "active": True, "name": "Denver"}


def test_an_audit_entry_maps_to_an_audit_event(charted: Charted) -> None:
    from ketamine_clinic.web.audit.models import AuditEntry
    from ketamine_clinic.web.audit.services import Actor, audit_record

    entry = audit_record(actor=Actor(user=charted.cast.bob, client_address="10.0.0.5",
                                     site_code="denver"),
                         action="patient.view", object_type="patient",
                         object_id=charted.cast.ana.pk)
    entry = AuditEntry.objects.get(pk=entry.pk)
    doc = json.loads(R.to_json(R.validated(R.audit_event_resource(entry))))
    assert doc["meta"]["profile"] == [
        "http://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"]
    assert without_meta(doc) == {
        "resourceType": "AuditEvent", "id": str(entry.pk),
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110",
                 "display": "Patient Record"},
        "subtype": [{"code": "patient.view", "display": "patient.view"}],
        "action": "R",
        "recorded": entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "outcome": "0",
        "agent": [{"type": {"text": "nurse"},
                   "who": {"reference": f"Practitioner/{charted.cast.bob.pk}",
                           "display": "bob"},
                   "requestor": True, "network": {"address": "10.0.0.5", "type": "2"}}],
        "source": {"site": "denver", "observer": {"display": "ketamine-clinic"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "security-source-type",
                             "code": "4", "display": "Application Server"}]},
        "entity": [{"what": {"reference": f"Patient/{charted.cast.ana.pk}"},
                    "type": {"code": "patient"},
                    "detail": [{"type": "chain", "valueString": f"entry {entry.pk} {entry.mac}"}]}],
    }


def test_served_json_is_the_models_json(charted: Charted, batch: sources.Batch) -> None:
    """What the server sends (validated, then encoded by msgspec) is exactly what the R4B
    model would serialise, for every resource of a fully charted record."""
    everything = [r for t in sources.PATIENT_TYPES for r in batch.resources(t)]
    everything += sources.practitioners([charted.cast.alice.pk, charted.cast.bob.pk])
    everything += sources.organizations([charted.cast.denver])
    everything.append(R.questionnaire_resource())
    assert len(everything) > 40
    for res in everything:
        assert json.loads(R.serve(res)) == json.loads(R.to_json(R.validated(res))), res["id"]


def test_a_resource_the_model_refuses_is_never_served(charted: Charted,
                                                      batch: sources.Batch) -> None:
    from pydantic import ValidationError

    broken = {**batch.resources("Encounter")[0]}
    del broken["status"]
    with pytest.raises(ValidationError):
        R.serve(broken)
