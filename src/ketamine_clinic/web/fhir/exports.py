"""Bulk Data export: kick-off, the background run, status, files, cancel and expiry.

The run reads patients in batches (:class:`sources.Batch`), maps and validates every
resource, and appends it to its type's NDJSON file under ``DATA_DIR/fhir-exports/<job>/``
(owner-only permissions). It holds no database transaction while it works, so the clinic
keeps writing; ``transactionTime`` is when the run began, and ``_since`` compares with
each resource's ``meta.lastUpdated``. Every batch of patients read is one audit entry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.fhir import resources as R
from ketamine_clinic.web.fhir import sources
from ketamine_clinic.web.fhir.auth import Caller
from ketamine_clinic.web.fhir.models import ExportFile, ExportJob
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patients_visible_to

BATCH_PATIENTS = 200
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")


def export_root() -> Path:
    return Path(settings.DATA_DIR) / "fhir-exports"


def job_dir(job: ExportJob) -> Path:
    return export_root() / str(job.pk)


def expiry_hours() -> int:
    return int(getattr(settings, "FHIR_EXPORT_HOURS", 24))


@dataclass(frozen=True)
class ExportRequest:
    level: str  # patient | group
    site: Site | None
    types: tuple[str, ...]
    since: datetime | None


def parse_types(raw: str) -> tuple[str, ...]:
    if not raw.strip():
        return sources.EXPORT_TYPES
    names = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in names if t not in sources.EXPORT_TYPES]
    if unknown:
        raise UsageError("_type", f"{unknown[0]!r} cannot be exported (types: "
                                  f"{', '.join(sources.EXPORT_TYPES)})")
    return tuple(dict.fromkeys(names))


def parse_since(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or "T" not in raw:
        raise UsageError("_since", f"{raw!r} is not an instant with a time zone "
                                   "(e.g. 2024-01-31T09:00:00-07:00)")
    return at


def export_kickoff(*, caller: Caller, request: ExportRequest, request_url: str,
                   actor: Actor) -> ExportJob:
    """Record the request and queue its run (in the same transaction)."""
    # tasks.py imports this module (its jobs call the export functions).
    from ketamine_clinic.web.fhir.tasks import export_run_task

    with transaction.atomic():
        job = ExportJob.objects.create(
            requested_by=caller.user, token=caller.token, level=request.level,
            group_site=request.site, types=list(request.types), since=request.since,
            request_url=request_url, client_address=actor.client_address)
        audit_record(actor=actor,
                     action=AuditAction.FHIR_EXPORT_REQUESTED, object_type="fhir_export",
                     object_id=job.pk, detail={"level": request.level,
                                               "site": request.site.code if request.site
                                               else "", "types": list(request.types),
                                               "since": request.since})
        export_run_task.enqueue(str(job.pk))
    return job


def _patients(job: ExportJob) -> Any:
    qs = patients_visible_to(job.requested_by)
    if job.group_site_id is not None:
        qs = qs.filter(site_id=job.group_site_id)
    return qs.order_by("id")


def _batches(job: ExportJob) -> Iterator[list[Patient]]:
    ids = list(_patients(job).values_list("id", flat=True))
    for i in range(0, len(ids), BATCH_PATIENTS):
        chunk = ids[i:i + BATCH_PATIENTS]
        yield list(Patient.objects.filter(pk__in=chunk).select_related("site").order_by("id"))


class _Writer:
    """Owner-only NDJSON files, one per resource type, opened on first write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}

    def write(self, resource_type: str, line: bytes) -> None:
        f = self.files.get(resource_type)
        if f is None:
            path = self.root / f"{resource_type}.ndjson"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            f = self.files[resource_type] = os.fdopen(fd, "wb", buffering=1 << 20)
            self.counts[resource_type] = 0
        f.write(line)
        f.write(b"\n")
        self.counts[resource_type] += 1

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _since_ok(res: dict[str, Any], since: datetime | None) -> bool:
    return since is None or datetime.fromisoformat(res["meta"]["lastUpdated"]) > since


