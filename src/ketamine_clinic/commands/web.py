"""Commands that run or administer the web app: demo, serve, worker, createuser, site, token.
(The audit trail, backup and restore: ``commands/audit.py``.)"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import getpass
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime

from ketamine_clinic.commands.django_setup import add_data_dir, prepare, setup_django
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction


def _serve(port: int, host: str, workers: int) -> int:
    """Run gunicorn (a production WSGI server) in this process, in the foreground."""
    from ketamine_clinic.web.server import serve

    print(f"Serving on http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    return serve(host=host, port=port, workers=workers)


def cmd_demo(args: argparse.Namespace) -> int:
    prepare(args.data_dir)
    from ketamine_clinic.web.demo import DEMO_PASSWORD, demo_logins, load_demo_data

    created = load_demo_data()
    print("Demo data loaded." if created else "Demo data already present; left as it is.")
    for hook in DEMO_HOOKS:
        hook(args)
    print(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for username, role, sites in demo_logins():
        print(f"  {username:<14} {role:<24} {sites}")
    if args.no_serve:
        return 0
    # The demo runs its own job worker beside the web server (reminders, exports and long
    # simulations are jobs); in production `worker` runs as a service of its own.
    worker = subprocess.Popen([sys.executable, "-m", "ketamine_clinic.cli", "worker"],
                              env=os.environ.copy())
    print(f"Job worker started (pid {worker.pid}).", flush=True)
    try:
        return _serve(args.port, args.host, args.workers)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


# Later capabilities add demo content here (e.g. a synthetic cohort): f(args) -> None.
DEMO_HOOKS: list[Callable[[argparse.Namespace], None]] = []


def _demo_screenings(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.protocols.demo import demo_screenings

    count = demo_screenings()
    if count:
        print(f"Screened {count} demo patients against the clinic's protocol.")


DEMO_HOOKS.append(_demo_screenings)


def _demo_sessions(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.sessions.demo import demo_sessions

    count = demo_sessions()
    if count:
        print(f"Charted {count} demo infusion sessions today (see Chairs).")


DEMO_HOOKS.append(_demo_sessions)


def _demo_scheduling(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.scheduling.demo import demo_scheduling

    count = demo_scheduling()
    if count:
        print(f"Set up demo chairs and opening hours; booked {count} visits (see Calendar).")


DEMO_HOOKS.append(_demo_scheduling)


def _demo_reminders(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.reminders.demo import demo_contact_consents

    count = demo_contact_consents()
    if count:
        print(f"Recorded email consent for {count} demo patients; their reminders print "
              "in the worker's output when due.")


DEMO_HOOKS.append(_demo_reminders)


def _demo_synthetic_cohort(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.outcomes.demo import demo_cohort

    demo_cohort(getattr(args, "patients", 80))


DEMO_HOOKS.append(_demo_synthetic_cohort)


def _demo_stock(args: argparse.Namespace) -> None:
    from ketamine_clinic.web.stock.demo import demo_stock

    count = demo_stock()
    if count:
        print(f"Wrote a demo ketamine stock history ({count} ledger entries; see Stock).")


DEMO_HOOKS.append(_demo_stock)


def cmd_migrate(args: argparse.Namespace) -> int:
    """The deploy step: apply migrations and collect static files, once per release."""
    prepare(args.data_dir)
    print("Static files collected. Start (or restart) the server with `ketamine-clinic "
          "serve`.")
    return 0


def pending_migrations() -> list[str]:
    """Migrations not yet applied to the database, as ``app.name`` (reads the migration
    files and the applied-migrations table; applies nothing)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _ in plan]


