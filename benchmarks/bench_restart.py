"""Restart after a crash: how soon does a killed server answer again (issue 13, finding 15)?

``ketamine-clinic serve`` used to migrate and collect static files at every start, so a
server restarted after a crash took as long as a deploy (25-85 s) before its first answer.
That work is now the deploy step ``ketamine-clinic migrate``, run once. This script, on a
fresh database (a temporary SQLite folder, or a PostgreSQL database made for the run):

1. runs ``ketamine-clinic migrate`` and times it (the deploy step);
2. starts ``ketamine-clinic serve`` and times the first answer (``GET /healthz``), and the
   first page (``GET /login/``);
3. kills the server's whole process group with SIGKILL (kill -9: no clean shutdown),
   starts ``serve`` again and times the first answer and the first page after the restart;
   repeated ``--restarts`` times.

Both sides of the ratio come from the same run: the restart's time to the first answer
against the ``migrate`` step it no longer repeats::

    .venv/bin/python benchmarks/bench_restart.py [--database sqlite|postgres|both]
        [--restarts 3] [--workers 2]

PostgreSQL runs on 127.0.0.1 as user postgres (database ``bench_restart``, dropped after).
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session_api import free_port
from fresh_db import fresh_database

CLI = str(Path(sys.executable).with_name("ketamine-clinic"))
GIVE_UP_S = 300.0


def _status(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def _wait_for(port: int, path: str, since: float, proc: subprocess.Popen[bytes]) -> float:
    """Seconds from ``since`` to the first 200 on ``path``."""
    while time.perf_counter() - since < GIVE_UP_S:
        if _status(port, path) == 200:
            return time.perf_counter() - since
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode} before answering")
        time.sleep(0.02)
    raise SystemExit(f"no answer on {path} within {GIVE_UP_S:.0f} s")


def _serve(env: dict[str, str], port: int, workers: int) -> tuple[subprocess.Popen[bytes],
                                                                   float, float]:
    """Start serve in a process group of its own; seconds to the first answer and page."""
    started = time.perf_counter()
    proc = subprocess.Popen([CLI, "serve", "--port", str(port), "--workers", str(workers)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first_answer = _wait_for(port, "/healthz", started, proc)
    first_page = _wait_for(port, "/login/", started, proc)
    return proc, first_answer, first_page


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # serve, the gunicorn master and its workers
    proc.wait()


def bench(database: str, restarts: int, workers: int) -> dict[str, float]:
    with fresh_database(database, "bench_restart") as env:
        env.setdefault("KETAMINE_CLINIC_SECRET_KEY", secrets.token_urlsafe(48))
        started = time.perf_counter()
        subprocess.run([CLI, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        migrate_s = time.perf_counter() - started
        port = free_port()
        proc, first_answer, first_page = _serve(env, port, workers)
        after: list[tuple[float, float]] = []
        try:
            for _ in range(restarts):
                _kill9(proc)
                proc, answer_s, page_s = _serve(env, port, workers)
                after.append((answer_s, page_s))
        finally:
            _kill9(proc)
    restart_answer = statistics.median(a for a, _ in after)
    restart_page = statistics.median(p for _, p in after)
    print(f"{database}: migrate (deploy step) {migrate_s:.2f} s; first start: first answer "
          f"{first_answer:.2f} s, first page {first_page:.2f} s")
    for i, (answer_s, page_s) in enumerate(after, 1):
        print(f"  restart {i} after kill -9: first answer {answer_s:.2f} s, "
              f"first page {page_s:.2f} s")
    print(f"  median restart: first answer {restart_answer:.2f} s against migrate "
          f"{migrate_s:.2f} s (restart / migrate = {restart_answer / migrate_s:.2f}); "
          f"a serve that migrated at start would need at least "
          f"{migrate_s + restart_answer:.2f} s", flush=True)
    return {"migrate_s": migrate_s, "restart_first_answer_s": restart_answer,
            "restart_first_page_s": restart_page}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for database in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        bench(database, args.restarts, args.workers)


if __name__ == "__main__":
    main()
