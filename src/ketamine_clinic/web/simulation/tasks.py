"""Background jobs of the simulation area (django-tasks; see docs/jobs.md)."""

from __future__ import annotations

from django_tasks import task

from ketamine_clinic.web.simulation.population_jobs import population_job_run


@task()
def population_run_task(job_id: int) -> str:
    return population_job_run(job_id)
