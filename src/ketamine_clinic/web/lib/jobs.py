"""Background jobs: one place that knows how the clinic's job worker runs.

Jobs are django-tasks tasks (``@task`` from ``django_tasks``; ``.enqueue()`` inside the
service's transaction) stored by the database backend (``django_tasks_db``) in the
clinic's own database. The worker is django-tasks-db's own ``Worker`` loop:

* ``ketamine-clinic worker`` runs it for good (the demo starts one beside the web server);
* :func:`run_due_jobs` runs it once over what is due and returns, in this process. Tests
  use it so that a job runs through the real worker and the real queue tables, not a mock.

A job must be safe to run twice (a worker killed after the work and before marking the
job done runs it again): each job checks, under a lock, whether its work is already done,
and anything sent outside the database carries an idempotency key. See ``docs/jobs.md``.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string

DEFAULT_QUEUE = "default"


def _worker(*, batch: bool, queues: str, interval_s: float, max_tasks: int | None) -> object:
    # A management command module: loaded only by the process that runs the worker.
    from django_tasks_db.management.commands.db_worker import Worker

    return Worker(queue_names=queues.split(","), interval=interval_s, batch=batch,
                  backend_name="default", startup_delay=False, max_tasks=max_tasks,
                  worker_id=get_random_string(32), excluded_queue_names=[])


def run_due_jobs(*, queues: str = "*", max_tasks: int | None = None) -> int:
    """Run every job that is due now through the database worker, then return.

    Returns the number of jobs run (successful or failed). Jobs deferred to a later time
    (``run_after``) stay queued.
    """
    worker = _worker(batch=True, queues=queues, interval_s=0, max_tasks=max_tasks)
    worker.run()  # type: ignore[attr-defined]
    return int(worker._run_tasks)  # type: ignore[attr-defined]


def _audit_sealer(interval_s: float) -> None:
    """Seal new audit entries into the chain and checkpoint the chains' heads outside the
    database (``settings.CHAIN_SEALERS``: the audit trail, the stock ledger), every few
    seconds."""
    sealers = [import_string(path) for path in settings.CHAIN_SEALERS]
    while True:
        for seal in sealers:
            try:
                seal()
            except Exception:  # a locked or restarting database: try again next round
                logging.getLogger(__name__).exception("%s failed", seal.__qualname__)
            finally:
                close_old_connections()
        time.sleep(interval_s)


def run_worker(*, queues: str = "*", interval_s: float = 1.0) -> None:
    """Run the worker until SIGINT / SIGTERM (it finishes the job in hand first).

    Beside the jobs, a thread seals the audit trail every ``AUDIT_SEAL_SECONDS``."""

    threading.Thread(target=_audit_sealer, args=(settings.AUDIT_SEAL_SECONDS,),
                     name="audit-sealer", daemon=True).start()
    worker = _worker(batch=False, queues=queues, interval_s=interval_s, max_tasks=None)
    worker.configure_signals()  # type: ignore[attr-defined]
    worker.run()  # type: ignore[attr-defined]
