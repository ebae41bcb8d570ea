"""Bulk Data export, end to end through the real job worker: kick-off, poll, download,
every line parsed and validated, every reference resolved inside the export."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.fhir import exports, sources
from ketamine_clinic.web.fhir.models import ExportJob
from ketamine_clinic.web.fhir.resources import validated
from tests.web.fhir.conftest import Charted, bearer, get, issue_token

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Any) -> None:
    settings.DATA_DIR = tmp_path


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def kickoff(client: Client, url: str, **headers: str) -> str:
    response = client.get(url, **{f"HTTP_{k.upper().replace('-', '_')}": v
                                  for k, v in {**ASYNC, **headers}.items()})
    assert response.status_code == 202, response.content
    assert response.json()["resourceType"] == "OperationOutcome"
    return path_of(response["Content-Location"])


def download(client: Client, manifest: dict[str, Any], **headers: str) -> dict[str, list[Any]]:
    """Every file of the manifest: each line parsed and validated by the R4B model."""
    out: dict[str, list[Any]] = {}
    for item in manifest["output"]:
        response = client.get(path_of(item["url"]), **{
            f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        assert response.status_code == 200
        assert response["Content-Type"] == "application/fhir+ndjson"
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert len(lines) == item["count"]
        resources = [json.loads(line) for line in lines]
        for res in resources:
            assert res["resourceType"] == item["type"]
            validated(res)
        out[item["type"]] = resources
    return out


def references(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            found.append(value["reference"])
        for v in value.values():
            found += references(v)
    elif isinstance(value, list):
        for v in value:
            found += references(v)
    return found


def test_a_patient_export_round_trip(charted: Charted, client: Client, run_jobs: Any) -> None:
    bob, ana, zed = charted.cast.bob, charted.cast.ana, charted.cast.zed
    client.force_login(bob)
    status_url = kickoff(client, "/fhir/Patient/$export")
    queued = client.get(status_url)
    assert queued.status_code == 202
    assert queued["X-Progress"].startswith("queued")
    assert run_jobs() == 1
    status, manifest = get(client, status_url)
    assert status == 200
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/Patient/$export")
    types = {o["type"] for o in manifest["output"]}
    assert types == set(sources.EXPORT_TYPES)
    files = download(client, manifest)
    assert [p["id"] for p in files["Patient"]] == [str(ana.pk)]  # Denver only: not Zed
    everything = {f"{r['resourceType']}/{r['id']}" for rs in files.values() for r in rs}
    dangling = {ref for rs in files.values() for r in rs for ref in references(r)
                if ref not in everything}
    assert not dangling
    assert str(zed.pk) not in {r["subject"]["reference"].split("/")[1]
                               for r in files["Observation"]}
    # the same resources the API serves one by one
    batch = sources.Batch(sources.Scope((ana,)))
    for rtype in sources.PATIENT_TYPES:
        assert sorted(r["id"] for r in files[rtype]) == sorted(
            r["id"] for r in batch.resources(rtype)), rtype
    job = ExportJob.objects.get()
    for f in job.files.all():
        mode = stat.S_IMODE((exports.job_dir(job) / f.name).stat().st_mode)
        assert mode == 0o600
    actions = list(AuditEntry.objects.filter(object_type="fhir_export")
                   .values_list("action", flat=True))
    assert actions[:3] == ["fhir.export_requested", "fhir.export", "fhir.export_completed"]
    assert actions.count("fhir.export_download") == len(manifest["output"])
    read = AuditEntry.objects.get(action="fhir.export")
    assert read.detail["patients"] == [ana.pk]


def test_only_the_requester_may_poll_or_download(charted: Charted, client: Client,
                                                 run_jobs: Any) -> None:
    raw = issue_token(charted.cast.bob)
    status_url = kickoff(client, "/fhir/Patient/$export", **bearer(raw))
    run_jobs()
    status, manifest = get(client, status_url, **bearer(raw))
    assert status == 200
    file_url = path_of(manifest["output"][0]["url"])
    client.force_login(charted.cast.alice)  # same site, other person
    for url in (status_url, file_url):
        status, body = get(client, url)
        assert status == 404
        assert body["resourceType"] == "OperationOutcome"
    client.logout()
    status, body = get(client, file_url)
    assert status == 401
    download(client, manifest, **bearer(raw))


def test_a_group_export_holds_only_that_sites_patients(charted: Charted, client: Client,
                                                       run_jobs: Any) -> None:
    client.force_login(charted.cast.alice)  # Denver and Boulder
    status_url = kickoff(client, f"/fhir/Group/{charted.cast.boulder.pk}/$export"
                                 "?_type=Patient,Observation")
    run_jobs()
    status, manifest = get(client, status_url)
    assert status == 200
    files = download(client, manifest)
    assert set(files) == {"Patient", "Observation"}
    assert [p["id"] for p in files["Patient"]] == [str(charted.cast.zed.pk)]
    assert [o["valueQuantity"]["value"] for o in files["Observation"]] == [90]
    client.force_login(charted.cast.bob)  # Denver only
    response = client.get(f"/fhir/Group/{charted.cast.boulder.pk}/$export",
                          HTTP_PREFER="respond-async")
    assert response.status_code == 404


def test_since_leaves_out_what_has_not_changed(charted: Charted, client: Client,
                                               run_jobs: Any) -> None:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients

    client.force_login(charted.cast.bob)
    since = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    later = since + timedelta(seconds=1)
    weight = patients.measurement_record(actor=Actor(user=charted.cast.bob),
                                         patient=charted.cast.ana, kind="weight_kg",
                                         value_number=71, measured_at=timezone.now())
    type(weight).objects.filter(pk=weight.pk).update(recorded_at=later)
    stamp = since.isoformat().replace("+00:00", "Z")
    status_url = kickoff(client, f"/fhir/Patient/$export?_since={stamp}")
    run_jobs()
    _, manifest = get(client, status_url)
    files = download(client, manifest)
    assert [o["id"] for o in files["Observation"]] == [f"m-{weight.pk}"]
    assert "Patient" not in files
    assert "Encounter" not in files


@pytest.mark.parametrize(("query", "headers", "words"), [
    ("", {"Prefer": ""}, "respond-async"),
    ("?_type=Patient,Medication", {}, "Medication"),
    ("?_since=yesterday", {}, "_since"),
    ("?_since=2024-01-01T00:00:00", {}, "time zone"),
    ("?_outputFormat=text/csv", {}, "NDJSON"),
    ("?_typeFilter=Observation%3Fcode%3D8867-4", {}, "_typeFilter"),
])
def test_a_bad_kickoff_is_refused_with_an_operation_outcome(
        charted: Charted, client: Client, query: str, headers: dict[str, str],
        words: str) -> None:
    client.force_login(charted.cast.bob)
    hdrs = {**ASYNC, **headers}
    response = client.get(f"/fhir/Patient/$export{query}",
                          **{f"HTTP_{k.upper()}": v for k, v in hdrs.items()})
    assert response.status_code == 400
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert words in body["issue"][0]["diagnostics"] + " ".join(
        body["issue"][0].get("expression", []))
    assert not ExportJob.objects.exists()


def test_files_expire_and_are_deleted_by_the_deferred_job(charted: Charted, client: Client,
                                                          run_jobs: Any) -> None:
    client.force_login(charted.cast.bob)
    status_url = kickoff(client, "/fhir/Patient/$export?_type=Patient")
    assert run_jobs() == 1  # the expiry job waits for its time
    job = ExportJob.objects.get()
    _, manifest = get(client, status_url)
    file_url = path_of(manifest["output"][0]["url"])
    assert (exports.job_dir(job) / "Patient.ndjson").exists()
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    status, body = get(client, file_url)
    assert status == 410
    assert "expired" in body["issue"][0]["diagnostics"]
    DBTaskResult.objects.filter(status="READY").update(
        run_after=timezone.now() - timedelta(seconds=1))
    assert run_jobs() == 1
    job.refresh_from_db()
    assert job.status == ExportJob.Status.EXPIRED
    assert not exports.job_dir(job).exists()
    status, _ = get(client, status_url)
    assert status == 410


def test_a_cancelled_export_is_gone(charted: Charted, client: Client, run_jobs: Any) -> None:
    raw = issue_token(charted.cast.bob)
    status_url = kickoff(client, "/fhir/Patient/$export", **bearer(raw))
    response = client.delete(status_url, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 202
    run_jobs()
    job = ExportJob.objects.get()
    assert job.status == ExportJob.Status.CANCELLED
    assert not exports.job_dir(job).exists()
    status, body = get(client, status_url, **bearer(raw))
    assert status == 404
    assert body["resourceType"] == "OperationOutcome"


def test_a_session_cookie_cannot_cancel_without_the_csrf_token(charted: Charted,
                                                               run_jobs: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(charted.cast.bob)
    status_url = kickoff(client, "/fhir/Patient/$export")
    response = client.delete(status_url)
    assert response.status_code == 403
    assert ExportJob.objects.get().status == ExportJob.Status.QUEUED


def test_running_the_job_twice_does_the_work_once(charted: Charted, client: Client,
                                                  run_jobs: Any) -> None:
    client.force_login(charted.cast.bob)
    kickoff(client, "/fhir/Patient/$export?_type=Patient")
    run_jobs()
    job = ExportJob.objects.get()
    assert exports.export_run(str(job.pk)) == ExportJob.Status.COMPLETED
    assert job.files.count() == 1
    assert AuditEntry.objects.filter(action="fhir.export").count() == 1
