"""What auditing a read costs: an audited patient-data read against a trivial request.

Concurrent clients against a gunicorn server on 127.0.0.1: ``GET /api/v1/sessions/ping``
(token check, no patient data, nothing audited) and ``GET /api/v1/patients/{id}`` (one
patient's record, which writes an audit entry). Since the keyed chain (docs/audit.md)
writing an entry is a plain insert and the worker seals the chain off the request path; a
read used to lock the chain's one head row for its audit write. Prints both throughputs
and their ratio, then seals and verifies the trail; figures, not pass/fail.

    .venv/bin/python benchmarks/bench_audit_reads.py [--database sqlite|postgres|both]
        [--clients 16] [--requests 400] [--workers 4]
        [--postgres-url postgres://postgres@127.0.0.1:5432/bench_audit_reads]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session_api import (
    free_port,
    hammer,
    recreate_postgres,
    report,
    run_setup,
    start_server,
)


def bench(database: str, args: argparse.Namespace) -> None:
    data_dir = tempfile.mkdtemp(prefix=f"bench-audit-reads-{database}-")
    env = {**os.environ, "KETAMINE_CLINIC_DATA_DIR": data_dir,
           "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings",
           "KETAMINE_CLINIC_SECRET_KEY": uuid.uuid4().hex * 2}
    env.pop("DATABASE_URL", None)
    if database == "postgres":
        recreate_postgres(args.postgres_url)
        env["DATABASE_URL"] = args.postgres_url
    setup = run_setup(env, 4)
    port = free_port()
    server = start_server(env, port, args.workers)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/v1/patients", headers={
            "Authorization": f"Bearer {setup['token']}"})
        patients = [p["id"] for p in json.loads(conn.getresponse().read())]

        def ping(n: int, i: int) -> tuple[str, str, str]:
            return "GET", "/api/v1/sessions/ping", ""

        def read(n: int, i: int) -> tuple[str, str, str]:
            return "GET", f"/api/v1/patients/{patients[i % len(patients)]}", ""

        hammer(port, setup["token"], args.clients, args.clients * 2, ping)  # warm up
        print(f"{database}: {args.clients} concurrent clients, {args.workers} gunicorn workers, "
              f"{args.requests} requests per endpoint")
        results = {}
        for label, request in (("GET  /sessions/ping", ping), ("GET  /patients/{id}", read)):
            lat, errors, wall = hammer(port, setup["token"], args.clients, args.requests, request)
            report(label, lat, errors, wall)
            results[label] = len(lat) / wall
        ping_rate, read_rate = results.values()
        print(f"  audited read / trivial request: {read_rate:.1f} / {ping_rate:.1f} req/s "
              f"= {read_rate / ping_rate:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    for command in (["audit", "seal"], ["audit", "verify"]):
        out = subprocess.run([sys.executable, "-m", "ketamine_clinic.cli", *command], env=env,
                             capture_output=True, text=True, check=False)
        print(f"  {out.stdout.strip().splitlines()[0] if out.stdout else out.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--postgres-url",
                        default="postgres://postgres@127.0.0.1:5432/bench_audit_reads")
    args = parser.parse_args()
    for database in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        bench(database, args)


if __name__ == "__main__":
    main()
