"""kill -9 during concurrent charting: is every acknowledged write stored, exactly once?

Sixteen bedside monitors (one per chair, each its own infusing session) post vital-sign
sets with fresh idempotency keys to a gunicorn server, with the job worker (which seals
the audit trail) running beside it. After a random moment the server and the worker are
killed with SIGKILL, mid-request. They are started again; each monitor retries, with the
same key, the writes it never got an answer for (as a real monitor does). Then the database
is read:

* acknowledged: answers 200/201 the clients received, before the kill and on retry;
* stored: timeline entries with those keys (each must be there: lost = acknowledged - stored);
* duplicates: keys stored more than once (must be 0);
* the audit trail: sealed, then verified (must be intact).

Run on SQLite (a fresh file in a temporary folder) and/or PostgreSQL::

    .venv/bin/python benchmarks/bench_kill9_charting.py [--database sqlite|postgres|both]
        [--rounds 2] [--clients 16] [--workers 4]
        [--postgres-url postgres://postgres@127.0.0.1:5432/bench_kill9]

The PostgreSQL database named in the URL is dropped and created again. A few minutes on
both databases with the defaults. Prints figures per round and in total.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session_api import VITALS, free_port, recreate_postgres, run_setup

COUNT = r'''
import json, sys
import django
django.setup()
from django.db.models import Count
from ketamine_clinic.web.sessions.models import TimelineEntry
rows = (TimelineEntry.objects.filter(idempotency_key__startswith="k9-")
        .values("idempotency_key").annotate(n=Count("id")))
print(json.dumps({r["idempotency_key"]: r["n"] for r in rows}))
'''


def start(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """gunicorn and the job worker in one new process group (killed together)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    script = (f"{gunicorn} ketamine_clinic.web.wsgi:application -b 127.0.0.1:{port} "
              f"-w {workers} --log-level error --timeout 120 & "
              f"{sys.executable} -m ketamine_clinic.cli worker --interval 0.5 >/dev/null & wait")
    proc = subprocess.Popen(["sh", "-c", script], env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("gunicorn did not start")


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def post(port: int, token: str, session_id: int, key: str, n: int) -> int | None:
    """The status, or None when the server died before answering."""
    body = {**VITALS, "heart_rate_per_min": 70 + n % 20, "idempotency_key": key,
            "device_id": f"monitor-{n}"}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", f"/api/v1/sessions/{session_id}/vitals", body=json.dumps(body),
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"})
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketamine_clinic.cli", *args], env=env,
                          capture_output=True, text=True, check=False)


def one_round(env: dict[str, str], setup: dict[str, Any], args: argparse.Namespace,
              rnd: int) -> dict[str, int]:
    port = free_port()
    server = start(env, port, args.workers)
    token, sessions = setup["token"], setup["sessions"]
    acked: set[str] = set()
    unanswered: dict[str, tuple[int, int]] = {}  # key -> (session, monitor)
    refused = 0
    lock = threading.Lock()
    stop = threading.Event()

    def monitor(n: int) -> None:
        nonlocal refused
        i = 0
        while not stop.is_set():
            key = f"k9-{rnd}-{n}-{i}-{uuid.uuid4().hex[:6]}"
            i += 1
            status = post(port, token, sessions[n], key, n)
            with lock:
                if status in (200, 201):
                    acked.add(key)
                elif status is None:
                    unanswered[key] = (sessions[n], n)
                else:
                    refused += 1
            if status is None:
                return  # the server is gone: this monitor waits for it to come back

    threads = [threading.Thread(target=monitor, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(args.min_s, args.max_s))
    kill9(server)
    stop.set()
    for t in threads:
        t.join()
    before_kill = len(acked)

    server = start(env, port, args.workers)  # restart; the monitors retry what had no answer
    try:
        for key, (session_id, n) in unanswered.items():
            if post(port, token, session_id, key, n) in (200, 201):
                acked.add(key)
    finally:
        kill9(server)

    counts = _count(env)
    stored = {k for k in acked if counts.get(k, 0) >= 1}
    duplicates = sum(1 for k, c in counts.items() if c > 1)
    return {"acked_before_kill": before_kill, "in_flight_at_kill": len(unanswered),
            "acknowledged": len(acked), "stored": len(stored),
            "lost": len(acked) - len(stored), "duplicates": duplicates, "refused": refused}


def _count(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", COUNT], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench(database: str, args: argparse.Namespace) -> dict[str, int]:
    data_dir = tempfile.mkdtemp(prefix=f"bench-kill9-{database}-")
    env = {**os.environ, "KETAMINE_CLINIC_DATA_DIR": data_dir,
           "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings",
           "KETAMINE_CLINIC_SECRET_KEY": uuid.uuid4().hex * 2,
           "KETAMINE_CLINIC_AUDIT_SEAL_SECONDS": "1"}
    env.pop("DATABASE_URL", None)
    if database == "postgres":
        recreate_postgres(args.postgres_url)
        env["DATABASE_URL"] = args.postgres_url
    setup = run_setup(env, args.clients)
    print(f"{database}: {args.clients} monitors, {args.workers} gunicorn workers, "
          f"kill -9 after {args.min_s}-{args.max_s} s, {args.rounds} rounds")
    total: dict[str, int] = {}
    for rnd in range(1, args.rounds + 1):
        r = one_round(env, setup, args, rnd)
        print(f"  round {rnd}: acknowledged {r['acknowledged']:4d} "
              f"({r['acked_before_kill']} before the kill, {r['in_flight_at_kill']} in flight "
              f"retried)  stored {r['stored']:4d}  lost {r['lost']}  duplicates "
              f"{r['duplicates']}  refused {r['refused']}", flush=True)
        for k, v in r.items():
            total[k] = total.get(k, 0) + v
    sealed = cli(env, "audit", "seal")
    verified = cli(env, "audit", "verify")
    print(f"  {sealed.stdout.strip()}")
    print(f"  {verified.stdout.strip().splitlines()[0] if verified.stdout else verified.stderr}")
    total["audit_intact"] = int(verified.returncode == 0)
    print(f"  total: acknowledged {total['acknowledged']}, stored {total['stored']}, "
          f"lost {total['lost']}, duplicates {total['duplicates']}; audit trail "
          f"{'intact' if total['audit_intact'] else 'BROKEN'}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--min-s", type=float, default=3.0, help="earliest kill [s]")
    parser.add_argument("--max-s", type=float, default=8.0, help="latest kill [s]")
    parser.add_argument("--postgres-url",
                        default="postgres://postgres@127.0.0.1:5432/bench_kill9")
    args = parser.parse_args()
    for database in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        bench(database, args)


if __name__ == "__main__":
    main()
