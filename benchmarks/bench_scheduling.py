"""Proposing a 10-visit series against a busy calendar, beside the database's own
indexed overlap query.

The calendar: one site with 20 chairs open 07:00-19:00 every day, each chair booked with
two 5-hour visits a day (infusion plus observation) for a year ahead, a few slots left
free at random so that some proposals need alternatives. The figure: the time to propose a
10-visit every-day series (``visits_propose``: one indexed query for the window's chair
bookings, the patient's own visits and bounds, then the pure conflict checks and the
free-slot search for each visit that does not fit), and the time of one indexed overlap
query (``does chair c have a booking that crosses [start, end)?``), on the same database.

    .venv/bin/python benchmarks/bench_scheduling.py [--database sqlite|postgres|both]
        [--postgres-url postgres://postgres@127.0.0.1:5432/ops] [--repeat 20]

The PostgreSQL database named in the URL is dropped and created again. Figures, not
pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def recreate_postgres(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def run_one(label: str, env: dict[str, str], repeat: int) -> None:
    env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings",
           "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, __file__, "--inner", label, "--repeat", str(repeat)],
                   env=env, check=True)


def inner(label: str, repeat: int) -> None:
    import random
    from datetime import datetime, timedelta
    from datetime import time as dtime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from tests.web.sessions.conftest import make_consent, make_order

    from ketamine_clinic.web.accounts.models import Site, User
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
    from ketamine_clinic.web.scheduling import selectors, services
    from ketamine_clinic.web.scheduling.models import Chair, Visit, VisitEvent

    print(f"== {label}: building 20 chairs x 1 year of bookings", flush=True)
    site = Site.objects.create(code="bench", name="Bench")
    tz = ZoneInfo(site.time_zone)
    users = {}
    for name, role in (("alice", "physician"), ("bob", "nurse"), ("dave", "clinic_admin")):
        users[name] = User.objects.create_user(username=name, password=None, role=role)
        users[name].sites.set([site])
    cast = SimpleNamespace(**users)
    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    today = timezone.localdate()

    def patient(mrn: str, sex: str = "male") -> object:
        return patients.patient_register(
            actor=Actor(user=users["dave"]), site=site, mrn=mrn, given_name="P",
            family_name=mrn, date_of_birth=today - timedelta(days=40 * 365), sex_at_birth=sex)

    ana = patient("ANA")
    other = patient("OTHER")
    order = make_order(cast, ana, pv, planned_sessions=10)
    make_consent(cast, ana, pv)
    filler = make_order(cast, other, pv)
    admin = Actor(user=users["dave"])
    for n in range(1, 21):
        services.chair_add(actor=admin, site=site, code=str(n))
    services.opening_hours_set(actor=admin, site=site,
                               week={d: [(dtime(7), dtime(19))] for d in range(7)})
    chairs = list(Chair.objects.filter(site=site))
    length = selectors.visit_length(order)
    rng = random.Random(14)
    rows = []
    for day in range(1, 366):
        d = today + timedelta(days=day)
        for chair in chairs:
            for start_h in (7, 12):
                if rng.random() < 0.04:
                    continue  # a free slot here and there
                start = datetime.combine(d, dtime(start_h), tz)
                rows.append(Visit(
                    patient=other, site=site, series=filler.series, order=filler, chair=chair,
                    number=1, starts_at=start,
                    infusion_ends_at=start + timedelta(minutes=length.infusion_min),
                    ends_at=start + length.total, infusion_min=length.infusion_min,
                    recovery_min=length.recovery_min, protocol_version=pv,
                    booked_by=users["dave"]))
    Visit.objects.bulk_create(rows, batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    print(f"   {len(rows)} bookings over {len(chairs)} chairs", flush=True)
    assert not VisitEvent.objects.exists()

    first = datetime.combine(today + timedelta(days=30), dtime(7), tz)
    requests = services.series_requests(order=order, first_start=first, visits=10)

    def propose() -> object:
        return services.visits_propose(order=order, requests=requests)

    proposals = propose()
    conflicts = sum(1 for p in proposals if not p.ok)  # type: ignore[attr-defined]
    chair = chairs[0]
    probe_start = datetime.combine(today + timedelta(days=200), dtime(9), tz)
    probe_end = probe_start + length.total

    def overlap_qs() -> object:
        return Visit.objects.filter(
            chair=chair, status__in=selectors.HOLDING, starts_at__lt=probe_end,
            starts_at__gte=probe_start - selectors.MAX_VISIT_SPAN, ends_at__gt=probe_start)

    def overlap() -> bool:
        return overlap_qs().exists()  # type: ignore[attr-defined, no-any-return]

    def timed(fn: object, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            out.append((time.perf_counter() - t) * 1000)
        return out

    timed(overlap, 5)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(propose)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
    t_propose = timed(propose, repeat)
    t_overlap = timed(overlap, repeat * 10)
    plan = overlap_qs().order_by().explain()  # type: ignore[attr-defined]
    p_med, o_med = statistics.median(t_propose), statistics.median(t_overlap)
    print(f"   proposals: 10 visits, {conflicts} with conflicts (alternatives searched)")
    print(f"   propose a 10-visit series: median {p_med:.2f} ms "
          f"(p90 {statistics.quantiles(t_propose, n=10)[-1]:.2f} ms, n={repeat})")
    print(f"   one indexed overlap query: median {o_med:.3f} ms (n={repeat * 10})")
    print(f"   ratio: proposing the series costs {p_med / o_med:.0f} overlap queries")
    print("   overlap query plan: " + " | ".join(plan.splitlines()[:3]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    ap.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/ops")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--inner")
    args = ap.parse_args()
    if args.inner:
        inner(args.inner, args.repeat)
        return 0
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run_one("SQLite", {"KETAMINE_CLINIC_DATA_DIR": tmp,
                               "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3"}, args.repeat)
    if args.database in ("postgres", "both"):
        recreate_postgres(args.postgres_url)
        with tempfile.TemporaryDirectory() as tmp:
            run_one("PostgreSQL", {"KETAMINE_CLINIC_DATA_DIR": tmp,
                                   "DATABASE_URL": args.postgres_url}, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
