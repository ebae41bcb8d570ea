"""Background jobs of the FHIR area (django-tasks; see docs/jobs.md)."""

from __future__ import annotations

from django_tasks import task

from ketamine_clinic.web.fhir.exports import export_expire, export_run


@task()
def export_run_task(job_id: str) -> str:
    return export_run(job_id)


@task()
def export_expire_task(job_id: str) -> str:
    return export_expire(job_id)
