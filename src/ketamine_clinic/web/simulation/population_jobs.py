"""Large virtual-population runs as background jobs, with progress.

``POST /api/v1/pk/population`` answers at once while patients × times is at most
``PK_SYNC_MAX_WORK``; above it (up to ``PK_JOB_MAX_WORK``) it stores a
:class:`PopulationJob`, enqueues :func:`population_job_run` and answers 202 with the job's
address, where the client reads the progress and, when done, the result.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.simulation.models import PopulationJob


def population_job_create(*, user: User, inputs: dict[str, Any]) -> PopulationJob:
    # tasks.py imports this module (its job runs population_job_run).
    from ketamine_clinic.web.simulation.tasks import population_run_task

    with transaction.atomic():
        job = PopulationJob.objects.create(requested_by=user, inputs=inputs, n=inputs["n"])
        population_run_task.enqueue(job.pk)  # exists only if this transaction commits
    return job


def population_job_run(job_id: int) -> str:
    """Run the job (safe to run twice: a finished job is left as it is)."""
    # The API module imports this one (it queues the jobs).
    from ketamine_clinic.web.simulation.api import PopulationIn, run_population

    with transaction.atomic():
        job = PopulationJob.objects.select_for_update().get(pk=job_id)
        if job.status in (PopulationJob.Status.DONE, PopulationJob.Status.FAILED):
            return job.status
        job.status, job.started_at, job.patients_done = PopulationJob.Status.RUNNING, \
            timezone.now(), 0
        job.save(update_fields=["status", "started_at", "patients_done"])

    def progress(done: int) -> None:
        PopulationJob.objects.filter(pk=job_id).update(patients_done=done)

    try:
        result = run_population(PopulationIn(**job.inputs), progress=progress)
    except UsageError as exc:
        PopulationJob.objects.filter(pk=job_id).update(
            status=PopulationJob.Status.FAILED, error=str(exc), finished_at=timezone.now())
        return PopulationJob.Status.FAILED
    PopulationJob.objects.filter(pk=job_id).update(
        status=PopulationJob.Status.DONE, result=result, patients_done=job.n,
        finished_at=timezone.now())
    return PopulationJob.Status.DONE


def population_job_out(job: PopulationJob) -> dict[str, Any]:
    return {
        "id": job.pk, "status": job.status, "n": job.n, "patients_done": job.patients_done,
        "progress_percent": round(100 * job.patients_done / job.n, 1) if job.n else 100.0,
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "error": job.error,
        "status_url": f"/api/v1/pk/population/jobs/{job.pk}",
        "result": job.result if job.status == PopulationJob.Status.DONE else None,
    }
