"""``/fhir/`` over HTTP: authentication, site isolation, search and paging, errors as
OperationOutcome, audit entries, the CapabilityStatement."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.fhir import search, sources
from tests.web.fhir.conftest import Charted, bearer, get, issue_token


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def assert_outcome(status: int, body: Any, expected_status: int, *words: str) -> None:
    assert status == expected_status, body
    assert body["resourceType"] == "OperationOutcome"
    text = " ".join(i.get("diagnostics", "") + " " + " ".join(i.get("expression", []))
                    for i in body["issue"])
    for w in words:
        assert w in text, text


# --------------------------------------------------------------------------- access


def test_metadata_is_public_and_lists_every_type_parameter_and_the_exports(
        client: Client, db: Any) -> None:
    status, body = get(client, "/fhir/metadata")
    assert status == 200
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    rest = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(rest) == set(sources.ALL_TYPES)
    for rtype, params in search.SEARCH.items():
        listed = {p["name"] for p in rest[rtype]["searchParam"]}
        assert listed == set(params), rtype
    assert rest["Patient"]["operation"][0]["name"] == "export"
    assert rest["Group"]["operation"][0]["name"] == "export"


def test_without_credentials_every_read_is_a_401_operation_outcome(charted: Charted,
                                                                   client: Client) -> None:
    response = client.get(f"/fhir/Patient/{charted.cast.ana.pk}")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/fhir+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["code"] == "login"


def test_a_fhir_read_token_reads_fhir_and_nothing_else(charted: Charted,
                                                       client: Client) -> None:
    raw = issue_token(charted.cast.bob)
    status, body = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert status == 200
    assert body["name"][0]["family"] == "Ruiz"
    api = client.get("/api/v1/patients", **{"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    assert api.status_code == 401


def test_a_json_api_token_may_also_read_fhir(charted: Charted, client: Client) -> None:
    raw = issue_token(charted.cast.bob, scope="api")
    status, _ = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert status == 200


@pytest.mark.parametrize("fields", [{"revoked_at": timezone.now()},
                                    {"expires_at": timezone.now() - timedelta(minutes=1)}])
def test_a_revoked_or_expired_token_authenticates_nothing(charted: Charted, client: Client,
                                                          fields: dict[str, Any]) -> None:
    raw = issue_token(charted.cast.bob, **fields)
    status, body = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert_outcome(status, body, 401, "revoked or expired")


def test_a_token_of_a_deactivated_user_authenticates_nothing(charted: Charted,
                                                             client: Client) -> None:
    raw = issue_token(charted.cast.bob)
    charted.cast.bob.is_active = False
    charted.cast.bob.save()
    status, body = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert_outcome(status, body, 401)


def test_a_token_that_has_not_expired_yet_works(charted: Charted, client: Client) -> None:
    raw = issue_token(charted.cast.bob, expires_at=timezone.now() + timedelta(hours=1))
    status, _ = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert status == 200


def test_another_sites_user_sees_nothing_of_ana_and_the_attempt_is_audited(
        charted: Charted, client: Client) -> None:
    oscar, ana = charted.cast.oscar, charted.cast.ana
    client.force_login(oscar)
    status, body = get(client, f"/fhir/Patient/{ana.pk}")
    assert_outcome(status, body, 404)
    status, body = get(client, f"/fhir/Encounter/{charted.session.pk}")
    assert_outcome(status, body, 404)
    assert AuditEntry.objects.filter(action="fhir.access_denied", object_type="Patient",
                                     object_id=str(ana.pk), username="oscar").exists()
    status, body = get(client, f"/fhir/Observation?patient={ana.pk}")
    assert status == 200
    assert body["total"] == 0
    status, body = get(client, "/fhir/Patient")
    assert ids(body) == [str(charted.cast.zed.pk)]
    token = issue_token(oscar)
    client.logout()
    status, body = get(client, f"/fhir/Condition?patient={ana.pk}", **bearer(token))
    assert status == 200
    assert body["total"] == 0


def test_the_audit_trail_is_for_auditors_only(charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.dave)  # clinic administrator
    status, body = get(client, "/fhir/AuditEvent")
    assert_outcome(status, body, 403, "auditors only")
    client.force_login(charted.cast.erin)
    get(client, f"/fhir/Patient/{charted.cast.ana.pk}")
    status, body = get(client, "/fhir/AuditEvent?action=fhir.read&_count=5")
    assert status == 200
    assert body["total"] >= 1
    event = body["entry"][0]["resource"]
    assert event["subtype"][0]["code"] == "fhir.read"
    status, one = get(client, f"/fhir/AuditEvent/{event['id']}")
    assert status == 200
    assert one["id"] == event["id"]


# --------------------------------------------------------------------------- reads, audit


def test_a_read_is_audited_with_the_patient_it_showed(charted: Charted,
                                                      client: Client) -> None:
    client.force_login(charted.cast.bob)
    rid = f"v-{charted.entries['vitals_pre'].pk}-heart-rate"
    status, body = get(client, f"/fhir/Observation/{rid}")
    assert status == 200
    assert body["valueQuantity"]["value"] == 72
    entry = AuditEntry.objects.filter(action="fhir.read").latest("id")
    assert (entry.username, entry.object_type, entry.object_id) == ("bob", "Observation", rid)
    assert entry.detail["patients"] == [charted.cast.ana.pk]
    assert entry.site_code == "denver"


def test_a_search_is_audited_with_every_patient_it_returned(charted: Charted,
                                                            client: Client) -> None:
    client.force_login(charted.cast.alice)  # Denver and Boulder
    status, body = get(client, f"/fhir/Condition?patient={charted.cast.ana.pk}")
    assert status == 200
    entry = AuditEntry.objects.filter(action="fhir.search").latest("id")
    assert entry.detail["patients"] == [charted.cast.ana.pk]
    assert entry.detail["matches"] == body["total"] == 1
    get(client, "/fhir/Patient")
    entry = AuditEntry.objects.filter(action="fhir.search").latest("id")
    assert sorted(entry.detail["patients"]) == sorted([charted.cast.ana.pk, charted.cast.zed.pk])


def test_every_type_reads_back_each_resource_its_search_returns(charted: Charted,
                                                               client: Client) -> None:
    client.force_login(charted.cast.bob)
    pid = charted.cast.ana.pk
    for rtype in sources.PATIENT_TYPES:
        query = f"_id={pid}" if rtype == "Patient" else f"patient={pid}"
        status, bundle = get(client, f"/fhir/{rtype}?{query}&_count=500")
        assert status == 200, (rtype, bundle)
        assert bundle["total"] >= 1, rtype
        for rid in ids(bundle):
            status, one = get(client, f"/fhir/{rtype}/{rid}")
            assert status == 200, (rtype, rid, one)
            assert one["id"] == rid


# --------------------------------------------------------------------------- search, paging


def test_paging_walks_every_observation_once_through_the_bundle_links(
        charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.bob)
    status, first = get(client, f"/fhir/Observation?patient={charted.cast.ana.pk}&_count=6")
    assert status == 200
    total = first["total"]
    assert total > 12
    seen, page, pages = [], first, 0
    while True:
        pages += 1
        assert len(page["entry"]) <= 6
        seen += ids(page)
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        url = urlsplit(links["next"])
        status, page = get(client, f"{url.path}?{url.query}")
        assert status == 200
    assert pages == -(-total // 6)
    assert len(seen) == len(set(seen)) == total
    assert "previous" in links
    assert "last" in links


@pytest.mark.parametrize(("query", "expected"), [
    ("code=http://loinc.org|8867-4", 3),
    ("code=8867-4,9279-1", 6),
    # 6 signs before (with temperature and end-tidal CO2) + 2 x 5 (with EtCO2), weight, height
    ("category=vital-signs", 18),
    # two pain scores, two MOAA/S, three CADSS-6, modified Aldrete, modified PADSS
    ("category=survey", 9),
    ("code=urn:ketamine-clinic:code:scale|moaas", 2),
])
def test_observation_search_by_code_and_category(charted: Charted, client: Client,
                                                 query: str, expected: int) -> None:
    client.force_login(charted.cast.bob)
    status, body = get(client, f"/fhir/Observation?patient={charted.cast.ana.pk}&{query}")
    assert status == 200
    assert body["total"] == expected, ids(body)


def test_date_search_uses_prefixes_and_ranges(charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.bob)
    walk, pid = charted.walk, charted.cast.ana.pk
    cut = walk.at(50).isoformat(timespec="seconds").replace("+00:00", "Z")
    _, after = get(client, f"/fhir/Observation?patient={pid}&code=8867-4&date=ge{cut}")
    _, before = get(client, f"/fhir/Observation?patient={pid}&code=8867-4&date=lt{cut}")
    assert (after["total"], before["total"]) == (1, 2)
    def local_day(minutes: float) -> str:
        return walk.at(minutes).astimezone(timezone.get_default_timezone()).date().isoformat()

    # An instant lies within its clinic day (eq); the encounter's period may cross midnight
    # there, so it is found by the days from its first to its last entry.
    day = local_day(5)
    _, on_day = get(client, f"/fhir/Observation?patient={pid}&code=8867-4&date={day}")
    assert on_day["total"] >= 1
    _, encounter = get(client, f"/fhir/Encounter?patient={pid}")
    period = encounter["entry"][0]["resource"]["period"]
    first, last = (datetime.fromisoformat(period[k].replace("Z", "+00:00"))
                   .astimezone(timezone.get_default_timezone()).date().isoformat()
                   for k in ("start", "end"))
    _, in_days = get(client, f"/fhir/Encounter?patient={pid}&date=ge{first}&date=le{last}")
    assert ids(in_days) == [str(charted.session.pk)]
    _, next_year = get(client, f"/fhir/Encounter?patient={pid}&date=ge{int(day[:4]) + 1}")
    assert next_year["total"] == 0


def test_last_updated_and_id_searches(charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.bob)
    pid = charted.cast.ana.pk
    future = (timezone.now() + timedelta(days=1)).date().isoformat()
    _, none = get(client, f"/fhir/Condition?patient={pid}&_lastUpdated=gt{future}")
    _, some = get(client, f"/fhir/Condition?patient={pid}&_lastUpdated=lt{future}")
    assert (none["total"], some["total"]) == (0, 1)
    seg = f"seg-{charted.entries['start'].pk}"
    _, by_id = get(client, f"/fhir/MedicationAdministration?_id={seg}")
    assert ids(by_id) == [seg]


def test_patient_search_by_name_birthdate_gender_and_identifier(charted: Charted,
                                                                client: Client) -> None:
    client.force_login(charted.cast.alice)
    ana, zed = charted.cast.ana, charted.cast.zed
    for query, expected in [("name=ru", [ana]), ("family=Okafor", [zed]),
                            ("gender=male", [zed]), ("birthdate=1970-05-01", [zed]),
                            ("birthdate=lt1971", [zed]),
                            ("identifier=urn:ketamine-clinic:mrn:denver|DEN-1", [ana]),
                            ("identifier=urn:ketamine-clinic:mrn:boulder|DEN-1", []),
                            ("identifier=BOU-1", [zed])]:
        status, body = get(client, f"/fhir/Patient?{query}")
        assert status == 200, body
        assert ids(body) == [str(p.pk) for p in expected], query


def test_medication_request_search_by_intent_and_status(charted: Charted,
                                                        client: Client) -> None:
    client.force_login(charted.cast.alice)
    pid = charted.cast.ana.pk
    _, active = get(client, f"/fhir/MedicationRequest?patient={pid}&intent=order&status=active")
    assert active["total"] == 4
    _, stopped = get(client, f"/fhir/MedicationRequest?patient={pid}&status=stopped")
    assert stopped["total"] == 0


def test_groups_are_the_users_sites_with_their_patients(charted: Charted,
                                                        client: Client) -> None:
    client.force_login(charted.cast.bob)
    status, body = get(client, f"/fhir/Group/{charted.cast.denver.pk}")
    assert status == 200
    assert body["member"] == [{"entity": {"reference": f"Patient/{charted.cast.ana.pk}"}}]
    status, body = get(client, f"/fhir/Group/{charted.cast.boulder.pk}")
    assert_outcome(status, body, 404)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("url", "status", "words"), [
    ("/fhir/Observation?patient={pid}&colour=blue", 400, ["colour"]),
    ("/fhir/Observation?patient={pid}&date=yesterday", 400, ["date", "not a FHIR date"]),
    ("/fhir/Observation?patient={pid}&_count=5000", 400, ["_count", "at most 500"]),
    ("/fhir/Observation?patient={pid}&_count=many", 400, ["_count", "whole number"]),
    ("/fhir/Observation?code=8867-4", 400, ["patient", "$export"]),
    ("/fhir/Observation?patient=ana", 400, ["patient", "not a patient id"]),
    ("/fhir/Patient?gender=woman", 400, ["gender"]),
    ("/fhir/Patient?hair=red", 400, ["hair"]),
    ("/fhir/Medication/1", 404, ["Medication"]),
    ("/fhir/Patient/999999", 404, ["999999"]),
    ("/fhir/Observation/v-999999-heart-rate", 404, []),
    ("/fhir/Patient/{pid}?_format=xml", 406, ["JSON only"]),
    ("/fhir/Patient/{pid}/_history", 404, ["not an interaction"]),
])
def test_every_error_is_an_operation_outcome_that_names_the_problem(
        charted: Charted, client: Client, url: str, status: int, words: list[str]) -> None:
    client.force_login(charted.cast.bob)
    got, body = get(client, url.format(pid=charted.cast.ana.pk))
    assert_outcome(got, body, status, *words)


def test_writes_are_refused_with_an_operation_outcome(charted: Charted, client: Client) -> None:
    raw = issue_token(charted.cast.bob)
    response = client.post("/fhir/Patient", data="{}", content_type="application/fhir+json",
                           HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"
    response = client.delete(f"/fhir/Patient/{charted.cast.ana.pk}",
                             HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 405


def test_the_cli_issues_an_expiring_fhir_read_token(charted: Charted, client: Client,
                                                    capsys: Any) -> None:
    from ketamine_clinic.cli import main
    from ketamine_clinic.web.accounts.models import ApiToken

    assert main(["fhir", "token", "--username", "bob", "--label", "registry", "--days",
                 "30"]) == 0
    raw = capsys.readouterr().out.splitlines()[0]
    token = ApiToken.objects.get(label="registry")
    assert token.scope == "fhir_read"
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    status, _ = get(client, f"/fhir/Patient/{charted.cast.ana.pk}", **bearer(raw))
    assert status == 200
    assert main(["fhir", "token", "--username", "nobody"]) == 2


def test_patient_search_pages_in_the_database(charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.alice)  # both sites: Ana and Zed
    status, first = get(client, "/fhir/Patient?_count=1")
    assert status == 200
    assert (first["total"], len(first["entry"])) == (2, 1)
    links = {link["relation"]: link["url"] for link in first["link"]}
    url = urlsplit(links["next"])
    _, second = get(client, f"{url.path}?{url.query}")
    assert ids(first) + ids(second) == [str(charted.cast.ana.pk), str(charted.cast.zed.pk)]
    assert "next" not in {link["relation"] for link in second["link"]}


def test_observations_of_one_encounter(charted: Charted, client: Client) -> None:
    client.force_login(charted.cast.bob)
    pid, sid = charted.cast.ana.pk, charted.session.pk
    _, body = get(client, f"/fhir/Observation?patient={pid}&encounter=Encounter/{sid}")
    _, everything = get(client, f"/fhir/Observation?patient={pid}&_count=500")
    assert body["total"] == everything["total"] - 2  # all but the registry's weight, height
