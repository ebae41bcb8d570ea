"""The CapabilityStatement: exactly what ``/fhir/`` supports, built from the same tables
the views use (search parameters, types, profiles), so it cannot drift from them."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.fhir import search, sources
from ketamine_clinic.web.fhir import terminology as T

PROFILES = {
    "Patient": ["patient"], "Condition": ["condition"], "AllergyIntolerance": ["allergy"],
    "MedicationRequest": ["medication_request"], "Encounter": ["encounter"],
    "Procedure": ["procedure"], "QuestionnaireResponse": ["questionnaire_response"],
    "Provenance": ["provenance"], "Practitioner": ["practitioner"],
    "Organization": ["organization"], "AuditEvent": ["audit_event"],
}
SEARCH_TYPES = {"date": "date", "token": "token", "reference": "reference", "string": "string"}
PATIENT_PARAM_TYPES = {"_id": "token", "_lastUpdated": "date", "identifier": "token",
                       "name": "string", "family": "string", "given": "string",
                       "birthdate": "date", "gender": "token"}
AUDIT_PARAM_TYPES = {"_id": "token", "date": "date", "patient": "reference",
                     "action": "token", "agent": "reference"}


def observation_profiles() -> list[str]:
    names = [v["profile"] for v in T.section("vital").values() if v.get("profile")]
    names += [m["profile"] for m in T.section("measurement").values()]
    names.append(T.section("score")["profile"])
    return [T.profile(n) for n in dict.fromkeys(names)]


def supported_profiles(resource_type: str) -> list[str]:
    if resource_type == "Observation":
        return observation_profiles()
    return [T.profile(T.section(s)["profile"]) for s in PROFILES.get(resource_type, [])]


def _params(resource_type: str) -> list[dict[str, str]]:
    if resource_type == "Patient":
        table = PATIENT_PARAM_TYPES
    elif resource_type == "AuditEvent":
        table = AUDIT_PARAM_TYPES
    elif resource_type in search.SEARCH:
        table = {p.name: p.kind for p in search.SEARCH[resource_type].values()}
    else:
        table = {"_id": "token"}
    return [{"name": name, "type": SEARCH_TYPES[kind]} for name, kind in table.items()]


def capability_statement(base_url: str) -> dict[str, Any]:
    fhir = T.section("fhir")
    rest_resources = []
    for rtype in sources.ALL_TYPES:
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": _params(rtype),
        }
        profiles = supported_profiles(rtype)
        if profiles:
            entry["supportedProfile"] = profiles
        if rtype == "AuditEvent":
            entry["documentation"] = "Auditors only: the hash-chained audit trail."
        if rtype == "Patient":
            entry["operation"] = [{"name": "export", "definition":
                                   "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
                                   "patient-export"}]
        if rtype == "Group":
            entry["operation"] = [{"name": "export", "definition":
                                   "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
                                   "group-export"}]
            entry["documentation"] = "One Group per clinic site: its patients."
        rest_resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "ketamine-clinic",
        "status": "active", "date": fhir["capability_date"], "kind": "instance",
        "publisher": "ketamine-clinic",
        "software": {"name": "ketamine-clinic"},
        "implementation": {"description": "Read-only FHIR R4 API of the clinic",
                           "url": base_url},
        "fhirVersion": fhir["version"],
        "format": ["application/fhir+json"],
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "implementationGuide": [
            f"http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core|"
            f"{fhir['us_core_version']}"],
        "rest": [{
            "mode": "server",
            "documentation": "Read and search only. Searches of patient data need patient= "
                             "(or _id=); paging with _count (at most 500) and the Bundle's "
                             "links. Unknown parameters are refused. Every error is an "
                             "OperationOutcome.",
            "security": {
                "cors": False,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "OAuth"}], "text": "Bearer tokens (scope fhir_read or api) "
                                               "or a logged-in session"}],
                "description": "A token or user sees only its sites' patients.",
            },
            "resource": rest_resources,
        }],
    }
