"""Do the pages grow with the cohort? Server time, query count and size at two cohort sizes.

Run: ``.venv/bin/python benchmarks/bench_pages.py [--sizes 200,2000] [--backend sqlite|postgres]
[--repeat 3]``. For each size, in a fresh database (a temporary SQLite file, or the
PostgreSQL database ``bench_pages`` on 127.0.0.1 as user postgres, made and dropped here),
``ketamine-clinic demo --no-serve --patients N`` loads the demo data and a synthetic cohort
of N patients (all detail: vital signs, scores, pump histories, follow-ups). Then each page
is fetched with ``django.test.Client`` as the demo physician: the best of ``--repeat``
server times (the whole request through the middleware, audit included), the number of SQL
queries and the size of the response. The page of a patient and of a session are those of
the synthetic patient with the most sessions, and of the session discharged longest ago.

A page whose time, queries or size do not depend on the cohort shows the same figures in
both columns. Results are figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from fresh_db import fresh_database

CLI = str(Path(sys.executable).parent / "ketamine-clinic")


def measure(repeat: int) -> dict[str, dict[str, float]]:
    """Inside a process whose environment points at the loaded database."""
    from ketamine_clinic.commands.web import setup_django

    setup_django(None)
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.sessions.models import InfusionSession

    physician = User.objects.filter(role="physician").order_by("id").first()
    assert physician is not None
    site_ids = list(physician.sites.values_list("id", flat=True))
    sessions = InfusionSession.objects.filter(site_id__in=site_ids)
    busiest = (sessions.values("patient_id").annotate(n=Count("id")).order_by("-n", "patient_id")
               .first())
    oldest = sessions.filter(state="discharged").order_by("scheduled_for").first()
    assert busiest is not None
    assert oldest is not None
    pages = {
        "/patients/": "/patients/",
        "/patients/<id>/": f"/patients/{busiest['patient_id']}/",
        "/follow-ups/": "/follow-ups/",
        "/outcomes/": "/outcomes/",
        "/orders/": "/orders/",
        "/reports/limit-events/": "/reports/limit-events/",
        "/sessions/board/": "/sessions/board/",
        "/sessions/<id>/ (discharged)": f"/sessions/{oldest.pk}/",
    }
    client = Client()
    client.force_login(physician)
    results: dict[str, dict[str, float]] = {}
    for label, url in pages.items():
        best = float("inf")
        queries = size = status = 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - t0
            best = min(best, elapsed)
            queries, size, status = len(ctx.captured_queries), len(response.content), \
                response.status_code
        results[label] = {"ms": best * 1000, "queries": queries, "kb": size / 1024,
                          "status": status}
    return results


def run_size(backend: str, n: int, repeat: int) -> dict[str, dict[str, float]]:
    with fresh_database(backend, "bench_pages") as env:
        t0 = time.perf_counter()
        subprocess.run([CLI, "demo", "--no-serve", "--patients", str(n)], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        print(f"  loaded {n} patients in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--one", "--repeat", str(repeat)],
                             env=env, check=True, stdout=subprocess.PIPE, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.repeat)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    by_size = {n: run_size(args.backend, n, args.repeat) for n in sizes}
    head = "".join(f" | {n:>5} patients: ms, queries, kB" for n in sizes)
    print(f"{args.backend}, best of {args.repeat}\n{'page':<30}{head} | ms ratio")
    for label in by_size[sizes[0]]:
        cells = "".join(
            f" | {r['ms']:>8.0f} ms {r['queries']:>5.0f} q {r['kb']:>8.1f} kB"
            + ("" if r["status"] == 200 else f" ({r['status']:.0f})")
            for r in (by_size[n][label] for n in sizes))
        ratio = by_size[sizes[-1]][label]["ms"] / by_size[sizes[0]][label]["ms"]
        print(f"{label:<30}{cells} | {ratio:5.1f}x")


if __name__ == "__main__":
    main()
