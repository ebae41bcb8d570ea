"""The JSON API: token authentication, role and site rules, errors that name fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.audit.models import AuditEntry


class Api:
    def __init__(self, client: Client, user: Any) -> None:
        self.client = client
        _, self.raw = ApiToken.issue(user)

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"}
        if body is not None:
            kwargs.update(data=json.dumps(body) if not isinstance(body, str) else body,
                          content_type="application/json")
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)


@pytest.fixture
def api(client: Client) -> Any:
    return lambda user: Api(client, user)


NEW_PATIENT = {"site": "denver", "mrn": "DEN-API", "given_name": "Ivo",
               "family_name": "Brandt", "date_of_birth": "1979-02-03", "sex_at_birth": "male"}


def endpoints(cast: Any) -> list[tuple[str, str, Any, frozenset[str]]]:
    p = cast.ana.pk
    everyone = frozenset({"physician", "nurse", "front_desk", "clinic_admin", "auditor"})
    return [
        ("get", "/patients", None, everyone),
        ("post", "/patients", NEW_PATIENT,
         frozenset({"physician", "nurse", "front_desk", "clinic_admin"})),
        ("get", f"/patients/{p}", None, everyone),
        ("patch", f"/patients/{p}", {"phone": "555-0000", "reason": "new number"},
         frozenset({"physician", "nurse", "front_desk", "clinic_admin"})),
        ("get", f"/patients/{p}/diagnoses", None, everyone),
        ("post", f"/patients/{p}/diagnoses", {"code": "G90.521", "diagnosed_on": "2023-05-01"},
         frozenset({"physician"})),
        ("get", f"/patients/{p}/measurements", None, everyone),
        ("post", f"/patients/{p}/measurements",
         {"kind": "weight_kg", "value_number": 68.2, "measured_at": "2026-01-10T09:00:00Z"},
         frozenset({"physician", "nurse"})),
    ]


@pytest.mark.parametrize("role", ["physician", "nurse", "front_desk", "clinic_admin", "auditor"])
def test_every_endpoint_answers_each_role_as_the_role_table_says(cast: Any, api: Any,
                                                                 role: str) -> None:
    call = api(cast.by_role()[role])
    for method, path, body, allowed in endpoints(cast):
        response = call(method, path, body)
        expected = {200, 201} if role in allowed else {403}
        assert response.status_code in expected, (method, path, response.content)


def test_a_user_of_another_site_gets_not_found_and_an_audit_entry(cast: Any, api: Any) -> None:
    call = api(cast.oscar)
    for method, path, body, allowed in endpoints(cast):
        if "/patients/" not in path or "nurse" not in allowed:
            continue
        before = AuditEntry.objects.filter(action="patient.access_denied").count()
        assert call(method, path, body).status_code == 404
        assert AuditEntry.objects.filter(action="patient.access_denied").count() == before + 1


def test_calls_without_a_valid_token_are_refused(cast: Any, client: Client) -> None:
    assert client.get("/api/v1/patients").status_code == 401
    response = client.get("/api/v1/patients", HTTP_AUTHORIZATION="Bearer kc_not-a-token")
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "Authorization"


def test_a_revoked_token_no_longer_works(cast: Any, api: Any) -> None:
    from django.utils import timezone

    call = api(cast.bob)
    assert call("get", "/patients").status_code == 200
    ApiToken.objects.filter(user=cast.bob).update(revoked_at=timezone.now())
    assert call("get", "/patients").status_code == 401


def test_api_reads_and_writes_are_audited(cast: Any, api: Any) -> None:
    call = api(cast.bob)
    call("get", f"/patients/{cast.ana.pk}")
    call("post", f"/patients/{cast.ana.pk}/measurements",
         {"kind": "height_cm", "value_number": 170, "measured_at": "2026-01-10T09:00:00Z"})
    actions = set(AuditEntry.objects.filter(username="bob").values_list("action", flat=True))
    assert {"api.patient.view", "measurement.record"} <= actions


@pytest.mark.parametrize(("body", "field"), [
    ({**NEW_PATIENT, "date_of_birth": "1979-02-30"}, "date_of_birth"),
    ({**NEW_PATIENT, "sex_at_birth": "robot"}, "sex_at_birth"),
    ({k: v for k, v in NEW_PATIENT.items() if k != "mrn"}, "mrn"),
    ({**NEW_PATIENT, "date_of_birth": "2999-01-01"}, "date_of_birth"),
    ({**NEW_PATIENT, "mrn": "DEN-1"}, "mrn"),
    ({**NEW_PATIENT, "site": "boulder"}, "site"),
])
def test_bad_patient_bodies_name_the_field_and_store_nothing(cast: Any, api: Any, body: Any,
                                                             field: str) -> None:
    from ketamine_clinic.web.patients.models import Patient

    before = Patient.objects.count()
    response = api(cast.carol)("post", "/patients", body)
    assert response.status_code in (400, 422)
    assert field in {e["field"] for e in response.json()["errors"]}
    assert Patient.objects.count() == before


def test_a_malformed_json_body_is_a_clear_error(cast: Any, api: Any) -> None:
    response = api(cast.carol)("post", "/patients", "{not json")
    assert response.status_code in (400, 422)
    assert response.json()["errors"]


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "weight_kg", "value_number": 900, "measured_at": "2026-01-10T09:00:00Z"},
     "value_number"),
    ({"kind": "weight_kg", "value_number": "heavy", "measured_at": "2026-01-10T09:00:00Z"},
     "value_number"),
    ({"kind": "mood", "value_number": 1, "measured_at": "2026-01-10T09:00:00Z"}, "kind"),
    ({"kind": "weight_kg", "value_number": 70, "measured_at": "2026-01-10T09:00:00"},
     "measured_at"),
])
def test_bad_measurements_name_the_field(cast: Any, api: Any, body: Any, field: str) -> None:
    response = api(cast.bob)("post", f"/patients/{cast.ana.pk}/measurements", body)
    assert response.status_code in (400, 422)
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not cast.ana.measurements.exists()


def test_an_unknown_diagnosis_code_names_the_code_field(cast: Any, api: Any) -> None:
    response = api(cast.alice)("post", f"/patients/{cast.ana.pk}/diagnoses",
                               {"code": "X99.9", "diagnosed_on": "2023-01-01"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "code", "message": "'X99.9' is not a known icd10cm diagnosis code"}]


def test_marking_a_measurement_in_error_keeps_it_in_the_list(cast: Any, api: Any) -> None:
    call = api(cast.bob)
    created = call("post", f"/patients/{cast.ana.pk}/measurements",
                   {"kind": "weight_kg", "value_number": 70,
                    "measured_at": "2026-01-10T09:00:00Z"}).json()
    r = call("post", f"/patients/{cast.ana.pk}/measurements/{created['id']}/entered-in-error",
             {"reason": "scale not zeroed"})
    assert r.status_code == 200
    assert r.json()["entered_in_error"] is True
    listed = call("get", f"/patients/{cast.ana.pk}/measurements").json()
    assert [m["entered_in_error_reason"] for m in listed] == ["scale not zeroed"]


def test_the_openapi_document_is_served(client: Client, cast: Any) -> None:
    client.force_login(cast.bob)  # behind log-in (issue 13, finding 14; test_headers.py)
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/patients/{patient_id}/measurements" in doc["paths"]


def _untyped(schema: dict[str, Any] | None, components: dict[str, Any]) -> bool:
    """Whether an answer's schema leaves its shape open: missing, or an object without
    properties (a bare dict), directly, as a list's rows, or as a component it names."""
    if not schema:
        return True
    if "$ref" in schema:
        return _untyped(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "oneOf" in schema or "anyOf" in schema:
        return any(_untyped(s, components) for s in schema.get("oneOf", schema.get("anyOf")))
    if schema.get("type") == "array":
        return _untyped(schema.get("items"), components)
    return schema.get("type") == "object" and not schema.get("properties")


def test_every_endpoint_answers_through_a_described_schema(client: Client, cast: Any) -> None:
    client.force_login(cast.bob)
    doc = client.get("/api/v1/openapi.json").json()
    components = doc["components"]["schemas"]
    untyped, operations = [], 0
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            operations += 1
            ok = {code: r for code, r in op["responses"].items() if str(code).startswith("2")}
            if not ok:
                untyped.append(f"{method.upper()} {path}: no success answer described")
            for code, r in ok.items():
                schema = r.get("content", {}).get("application/json", {}).get("schema")
                if _untyped(schema, components):
                    untyped.append(f"{method.upper()} {path} {code}: {schema}")
    assert operations > 60  # the whole API, not a part of it
    assert untyped == []


def test_the_patient_list_pages_with_items_and_a_count(cast: Any, api: Any) -> None:
    call = api(cast.alice)
    whole = call("get", "/patients?limit=200").json()
    assert whole["count"] == len(whole["items"]) >= 2
    ids = [p["id"] for p in whole["items"]]
    page = call("get", "/patients?limit=1&offset=1").json()
    assert page["count"] == whole["count"]
    assert [p["id"] for p in page["items"]] == ids[1:2]
    assert {"id", "site", "mrn"} <= set(page["items"][0])
    assert isinstance(page["items"][0]["site"], str)
