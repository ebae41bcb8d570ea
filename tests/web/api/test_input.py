"""Issue 13, findings 9 and 10: inputs that used to answer 500, be stored as they came, or
be silently coerced are refused with a 4xx naming the field, the same on SQLite and
PostgreSQL, and nothing is stored or changed."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.test import Client

from ketamine_clinic.web.accounts.models import ApiToken


def call(client: Client, user: Any, method: str, path: str, body: Any = None,
         raw: str | None = None) -> Any:
    _, token = ApiToken.issue(user)
    kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if body is not None or raw is not None:
        kwargs.update(data=raw if raw is not None else json.dumps(body),
                      content_type="application/json")
    return getattr(client, method)(f"/api/v1{path}", **kwargs)


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("query", ["offset=-1", "limit=0", "limit=100000",
                                   "offset=99999999999999999999", "q=a%00b"])
@pytest.mark.parametrize("path", ["/patients", "/orders"])
def test_list_paging_out_of_bounds_is_refused_naming_it(cast: Any, client: Client,
                                                        path: str, query: str) -> None:
    if path == "/orders" and query.startswith("q="):
        query = "status=a%00b"
    response = call(client, cast.alice, "get", f"{path}?{query}")
    assert response.status_code == 422, response.content
    assert fields(response)[0] == query.split("=")[0]


NEW = {"site": "denver", "mrn": "DEN-9", "given_name": "Ida", "family_name": "Moss",
       "date_of_birth": "1980-02-03", "sex_at_birth": "female"}


@pytest.mark.parametrize(("change", "field"), [
    ({"given_name": "Ida\u0000"}, "given_name"),
    ({"address": "x" * 301}, "address"),          # longer than its column
    ({"phone": "5" * 41}, "phone"),
    ({"date_of_birth": 0}, "date_of_birth"),       # an epoch is not a date
    ({"date_of_birth": "0"}, "date_of_birth"),
    ({"date_of_birth": "19800203"}, "date_of_birth"),
    ({"mrn": 12345}, "mrn"),
    ({"given_name": None}, "given_name"),
])
def test_a_bad_patient_field_is_refused_and_nothing_is_stored(
    cast: Any, client: Client, change: dict[str, Any], field: str
) -> None:
    from ketamine_clinic.web.patients.models import Patient

    before = Patient.objects.count()
    response = call(client, cast.carol, "post", "/patients", {**NEW, **change})
    assert response.status_code in (400, 422), response.content
    assert field in fields(response)[0]
    assert Patient.objects.count() == before


def test_the_valid_patient_is_stored(cast: Any, client: Client) -> None:
    response = call(client, cast.carol, "post", "/patients", NEW)
    assert response.status_code == 201, response.content


def test_an_epoch_does_not_change_a_birth_date(cast: Any, client: Client) -> None:
    born = cast.ana.date_of_birth
    for value in (0, "0", 1_700_000_000):
        response = call(client, cast.alice, "patch", f"/patients/{cast.ana.pk}",
                        {"reason": "typo", "date_of_birth": value})
        assert response.status_code == 422, response.content
        assert fields(response) == ["date_of_birth"]
    cast.ana.refresh_from_db()
    assert cast.ana.date_of_birth == born != date(1970, 1, 1)


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "weight_kg", "value_number": "1e400",
      "measured_at": "2026-11-25T09:30:00Z"}, "value_number"),
    ({"kind": "weight_kg", "value_number": 70, "measured_at": 1_764_000_000}, "measured_at"),
    ({"kind": "weight_kg", "value_number": 70, "measured_at": "1764000000"}, "measured_at"),
])
def test_a_measurement_beyond_what_can_be_stored_is_refused(
    cast: Any, client: Client, body: dict[str, Any], field: str
) -> None:
    before = cast.ana.measurements.count()
    response = call(client, cast.bob, "post", f"/patients/{cast.ana.pk}/measurements", body)
    assert response.status_code in (400, 422), response.content
    assert fields(response)[0] == field
    assert cast.ana.measurements.count() == before


@pytest.mark.parametrize("raw", ["[null, null]", "null", "[]", '"x"', "1e400",
                                 '{"a": NaN}', '{"medications_complete": "yes"}'])
def test_a_screening_body_that_is_not_an_object_of_answers_is_refused(
    cast: Any, client: Client, raw: str
) -> None:
    from ketamine_clinic.web.protocols.models import Screening

    response = call(client, cast.bob, "post", f"/patients/{cast.ana.pk}/screenings",
                    raw=raw)
    assert 400 <= response.status_code < 500, response.content
    assert Screening.objects.count() == 0


def test_an_id_beyond_64_bits_is_refused_not_a_server_error(cast: Any,
                                                           client: Client) -> None:
    response = call(client, cast.alice, "get", "/patients/99999999999999999999")
    assert response.status_code == 422
    assert fields(response) == ["patient_id"]


def test_a_rate_beyond_any_number_is_refused(cast: Any, client: Client) -> None:
    from ketamine_clinic.web.protocols.services import protocol_sync_shipped

    protocol_sync_shipped()
    response = call(client, cast.bob, "post", "/dose-check", {
        "protocol": "clinic-standard", "weight_kg": "70", "rate": "1e999 mg/h",
        "bag": "500 mg in 500 mL"})
    assert response.status_code == 400
    assert fields(response) == ["rate"]
