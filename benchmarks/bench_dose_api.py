"""How long a dose check takes through the API (``POST /api/v1/dose-check``).

Sets up a throw-away SQLite database in a temporary folder (migrations, the shipped
protocols, one nurse with an API token), starts gunicorn on a free loopback port, sends a
bounded number of requests over one keep-alive connection per client thread, and prints
the latency percentiles (p50, p95, p99) and the throughput. The core alone:
``benchmarks/bench_dose.py``.

Run: ``.venv/bin/python benchmarks/bench_dose_api.py [--requests N] [--clients C]
[--workers W]``. Results are figures, not pass/fail.
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
from pathlib import Path

BODY = {"protocol": "clinic-standard", "weight_kg": "70", "rate": "60 mg/h",
        "bag": "500 mg in 500 mL"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(env: dict[str, str]) -> str:
    """Migrate, store the shipped protocols, create a nurse; return her API token."""
    script = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from ketamine_clinic.web.accounts.models import ApiToken, Site, User
from ketamine_clinic.web.protocols.services import protocol_sync_shipped
protocol_sync_shipped()
site = Site.objects.create(code="bench", name="Bench")
user = User.objects.create_user(username="bench", password=None, role="nurse")
user.sites.set([site])
print(ApiToken.issue(user)[1])
"""
    out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def wait_ready(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("bench_dose_api: gunicorn did not start")


def client(port: int, token: str, count: int, out: list[float], errors: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps(BODY)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/dose-check", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        out.append(time.perf_counter() - t0)
        if response.status != 200 or json.loads(data)["rate_mg_per_h"] != 60:
            errors.append(response.status)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="timed requests in all")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clients", type=int, default=2, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-dose-api-") as tmp:
        env = {**os.environ, "KETAMINE_CLINIC_DATA_DIR": tmp,
               "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings",
               "KETAMINE_CLINIC_AXES_ENABLED": "0"}
        env.pop("DATABASE_URL", None)
        token = prepare(env)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "ketamine_clinic.web.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--threads", "1", "--log-level", "warning"],
            env=env, cwd=Path(__file__).resolve().parents[1])
        try:
            wait_ready(port)
            client(port, token, args.warmup, [], [])
            per = max(1, args.requests // args.clients)
            times: list[float] = []
            errors: list[int] = []
            threads = [threading.Thread(target=client, args=(port, token, per, times, errors))
                       for _ in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = sorted(t * 1000 for t in times)
    q = statistics.quantiles(ms, n=100)
    print(f"POST /api/v1/dose-check: {len(ms)} requests, {args.clients} clients, "
          f"gunicorn {args.workers} workers, SQLite; {len(errors)} errors")
    print(f"  p50 {q[49]:.2f} ms   p95 {q[94]:.2f} ms   p99 {q[98]:.2f} ms   "
          f"max {ms[-1]:.2f} ms")
    print(f"  throughput {len(ms) / wall:.0f} requests/s")


if __name__ == "__main__":
    main()