def cmd_serve(args: argparse.Namespace) -> int:
    # No migrate or collectstatic here (that is `ketamine-clinic migrate`, run once at
    # deploy): a restarted server answers within seconds. It refuses to start on a
    # database that the code's migrations have not reached.
    setup_django(args.data_dir)
    pending = pending_migrations()
    if pending:
        raise UsageError("database", f"{len(pending)} migration(s) not applied (first: "
                                     f"{pending[0]}): run `ketamine-clinic migrate`, then "
                                     "serve again")
    from ketamine_clinic.web.lib.compression import static_manifest  # needs Django set up

    if not static_manifest().exists():  # every page names its files by the manifest's hashes
        raise UsageError("static files", f"not collected (no {static_manifest()}): run "
                                         "`ketamine-clinic migrate`, then serve again")
    return _serve(args.port, args.host, args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.lib.jobs import run_due_jobs, run_worker
    from ketamine_clinic.web.reminders.tasks import followup_sweep_ensure

    if args.once:
        count = run_due_jobs(queues=args.queues)
        print(f"Ran {count} due job(s).")
        return 0
    followup_sweep_ensure()  # the hourly follow-up-link sweep queues its own next run
    print(f"Job worker running on queues {args.queues} (Ctrl-C to stop).", flush=True)
    run_worker(queues=args.queues, interval_s=args.interval)
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from ketamine_clinic.web.accounts.models import Site, User
    from ketamine_clinic.web.accounts.roles import Role
    from ketamine_clinic.web.audit.services import Actor, audit_record

    if args.role not in Role.values:
        raise UsageError("--role", f"must be one of {', '.join(Role.values)}")
    sites = list(Site.objects.filter(code__in=args.site))
    missing = set(args.site) - {s.code for s in sites}
    if missing:
        raise UsageError("--site", f"no site with code {', '.join(sorted(missing))}")
    if User.objects.filter(username=args.username).exists():
        raise UsageError("--username", f"{args.username} already exists")
    password = os.environ.get("KETAMINE_CLINIC_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise UsageError("password", "set KETAMINE_CLINIC_PASSWORD or run in a terminal")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise UsageError("password", "the two entries differ")
    candidate = User(username=args.username, first_name=args.first_name,
                     last_name=args.last_name)
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise UsageError("password", " ".join(exc.messages)) from exc
    with transaction.atomic():
        user = User.objects.create_user(
            username=args.username, password=password, role=args.role,
            first_name=args.first_name, last_name=args.last_name, title=args.title)
        user.sites.set(sites)
        audit_record(actor=Actor(user=None, client_address="cli"), action=AuditAction.STAFF_CREATE,
                     object_type="user", object_id=user.pk,
                     detail={"username": user.username, "role": user.role,
                             "sites": [s.code for s in sites]})
    print(f"Created {user.username} ({Role(user.role).label}) at {', '.join(args.site)}.")
    return 0


def cmd_site_create(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.accounts.models import Site
    from ketamine_clinic.web.audit.services import Actor, audit_record

    if Site.objects.filter(code=args.code).exists():
        raise UsageError("--code", f"site {args.code} already exists")
    site = Site.objects.create(code=args.code, name=args.name, address=args.address)
    audit_record(actor=Actor(user=None, client_address="cli"), action=AuditAction.SITE_CREATE,
                 object_type="site", object_id=site.pk, detail={"code": site.code})
    print(f"Created site {site.code}: {site.name}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from django.utils import timezone

    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.accounts.tokens import token_issue
    from ketamine_clinic.web.audit.services import Actor

    user = User.objects.filter(username=args.username, is_active=True).first()
    if user is None:
        raise UsageError("--username", f"no active user {args.username}")
    try:
        token, raw = token_issue(actor=Actor(user=None, client_address="cli"), user=user,
                                 label=args.label, days=args.days)
    except UsageError as exc:
        raise UsageError(f"--{exc.field}", exc.problem) from exc
    print(raw)
    assert token.expires_at is not None
    print(f"API token {token.prefix}… for {user.username}, valid until "
          f"{timezone.localtime(token.expires_at):%Y-%m-%d %H:%M %Z}.", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from django.utils import timezone

    from ketamine_clinic.web.accounts.models import ApiToken
    from ketamine_clinic.web.accounts.tokens import token_status

    qs = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
    if args.username:
        qs = qs.filter(user__username=args.username)
    if not args.all:
        qs = qs.filter(revoked_at__isnull=True)

    def when(t: datetime | None) -> str:
        return "—" if t is None else f"{timezone.localtime(t):%Y-%m-%d %H:%M}"

    rows = [(f"{t.prefix}…", t.user.username, t.scope, token_status(t), when(t.created_at),
             when(t.last_used_at), when(t.expires_at), t.label) for t in qs]
    head = ("token", "user", "scope", "status", "created", "last used", "expires", "label")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    if not rows:
        print("(no tokens)")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.accounts.tokens import token_find, token_revoke
    from ketamine_clinic.web.audit.services import Actor

    try:
        token = token_revoke(actor=Actor(user=None, client_address="cli"),
                             token=token_find(args.prefix))
    except UsageError as exc:
        raise UsageError("PREFIX", exc.problem) from exc
    print(f"Revoked token {token.prefix}… of {token.user.username}.")
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["ketamine-clinic manage", *args.rest])
    return 0


def _serve_options(p: argparse.ArgumentParser, default_port: int) -> None:
    p.add_argument("--port", type=int, default=default_port, help="TCP port (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="create the database, load demo data and serve the app",
                       description="Create the database (SQLite in --data-dir unless "
                       "DATABASE_URL is set), apply migrations, load fictional demo data once, "
                       "print the demo logins and serve the app.")
    add_data_dir(p)
    _serve_options(p, 8000)
    p.add_argument("--no-serve", action="store_true", help="prepare only; do not serve")
    p.add_argument("--patients", type=int, default=80,
                   help="synthetic patients for the outcome reports, loaded once "
                   "(default %(default)s; 0 for none)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="deploy step: apply migrations, collect static files",
                       description="Apply the database migrations and collect the static "
                       "files over --data-dir or DATABASE_URL. Run once after installing a "
                       "release, before `serve`.")
    add_data_dir(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="serve the app with gunicorn",
                       description="Serve the app with gunicorn over --data-dir or "
                       "DATABASE_URL. Refuses to start while migrations are pending: run "
                       "`ketamine-clinic migrate` first.")
    add_data_dir(p)
    _serve_options(p, 8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the background job worker",
                       description="Run the background jobs (reminders, exports, long "
                       "simulations) queued in the database, until stopped.")
    add_data_dir(p)
    p.add_argument("--queues", default="*",
                   help="comma-separated queue names, or * for all (default %(default)s)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between polls when the queue is empty (default %(default)s)")
    p.add_argument("--once", action="store_true",
                   help="run the jobs that are due now, then exit")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("createuser", help="create a staff account",
                       description="Create a staff account. The password comes from the "
                       "KETAMINE_CLINIC_PASSWORD environment variable or a prompt.")
    add_data_dir(p)
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True,
                   help="physician, nurse, front_desk, clinic_admin or auditor")
    p.add_argument("--site", required=True, action="append",
                   help="site code; repeat for several sites")
    p.add_argument("--first-name", default="")
    p.add_argument("--last-name", default="")
    p.add_argument("--title", default="", help="e.g. MD, RN")
    p.set_defaults(func=cmd_createuser)

    p = sub.add_parser("site", help="manage clinic sites", description="Manage clinic sites.")
    site_sub = p.add_subparsers(dest="site_command", required=True)
    q = site_sub.add_parser("create", help="create a clinic site")
    add_data_dir(q)
    q.add_argument("--code", required=True, help="short slug, e.g. denver")
    q.add_argument("--name", required=True)
    q.add_argument("--address", default="")
    q.set_defaults(func=cmd_site_create)

    p = sub.add_parser("token", help="API tokens", description="Manage API tokens.")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    q = token_sub.add_parser("create", help="create an API token and print it once")
    add_data_dir(q)
    q.add_argument("--username", required=True)
    q.add_argument("--label", default="")
    q.add_argument("--days", type=int, default=None,
                   help="days the token is valid (default KETAMINE_CLINIC_API_TOKEN_DAYS, "
                   "90)")
    q.set_defaults(func=cmd_token_create)
    q = token_sub.add_parser("list", help="list tokens: prefix, user, status, last use, expiry")
    add_data_dir(q)
    q.add_argument("--username", default="", help="only this user's tokens")
    q.add_argument("--all", action="store_true", help="include revoked tokens")
    q.set_defaults(func=cmd_token_list)
    q = token_sub.add_parser("revoke", help="revoke a token by the prefix `token list` shows")
    add_data_dir(q)
    q.add_argument("prefix", metavar="PREFIX", help="e.g. kc_AbC12")
    q.set_defaults(func=cmd_token_revoke)

    p = sub.add_parser("manage", help="run a Django management command",
                       description="Run a Django management command against --data-dir.")
    add_data_dir(p)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
