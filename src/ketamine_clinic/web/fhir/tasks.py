"""Background jobs of the FHIR area (django-tasks; see docs/jobs.md)."""

from __future__ import annotations

from django_tasks import task


@task()
def export_run_task(job_id: str) -> str:
    from ketamine_clinic.web.fhir.exports import export_run

    return export_run(job_id)


@task()
def export_expire_task(job_id: str) -> str:
    from ketamine_clinic.web.fhir.exports import export_expire

    return export_expire(job_id)
