"""The background job worker: jobs run through the real database queue and worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from ketamine_clinic.cli import main
from ketamine_clinic.web.accounts.models import Site
from tests.web.job_tasks import create_site


def test_a_job_enqueued_in_a_service_transaction_runs_in_the_worker(run_jobs: Any) -> None:
    with transaction.atomic():
        result = create_site.enqueue("aurora")
    assert not Site.objects.filter(code="aurora").exists()  # queued, not run
    assert run_jobs() == 1
    assert Site.objects.filter(code="aurora").exists()
    row = DBTaskResult.objects.get(id=result.id)
    assert row.status == "SUCCESSFUL"
    assert row.return_value == "aurora"


def test_a_job_enqueued_in_a_rolled_back_transaction_never_exists(run_jobs: Any) -> None:
    def failing_service() -> None:
        with transaction.atomic():
            create_site.enqueue("golden")
            raise RuntimeError("the service failed after enqueueing")

    with pytest.raises(RuntimeError):
        failing_service()
    assert not DBTaskResult.objects.exists()
    assert run_jobs() == 0
    assert not Site.objects.filter(code="golden").exists()


def test_a_deferred_job_waits_for_its_time(run_jobs: Any) -> None:
    create_site.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("later")
    assert run_jobs() == 0
    assert not Site.objects.filter(code="later").exists()
    DBTaskResult.objects.update(run_after=timezone.now() - timedelta(seconds=1))
    assert run_jobs() == 1
    assert Site.objects.filter(code="later").exists()


def test_worker_once_runs_the_due_jobs_from_the_command_line(transactional_db: Any,
                                                               capsys: Any) -> None:
    create_site.enqueue("lakewood")
    assert main(["worker", "--once"]) == 0
    assert "Ran 1 due job(s)." in capsys.readouterr().out
    assert Site.objects.filter(code="lakewood").exists()
