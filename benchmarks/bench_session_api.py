"""Latency of recording a vital-sign set through the API, under concurrent clients.

Twenty bedside monitors (one per chair, each its own infusing session) post vital-sign
sets at once to a gunicorn server on 127.0.0.1; the same server's latency for a trivial
authenticated endpoint (``GET /api/v1/sessions/ping``: token check, no patient data) is
measured the same way as the baseline. Each vital-sign set is a full write: the session
row is locked, the timeline re-derived (exact dose, alarms), the entry and an audit entry
appended (the hash-chained audit trail serialises every write of the whole clinic).

Run on SQLite (a fresh file in a temporary folder) and/or PostgreSQL::

    .venv/bin/python benchmarks/bench_session_api.py [--database sqlite|postgres|both]
        [--clients 20] [--requests 400] [--workers 4] [--rounds 3]
        [--postgres-url postgres://postgres@127.0.0.1:5432/bench_sessions]

The PostgreSQL database named in the URL is dropped and created again. Prints p50, p95
and p99 latency [ms] and throughput of each round (ping, then vitals), each round's ratio of
the two p50s and their median; figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VITALS = {"systolic_bp_mmhg": 124, "diastolic_bp_mmhg": 79, "heart_rate_per_min": 74,
          "respiratory_rate_per_min": 14, "spo2_percent": 98}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recreate_postgres(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


SETUP = r'''
import json, os, sys
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.utils import timezone
from ketamine_clinic.web.accounts.models import ApiToken, Site, User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import services as patients
from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
from ketamine_clinic.web.sessions import services
sys.path.insert(0, os.environ["BENCH_ROOT"])
from tests.web.sessions.conftest import Clinic, Walk, make_consent, make_order

class Cast:  # the roles make_order needs
    pass
site = Site.objects.create(code="denver", name="Denver")
cast = Cast()
cast.alice = User.objects.create_user("alice", role="physician", first_name="Alice")
cast.bob = User.objects.create_user("bob", role="nurse", first_name="Bob")
for u in (cast.alice, cast.bob):
    u.sites.set([site])
protocol_sync_shipped()
pv = protocol_current("clinic-standard")
nurse = Actor(user=cast.bob)
ids = []
for i in range(int(os.environ["BENCH_CHAIRS"])):
    p = patients.patient_register(actor=nurse, site=site, mrn=f"B-{i}", given_name=f"P{i}",
        family_name="Bench", date_of_birth=timezone.localdate() - timedelta(days=15000),
        sex_at_birth="male", escort_name="Escort")
    order = make_order(cast, p, pv)
    make_consent(cast, p, pv)
    s = services.session_schedule(actor=nurse, order=order, scheduled_for=timezone.now(),
                                  chair=str(i + 1))
    w = Walk(Clinic(cast, pv, order.series, order, s, None),
             t0=timezone.now() - timedelta(minutes=40))
    w.infusing()
    ids.append(s.pk)
_, raw = ApiToken.issue(cast.bob, label="bench monitor")
print(json.dumps({"token": raw, "sessions": ids}))
'''


def run_setup(env: dict[str, str], chairs: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", SETUP], env={**env, "BENCH_CHAIRS": str(chairs),
                                                             "BENCH_ROOT": str(ROOT)},
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"setup failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "ketamine_clinic.web.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "--log-level", "warning", "--timeout", "120"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def hammer(port: int, token: str, clients: int, total: int,
           request: Any) -> tuple[list[float], int, float]:
    """``clients`` threads share ``total`` requests; latencies [ms], errors, wall time [s]."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    barrier = threading.Barrier(clients)

    def client(n: int) -> None:
        nonlocal errors
        barrier.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            method, path, body = request(n, i)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ms = (time.perf_counter() - t) * 1000
            conn.close()
            with lock:
                latencies.append(ms)
                if resp.status >= 300:
                    errors += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, errors, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(label: str, lat: list[float], errors: int, wall: float) -> None:
    print(f"  {label:<28} n={len(lat):4d}  p50 {pct(lat, 50):7.1f} ms  p95 {pct(lat, 95):7.1f} ms"
          f"  p99 {pct(lat, 99):7.1f} ms  {len(lat) / wall:6.1f} req/s  errors {errors}")


def bench(database: str, args: argparse.Namespace) -> None:
    data_dir = tempfile.mkdtemp(prefix=f"bench-sessions-{database}-")
    env = {**os.environ, "KETAMINE_CLINIC_DATA_DIR": data_dir,
           "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings",
           "KETAMINE_CLINIC_SECRET_KEY": uuid.uuid4().hex * 2,
           # The audit trail refuses to seal entries without a key (a fresh data folder
           # has no key file yet).
           "KETAMINE_CLINIC_AUDIT_KEY": uuid.uuid4().hex * 2}
    env.pop("DATABASE_URL", None)
    if database == "postgres":
        recreate_postgres(args.postgres_url)
        env["DATABASE_URL"] = args.postgres_url
    setup = run_setup(env, args.clients)
    port = free_port()
    server = start_server(env, port, args.workers)
    try:
        sessions = setup["sessions"]

        def vitals(n: int, i: int) -> tuple[str, str, str]:
            body = {**VITALS, "heart_rate_per_min": 70 + i % 20,
                    "idempotency_key": f"bench-{n}-{i}-{uuid.uuid4().hex[:8]}",
                    "device_id": f"monitor-{n + 1}"}
            return "POST", f"/api/v1/sessions/{sessions[n]}/vitals", json.dumps(body)

        def ping(n: int, i: int) -> tuple[str, str, str]:
            return "GET", "/api/v1/sessions/ping", ""

        hammer(port, setup["token"], args.clients, args.clients * 2, ping)  # warm the workers
        print(f"{database}: {args.clients} concurrent clients, {args.workers} gunicorn workers, "
              f"{args.requests} requests per endpoint and round, {args.rounds} rounds")
        ratios = []
        for r in range(1, args.rounds + 1):
            # Ping and vitals alternate, round by round, so that a change in the machine's
            # load falls on both sides of the ratio rather than on one.
            base = hammer(port, setup["token"], args.clients, args.requests, ping)
            report(f"{r}: GET  /sessions/ping", *base)
            write = hammer(port, setup["token"], args.clients, args.requests, vitals)
            report(f"{r}: POST /sessions/{{id}}/vitals", *write)
            ratios.append(pct(write[0], 50) / pct(base[0], 50))
            print(f"  {r}: vitals p50 = {ratios[-1]:.2f}x the trivial endpoint's p50; load "
                  f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"  vitals p50 / ping p50: median {statistics.median(ratios):.2f}x, rounds "
              f"{min(ratios):.2f}x to {max(ratios):.2f}x (goal <= 1.5x)")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url",
                        default="postgres://postgres@127.0.0.1:5432/bench_sessions")
    args = parser.parse_args()
    for database in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        bench(database, args)


if __name__ == "__main__":
    main()