def export_run(job_id: str) -> str:
    """The background job's work. Safe to run twice: a finished job is left alone, one
    left running by a stopped worker starts again from the beginning."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job_id)
        if job.status not in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
            return job.status
        job.status, job.started_at = ExportJob.Status.RUNNING, timezone.now()
        job.transaction_time = job.started_at
        job.patients_total = _patients(job).count()
        job.patients_done = 0
        job.save(update_fields=["status", "started_at", "transaction_time",
                                "patients_total", "patients_done"])
        ExportFile.objects.filter(job=job).delete()
    root = job_dir(job)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, mode=0o700)
    writer = _Writer(root)
    actor = Actor(user=job.requested_by, client_address=job.client_address)
    wanted = [t for t in sources.PATIENT_TYPES if t in job.types]
    refs: dict[str, set[str]] = {}
    questionnaires: set[str] = set()
    try:
        for patients in _batches(job):
            batch = sources.Batch(sources.Scope(tuple(patients)))
            for rtype in wanted:
                for res in batch.resources(rtype):
                    if not _since_ok(res, job.since):
                        continue
                    writer.write(rtype, R.serve(res))
                    sources.collect_references(res, refs)
                    if rtype == "QuestionnaireResponse":
                        questionnaires.add(res["questionnaire"])
            audit_record(actor=actor, action=AuditAction.FHIR_EXPORT, object_type="fhir_export",
                         object_id=job.pk, detail={"patients": [p.pk for p in patients],
                                                   "types": wanted})
            job.patients_done += len(patients)
            ExportJob.objects.filter(pk=job.pk).update(patients_done=job.patients_done)
            if ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.CANCELLED).exists():
                writer.close()
                shutil.rmtree(root, ignore_errors=True)
                return ExportJob.Status.CANCELLED
        _write_shared(job, writer, refs.get("Practitioner", set()),
                      refs.get("Organization", set()), questionnaires)
    except Exception as exc:
        writer.close()
        shutil.rmtree(root, ignore_errors=True)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    writer.close()
    return _finish(job, writer)


def _write_shared(job: ExportJob, writer: _Writer, practitioner_ids: set[str],
                  site_ids: set[str], questionnaires: set[str]) -> None:
    if "Practitioner" in job.types:
        for res in sources.practitioners(int(i) for i in practitioner_ids if i.isdigit()):
            writer.write("Practitioner", R.serve(res))
    if "Organization" in job.types:
        sites = Site.objects.filter(pk__in=[int(i) for i in site_ids if i.isdigit()])
        for res in sources.organizations(sites):
            writer.write("Organization", R.serve(res))
    if "Questionnaire" in job.types and questionnaires:
        writer.write("Questionnaire", R.serve(R.questionnaire_resource()))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finish(job: ExportJob, writer: _Writer) -> str:
    # tasks.py imports this module (its jobs call the export functions).
    from ketamine_clinic.web.fhir.tasks import export_expire_task

    now = timezone.now()
    with transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == ExportJob.Status.CANCELLED:
            shutil.rmtree(job_dir(job), ignore_errors=True)
            return locked.status
        for rtype in sources.EXPORT_TYPES:
            if rtype not in writer.counts:
                continue
            path = job_dir(job) / f"{rtype}.ndjson"
            ExportFile.objects.create(job=job, resource_type=rtype, name=path.name,
                                      count=writer.counts[rtype],
                                      size_bytes=path.stat().st_size, sha256=_sha256(path))
        locked.status, locked.finished_at = ExportJob.Status.COMPLETED, now
        locked.expires_at = now + timedelta(hours=expiry_hours())
        locked.patients_done = job.patients_done
        locked.save(update_fields=["status", "finished_at", "expires_at", "patients_done"])
        audit_record(actor=Actor(user=job.requested_by, client_address=job.client_address),
                     action=AuditAction.FHIR_EXPORT_COMPLETED, object_type="fhir_export",
                     object_id=job.pk, detail={"files": dict(writer.counts),
                                               "patients": job.patients_done})
        export_expire_task.using(run_after=locked.expires_at).enqueue(str(job.pk))
    return ExportJob.Status.COMPLETED


def export_cancel(*, job: ExportJob, actor: Actor) -> None:
    with transaction.atomic():
        locked = ExportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (ExportJob.Status.CANCELLED, ExportJob.Status.EXPIRED):
            raise UsageError("job", "this export was already cancelled or has expired")
        locked.status, locked.finished_at = ExportJob.Status.CANCELLED, timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        ExportFile.objects.filter(job=locked).delete()
        audit_record(actor=actor,
                     action=AuditAction.FHIR_EXPORT_CANCELLED, object_type="fhir_export",
                     object_id=job.pk)
    shutil.rmtree(job_dir(job), ignore_errors=True)


def export_expire(job_id: str) -> str:
    """Delete an export's files once it has expired (the deferred job)."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ExportJob.Status.COMPLETED:
            return "nothing to do"
        if job.expires_at is not None and job.expires_at > timezone.now():
            return "not yet"
        job.status = ExportJob.Status.EXPIRED
        job.save(update_fields=["status"])
        ExportFile.objects.filter(job=job).delete()
        audit_record(actor=Actor(user=None, client_address="worker"),
                     action=AuditAction.FHIR_EXPORT_EXPIRED,
                     object_type="fhir_export", object_id=job.pk)
    shutil.rmtree(job_dir(job), ignore_errors=True)
    return ExportJob.Status.EXPIRED


def job_for(user: User, job_id: str) -> ExportJob | None:
    """The export if ``user`` asked for it; nobody else's (not even an administrator's)."""
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        return None
    return ExportJob.objects.filter(pk=key, requested_by=user).first()
