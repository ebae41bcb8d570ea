"""How long a FHIR bulk export of a synthetic cohort takes, against a plain dump of the
same rows from the same database.

Run: ``.venv/bin/python benchmarks/bench_fhir_export.py [--patients 10000]
[--detail outcomes|full] [--backend sqlite|postgres]``. In a fresh database (a temporary
SQLite file; or PostgreSQL database ``bench_fhir`` made with ``createdb`` on 127.0.0.1 as
user postgres and dropped afterwards): load a seeded synthetic cohort at two sites
(``cohort generate``'s loader), then time

* the export: the background job's own work (``exports.export_run``) for a physician of
  both sites, every resource type: read in batches, mapped, validated by the R4B models,
  written as NDJSON, one file per type;
* the floor: a plain dump of the same rows (every table the export reads, each row as
  one JSON line via ``QuerySet.values()``) to files in the same folder.

It prints both times, their ratio and the rate in resources per second. Figures, not
pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_URL = "postgres://postgres@127.0.0.1:5432/bench_fhir"


def run(n_patients: int, detail: str, backend: str) -> dict[str, object]:
    from ketamine_clinic.commands.web import setup_django

    setup_django(None)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ketamine_clinic.web.accounts.models import Site, User
    from ketamine_clinic.web.documents.models import ConsentDocument
    from ketamine_clinic.web.fhir import exports
    from ketamine_clinic.web.fhir.models import ExportJob
    from ketamine_clinic.web.orders.models import Order, Series
    from ketamine_clinic.web.outcomes.cohort_loader import load_synthetic_cohort
    from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
    from ketamine_clinic.web.patients.models import (
        Allergy,
        DemographicAmendment,
        Diagnosis,
        Measurement,
        Patient,
    )
    from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion
    from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

    call_command("migrate", interactive=False, verbosity=0)
    sites = [Site.objects.create(code="denver", name="Denver", time_zone="America/Denver"),
             Site.objects.create(code="boulder", name="Boulder", time_zone="America/Denver")]
    t0 = time.perf_counter()
    summary = load_synthetic_cohort(n_patients=n_patients, seed=1, sites=sites,
                                    detail=detail, chunk_size=500, progress=True)
    load_s = time.perf_counter() - t0
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE" if backend == "postgres" else "ANALYZE")
    doctor = User.objects.create_user(username="bench.doctor", password=None,
                                      role="physician")
    doctor.sites.set(sites)

    job = ExportJob.objects.create(requested_by=doctor, level="patient",
                                   types=list(exports.sources.EXPORT_TYPES),
                                   request_url="bench")
    t0 = time.perf_counter()
    exports.export_run(str(job.pk))
    export_s = time.perf_counter() - t0
    job.refresh_from_db()
    files = {f.resource_type: f.count for f in job.files.all()}
    export_bytes = sum(f.size_bytes for f in job.files.all())

    dump_dir = Path(settings.DATA_DIR) / "plain-dump"
    dump_dir.mkdir()
    tables = [Patient, DemographicAmendment, Diagnosis, Measurement, Allergy, Series, Order,
              ProtocolVersion, InfusionSession, TimelineEntry, Consent, ConsentDocument,
              FollowUp, FollowUpResponse, User, Site]
    t0 = time.perf_counter()
    rows = 0
    dump_bytes = 0
    for model in tables:
        path = dump_dir / f"{model._meta.label}.ndjson"
        with path.open("w") as f:
            for row in model.objects.order_by("pk").values().iterator(chunk_size=5000):
                f.write(json.dumps(row, default=str))
                f.write("\n")
                rows += 1
        dump_bytes += path.stat().st_size
    dump_s = time.perf_counter() - t0
    resources = sum(files.values())
    return {
        "backend": backend, "detail": detail, "patients": summary.patients,
        "sessions": summary.sessions, "timeline_entries": summary.timeline_entries,
        "follow_up_answers": summary.responses, "load_s": round(load_s, 1),
        "export_s": round(export_s, 1), "resources": resources, "files": files,
        "export_mb": round(export_bytes / 1e6, 1),
        "dump_s": round(dump_s, 1), "dump_rows": rows, "dump_mb": round(dump_bytes / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--detail", choices=["outcomes", "full"], default="outcomes")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(args.patients, args.detail, args.backend)))
        return
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    tmp = tempfile.mkdtemp(prefix="bench-fhir-")
    env["KETAMINE_CLINIC_DATA_DIR"] = tmp
    pg = ["-h", "127.0.0.1", "-U", "postgres", "bench_fhir"]
    if args.backend == "postgres":
        subprocess.run(["dropdb", "--if-exists", *pg], check=True)
        subprocess.run(["createdb", *pg], check=True)
        env["DATABASE_URL"] = PG_URL
    try:
        out = subprocess.run([sys.executable, __file__, "--one", "--patients",
                              str(args.patients), "--detail", args.detail, "--backend",
                              args.backend], env=env, check=True, stdout=subprocess.PIPE,
                             text=True)
    finally:
        if args.backend == "postgres":
            subprocess.run(["dropdb", "--if-exists", *pg], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = r["export_s"] / r["dump_s"] if r["dump_s"] else float("inf")
    print(f"{r['backend']}, detail={r['detail']}: {r['patients']} patients, {r['sessions']} "
          f"sessions, {r['timeline_entries']} timeline entries, {r['follow_up_answers']} "
          f"follow-up answers (loaded in {r['load_s']} s)")
    print(f"  FHIR export: {r['export_s']} s for {r['resources']} resources "
          f"({r['resources'] / r['export_s']:.0f} resources/s, {r['export_mb']} MB NDJSON)")
    print(f"  plain dump of the same rows: {r['dump_s']} s for {r['dump_rows']} rows "
          f"({r['dump_rows'] / r['dump_s']:.0f} rows/s, {r['dump_mb']} MB)")
    print(f"  ratio export / plain dump: {ratio:.1f}")
    print("  resources per type: " + ", ".join(f"{k} {v}" for k, v in r["files"].items()))


if __name__ == "__main__":
    main()
