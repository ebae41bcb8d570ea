"""US Core 6.1.0: the required (min 1) and must-support elements of every profile the
server claims, checked on every resource of a fully charted record that claims it.

A must-support element is listed here when the app records the data for it (the test
record has that data, so the element must be there). US Core must-support elements the
app does not record are listed in docs/fhir.md (race, ethnicity, communication language,
NPI, ...) and are not sent.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ketamine_clinic.web.fhir import resources as R
from ketamine_clinic.web.fhir import sources
from ketamine_clinic.web.fhir.capability import supported_profiles
from tests.web.fhir.conftest import Charted

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
VITALS = ("status", "category", "code", "subject", "effectiveDateTime")

# profile -> (required paths, must-support paths). A path is dotted; lists are walked.
PROFILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "us-core-patient": (
        ("identifier", "identifier.system", "identifier.value", "name", "gender"),
        ("name.family", "name.given", "birthDate", "telecom.system", "telecom.value",
         "telecom.use", "address", "extension")),
    "us-core-condition-problems-health-concerns": (
        ("category", "code", "subject"),
        ("clinicalStatus", "verificationStatus", "onsetDateTime", "recordedDate",
         "extension")),
    "us-core-allergyintolerance": (
        ("code", "patient"),
        ("clinicalStatus", "verificationStatus", "reaction.manifestation",
         "reaction.severity")),
    "us-core-body-weight": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-body-height": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-heart-rate": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-respiratory-rate": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-body-temperature": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-pulse-oximetry": ((*VITALS, "valueQuantity.value", "valueQuantity.code"), ()),
    "us-core-blood-pressure": ((*VITALS, "component.code", "component.valueQuantity.value",
                                "component.valueQuantity.code"), ()),
    "us-core-observation-screening-assessment": (
        ("status", "category", "code", "subject"),
        ("effectiveDateTime", "performer", "valueQuantity")),
    "us-core-medicationrequest": (
        ("status", "intent", "medicationCodeableConcept", "subject", "requester",
         "authoredOn"),
        ("category", "reportedBoolean", "dosageInstruction.text",
         "dosageInstruction.route", "dosageInstruction.doseAndRate")),
    "us-core-encounter": (
        ("status", "class", "type", "subject"),
        ("identifier.system", "identifier.value", "participant.type",
         "participant.individual", "period", "hospitalization.dischargeDisposition",
         "location.location", "serviceProvider")),
    "us-core-procedure": (
        ("status", "code", "subject"),
        ("performedPeriod", "encounter", "basedOn")),
    "us-core-questionnaireresponse": (
        ("questionnaire", "status", "subject", "authored"),
        ("author", "item.linkId", "item.text", "item.answer")),
    "us-core-provenance": (
        ("target", "recorded", "agent", "agent.who"),
        ("agent.type", "agent.onBehalfOf")),
    "us-core-practitioner": (("identifier", "name", "name.family"), ()),
    "us-core-organization": (("active", "name"), ("identifier", "telecom", "address")),
}
# Fixed codes and UCUM units each vital-sign profile requires.
VITAL_CODES = {"us-core-body-weight": ("29463-7", {"kg", "g", "[lb_av]"}),
               "us-core-body-height": ("8302-2", {"cm", "[in_i]"}),
               "us-core-heart-rate": ("8867-4", {"/min"}),
               "us-core-respiratory-rate": ("9279-1", {"/min"}),
               "us-core-body-temperature": ("8310-5", {"Cel", "[degF]"}),
               "us-core-pulse-oximetry": ("59408-5", {"%"}),
               "us-core-blood-pressure": ("85354-9", {"mm[Hg]"})}


def present(value: Any, path: str) -> bool:
    head, _, rest = path.partition(".")
    if isinstance(value, list):
        return any(present(v, path) for v in value)
    if not isinstance(value, dict) or value.get(head) in (None, "", [], {}):
        return False
    return present(value[head], rest) if rest else True


def everywhere(value: Any, path: str) -> bool:
    """Like :func:`present`, but every element of every list on the way must have it."""
    head, _, rest = path.partition(".")
    if isinstance(value, list):
        return bool(value) and all(everywhere(v, path) for v in value)
    if not isinstance(value, dict) or value.get(head) in (None, "", [], {}):
        return False
    return everywhere(value[head], rest) if rest else True


@pytest.fixture
def served(charted: Charted) -> list[dict[str, Any]]:
    """Every resource of Ana's record as served, plus the staff and the site."""
    from ketamine_clinic.web.documents.models import ConsentDocument

    ana, cast = charted.cast.ana, charted.cast
    ana.phone, ana.email, ana.address = "303-555-0100", "ana@example.org", "1 Main St, Denver"
    ana.save()
    cast.denver.phone, cast.denver.address = "303-555-0199", "2 Clinic Way, Denver"
    cast.denver.save()
    ConsentDocument.objects.create(protocol_version=charted.clinic.consent.protocol_version,
                                   sha256=charted.clinic.consent.document_sha256,
                                   title="Consent", text="text", template_sha256="t" * 64)
    batch = sources.Batch(sources.Scope((ana,)))
    out = [r for t in sources.PATIENT_TYPES for r in batch.resources(t)]
    out += sources.practitioners([cast.alice.pk, cast.bob.pk])
    out += sources.organizations([cast.denver])
    return [json.loads(R.to_json(R.validated(r))) for r in out]


