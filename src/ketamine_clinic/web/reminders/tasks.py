"""Background jobs of the reminders area (django-tasks; see docs/jobs.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django_tasks import task

from ketamine_clinic.web.reminders.services import followup_links_send, visit_reminder_send


@task()
def send_visit_reminder(visit_id: int, reminder_key: str, starts_at_iso: str) -> str:
    out = visit_reminder_send(visit_id, reminder_key, starts_at_iso)
    return f"sent {out.sent}, skipped {out.skipped}" + (
        f", waits until {out.deferred_to.isoformat()}" if out.deferred_to else "")


# The follow-up sweep runs hourly and queues its own next run (django-tasks has no
# periodic schedule; one queued sweep at a time, see ``followup_sweep_ensure``).
SWEEP_EVERY = timedelta(hours=1)


@task()
def followup_links_sweep() -> str:
    try:
        out = followup_links_send()
    finally:
        followup_sweep_ensure(after=timezone.now() + SWEEP_EVERY)
    return f"sent {out.sent}, skipped {out.skipped}"


def followup_sweep_ensure(*, after: datetime | None = None) -> bool:
    """Queue the follow-up sweep unless one is already queued. Returns True if queued."""
    # django-tasks loads this module with its registry, before the database backend's models.
    from django_tasks_db.models import DBTaskResult

    path = followup_links_sweep.module_path
    if DBTaskResult.objects.filter(task_path=path, status="READY").exists():
        return False
    run_after = after if after is not None else timezone.now()
    followup_links_sweep.using(run_after=run_after).enqueue()
    return True
