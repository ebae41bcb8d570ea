"""Reports and synthetic cohorts: ``report outcomes`` and ``cohort generate``.

``ketamine-clinic report outcomes`` prints the cohort outcome report over ``--data-dir``
(SQLite) or ``DATABASE_URL``: a summary, or ``--json`` (the same named numbers as the page
and ``/api/v1/outcomes/report``), ``--csv FILE`` or ``--pdf FILE`` ("-" is stdout for CSV).
``ketamine-clinic cohort generate --patients N`` loads a seeded synthetic cohort.
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from ketamine_clinic.commands.django_setup import add_data_dir, prepare, setup_django
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction


def _date(field: str) -> Any:
    def parse(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{field}: {text!r} is not a date "
                                             "(YYYY-MM-DD)") from exc

    return parse


def _summary(data: dict[str, Any]) -> str:
    def pct(p: dict[str, Any]) -> str:
        if p["proportion"] is None:
            return "—"
        return (f"{100 * p['proportion']:.0f}% ({p['k']}/{p['n']}; 95% CI "
                f"{100 * p['ci_low']:.0f}–{100 * p['ci_high']:.0f}%)")

    lines = [f"Outcome report: {data['n_series']} series of {data['n_patients']} patients "
             f"(filters: {json.dumps({k: v for k, v in data['filters'].items() if v})})"]
    for k, p in data["responders"]["responders"].items():
        lines.append(f"  responders >= {k}%: {pct(p)}")
    imm = data["immediate_response"]
    for k, p in imm["at_least_percent"].items():
        lines.append(f"  immediate response >= {k}% (per infusion): {pct(p)}")
    for key, by in (("relief_by_diagnosis", "diagnosis"), ("relief_by_protocol", "protocol")):
        for group, c in data[key]["curves"].items():
            median = "not reached" if c["median_days"] is None else f"{c['median_days']:g} d"
            lines.append(f"  relief by {by} {group}: n={c['n']}, lost {c['events']}, "
                         f"median {median}")
    for group, m in data["pain_change_by_diagnosis"].items():
        if m["mean"] is not None:
            lines.append(f"  mean pain change {group}: {m['mean']:+.2f} NRS (n={m['n']})")
    ae = data["adverse_events"]
    if ae["per_session"] is not None:
        lines.append(f"  adverse events: {ae['events']} in {ae['sessions']} sessions "
                     f"({ae['per_session']:.3f} per session)")
    op = data["opioids"]
    if op["n"]:
        lines.append(f"  opioids: {op['mean_before_mme']:.1f} -> {op['mean_after_mme']:.1f} "
                     f"MME/day (n={op['n']})")
    lines.append(f"  loss of response: below {data['loss_of_response']['percent']:g}% "
                 f"({data['loss_of_response']['source']})")
    return "\n".join(lines)


def cmd_report_outcomes(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.accounts.models import Site
    from ketamine_clinic.web.audit.services import Actor, audit_record
    from ketamine_clinic.web.outcomes import exports
    from ketamine_clinic.web.outcomes.selectors import (
        DIAGNOSIS_GROUPS,
        CohortFilters,
        outcome_report_for,
    )

    sites = list(Site.objects.all())
    known = {s.code for s in sites}
    unknown = sorted(set(args.site) - known)
    if unknown:
        raise UsageError("--site", f"no site with code {', '.join(unknown)}")
    if args.diagnosis and args.diagnosis not in DIAGNOSIS_GROUPS:
        raise UsageError("--diagnosis", "must be crps or other")
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise UsageError("--to", "is before --from")
    filters = CohortFilters(sites=tuple(args.site), protocol=args.protocol,
                            diagnosis=args.diagnosis, date_from=args.date_from,
                            date_to=args.date_to)
    report = outcome_report_for([s.pk for s in sites], filters)
    data = report.to_dict()
    audit_record(actor=Actor(user=None, client_address="cli"), action=AuditAction.OUTCOMES_REPORT,
                 detail={"filters": filters.to_dict(), "series": data["n_series"],
                         "format": "json" if args.json else "csv" if args.csv
                         else "pdf" if args.pdf else "text"})
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        text = exports.report_csv(data)
        if str(args.csv) == "-":
            sys.stdout.write(text)
        else:
            args.csv.write_text(text)
            print(f"Wrote {args.csv}")
    elif args.pdf:
        args.pdf.write_bytes(exports.report_pdf(data, title="Outcome report"))
        print(f"Wrote {args.pdf}")
    else:
        print(_summary(data))
    return 0


def cmd_cohort_generate(args: argparse.Namespace) -> int:
    if args.patients < 1:  # before any set-up, so that a typing slip answers at once
        raise UsageError("--patients", "must be at least 1")
    prepare(args.data_dir, verbose=False, pages=False)
    from ketamine_clinic.web.accounts.models import Site
    from ketamine_clinic.web.outcomes.cohort_loader import load_synthetic_cohort

    sites = list(Site.objects.filter(code__in=args.site)) if args.site else list(
        Site.objects.order_by("code"))
    if args.site and len(sites) != len(set(args.site)):
        missing = sorted(set(args.site) - {s.code for s in sites})
        raise UsageError("--site", f"no site with code {', '.join(missing)}")
    if not sites:
        raise UsageError("--site", "there is no clinic site yet (run the demo or "
                                   "'ketamine-clinic site create' first)")
    summary = load_synthetic_cohort(
        n_patients=args.patients, seed=args.seed, sites=sites,
        protocols=args.protocol or None, detail=args.detail,
        progress=not args.quiet)
    print(f"Loaded {summary.patients} synthetic patients, {summary.series} series, "
          f"{summary.sessions} sessions, {summary.timeline_entries} timeline entries, "
          f"{summary.responses} follow-up answers at {', '.join(summary.sites)}.")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="clinic reports (outcomes)",
                       description="Clinic reports over --data-dir or DATABASE_URL.")
    report_sub = p.add_subparsers(dest="report_command", required=True)
    q = report_sub.add_parser(
        "outcomes", help="the cohort outcome report",
        description="Responders, duration of relief (Kaplan-Meier), pain change, adverse "
        "events and opioid change over the series in the database; the same numbers as "
        "the Outcomes page.")
    add_data_dir(q)
    q.add_argument("--site", action="append", default=[], help="site code; repeatable")
    q.add_argument("--protocol", default="", help="protocol name, e.g. clinic-standard")
    q.add_argument("--diagnosis", default="", help="crps or other")
    q.add_argument("--from", dest="date_from", type=_date("--from"), default=None,
                   help="series whose first infusion is on or after this date (YYYY-MM-DD)")
    q.add_argument("--to", dest="date_to", type=_date("--to"), default=None,
                   help="... and on or before this date")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--csv", type=Path, metavar="FILE", help='write CSV ("-" for stdout)')
    out.add_argument("--pdf", type=Path, metavar="FILE", help="write a PDF with the plots")
    q.set_defaults(func=cmd_report_outcomes)

    p = sub.add_parser("cohort", help="synthetic cohorts for demos and load tests",
                       description="Synthetic (fictional) cohorts.")
    cohort_sub = p.add_subparsers(dest="cohort_command", required=True)
    q = cohort_sub.add_parser(
        "generate", help="load a seeded synthetic cohort into the database",
        description="Generate a seeded synthetic cohort (series, sessions with pump "
        "histories and vital signs, follow-ups with relief and its loss, drop-outs, adverse "
        "events) and bulk-load it, with a progress bar. Fictional data only.")
    add_data_dir(q)
    q.add_argument("--patients", type=int, required=True, help="number of patients")
    q.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    q.add_argument("--site", action="append", default=[],
                   help="site code to spread the patients over; repeatable (default: all)")
    q.add_argument("--protocol", action="append", default=[],
                   help="stored protocol name the series use; repeatable "
                   "(default: the generator's)")
    q.add_argument("--detail", choices=["full", "outcomes"], default="full",
                   help="outcomes: leave out vital signs and sedation scores (faster)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_cohort_generate)