def claimed(resources: list[dict[str, Any]], profile: str) -> list[dict[str, Any]]:
    return [r for r in resources if US_CORE + profile in r.get("meta", {}).get("profile", [])]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_resource_claiming_a_profile_has_its_required_and_must_support_elements(
        served: list[dict[str, Any]], profile: str) -> None:
    resources = claimed(served, profile)
    assert resources, f"nothing in the record claims {profile}"
    required, must_support = PROFILES[profile]
    for res in resources:
        if res.get("status") == "entered-in-error":
            continue
        missing = [p for p in required if not everywhere(res, p)]
        assert not missing, f"{res['resourceType']}/{res['id']} lacks required {missing}"
        absent = [p for p in must_support if not present(res, p)]
        assert not absent, f"{res['resourceType']}/{res['id']} lacks must-support {absent}"


@pytest.mark.parametrize("profile", sorted(VITAL_CODES))
def test_vital_sign_profiles_carry_their_loinc_code_category_and_ucum_unit(
        served: list[dict[str, Any]], profile: str) -> None:
    code, units = VITAL_CODES[profile]
    for res in claimed(served, profile):
        assert code in [c["code"] for c in res["code"]["coding"]]
        assert {"vital-signs"} <= {c["code"] for cat in res["category"] for c in cat["coding"]}
        quantities = ([res["valueQuantity"]] if "valueQuantity" in res
                      else [c["valueQuantity"] for c in res["component"]])
        for qty in quantities:
            assert qty["system"] == "http://unitsofmeasure.org"
            assert qty["code"] in units


def test_blood_pressure_has_both_systolic_and_diastolic_components(
        served: list[dict[str, Any]]) -> None:
    for res in claimed(served, "us-core-blood-pressure"):
        codes = {c["code"]["coding"][0]["code"] for c in res["component"]}
        assert codes == {"8480-6", "8462-4"}


def test_pulse_oximetry_carries_the_arterial_saturation_companion_code(
        served: list[dict[str, Any]]) -> None:
    for res in claimed(served, "us-core-pulse-oximetry"):
        assert [c["code"] for c in res["code"]["coding"]] == ["59408-5", "2708-6"]


def test_every_profile_claimed_is_one_the_capability_statement_lists(
        served: list[dict[str, Any]]) -> None:
    for res in served:
        for profile in res.get("meta", {}).get("profile", []):
            assert profile in supported_profiles(res["resourceType"]), profile


def test_every_time_of_day_carries_a_zone_offset(served: list[dict[str, Any]]) -> None:
    with_time = re.compile(r"^\d{4}-\d{2}-\d{2}T")
    offset = re.compile(r"(Z|[+-]\d{2}:\d{2})$")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for v in value:
                walk(v, where)
        elif isinstance(value, str) and with_time.match(value):
            assert offset.search(value), f"{where} = {value} has no offset"

    for res in served:
        walk(res, res["resourceType"])


def test_no_code_in_the_mapping_is_a_literal_outside_the_reference_data() -> None:
    """LOINC, SNOMED CT, RxNorm, CPT and ICD-10-CM codes live in reference/fhir.toml (or the
    registry's catalogues): the mapping modules contain none."""
    from pathlib import Path

    import ketamine_clinic.web.fhir as area

    code_like = re.compile(r"[\"'](\d{4,5}-\d|\d{6,9}|G\d\d\.\d+|9636\d)[\"']")
    for path in Path(area.__file__).parent.glob("*.py"):
        found = code_like.findall(path.read_text())
        assert not found, f"{path.name} has code literals {found}"
