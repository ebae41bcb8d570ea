"""The protocols API: protocol versions with sourced rows, publishing, screening in the
command line's JSON shape, overrides and a patient's screenings."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from ketamine_clinic.clinical.protocol import load_protocol_text
from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening

from .conftest import answers_all_absent, renamed_text


def call(client: Client, user: Any, method: str, path: str, body: Any = None) -> Any:
    _, raw = ApiToken.issue(user)
    kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(f"/api/v1{path}", **kwargs)


def test_a_version_comes_with_every_row_and_its_source(client: Client, cast: Any,
                                                       standard: Any) -> None:
    data = call(client, cast.carol, "get", "/protocols/clinic-standard/versions/2").json()
    protocol = load_protocol_text(standard.toml_text, "t")
    assert data["sha256"] == standard.sha256
    assert data["status"] == "active"
    rows = {r["path"]: r for r in data["rows"]}
    assert len(rows) == len(protocol.rows)
    assert rows["dosing.start_rate"] == {"path": "dosing.start_rate", "value": 60,
                                         "unit": "mg/h", "source": "clinic-page",
                                         "note": rows["dosing.start_rate"]["note"]}
    listing = call(client, cast.carol, "get", "/protocols").json()
    assert "clinic-standard" in {p["name"] for p in listing}


def test_publishing_through_the_api_names_the_key_of_an_error(client: Client, cast: Any,
                                                             standard: Any) -> None:
    bad = renamed_text(standard, version=3, replace={
        r'^max_rate = \{ value = 100, unit = "mg/h",': 'max_rate = { value = 100, unit = "mg",'})
    response = call(client, cast.dave, "post", "/protocols",
                    {"toml_text": bad, "change_note": "typo"})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "upload:dosing.max_rate.unit"
    good = call(client, cast.dave, "post", "/protocols",
                {"toml_text": renamed_text(standard, version=3), "change_note": "same"})
    assert good.status_code == 201
    assert good.json()["published_by"] == "dave"
    diff = call(client, cast.erin, "get", "/protocols/clinic-standard/diff?old=2&new=3").json()
    assert [d["path"] for d in diff] == ["version"]


def test_screening_through_the_api_returns_the_command_line_shape(client: Client, cast: Any,
                                                                  ana_ready: Any,
                                                                  standard: Any) -> None:
    answers = answers_all_absent()
    answers.pop("medications_complete")
    response = call(client, cast.bob, "post", f"/patients/{ana_ready.pk}/screenings",
                    {"protocol": "clinic-standard", "medications_complete": True, **answers})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["decision"] == "eligible-with-conditions"
    assert data["protocol"]["name"] == "clinic-standard"
    assert data["protocol"]["version"] == 2
    assert set(data["reasons"][0]) >= {"rule", "severity", "message", "source"}
    s = Screening.objects.get(pk=data["screening_id"])
    assert s.facts_sha256 == data["facts_sha256"]
    assert data["current"] is True
    listed = call(client, cast.erin, "get", f"/patients/{ana_ready.pk}/screenings").json()
    assert [x["screening_id"] for x in listed] == [s.pk]


def test_an_unknown_condition_id_is_refused_naming_the_field(client: Client, cast: Any,
                                                             ana_ready: Any,
                                                             standard: Any) -> None:
    response = call(client, cast.bob, "post", f"/patients/{ana_ready.pk}/screenings",
                    {"conditions": ["dragon_pox"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "conditions[0]"
    assert not Screening.objects.exists()


def test_an_override_through_the_api_changes_the_effective_decision(
        client: Client, cast: Any, ana_ready: Any, standard: Any) -> None:
    created = call(client, cast.bob, "post", f"/patients/{ana_ready.pk}/screenings",
                   {"protocol_version_id": standard.pk,
                    "conditions_absent": answers_all_absent()["conditions_absent"],
                    "budapest": answers_all_absent()["budapest"]}).json()
    assert created["decision"] == created["effective_decision"] == "needs-physician-review"
    path = f"/screenings/{created['screening_id']}/overrides"
    refused = call(client, cast.alice, "post", path,
                   {"rule": "lft_repeated_infusions", "justification": "no"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "rule"
    done = call(client, cast.alice, "post", path,
                {"rule": "interactions", "justification": "list confirmed with pharmacy"})
    assert done.status_code == 201
    data = done.json()
    assert data["decision"] == "needs-physician-review"
    assert data["effective_decision"] == "eligible-with-conditions"
    assert data["overrides"][0]["physician"] == "alice"
    assert ProtocolVersion.objects.filter(name="clinic-standard").count() == 2
