"""Commands for the audit trail (verify, seal) and for backup and restore (docs/audit.md,
docs/backup.md)."""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from ketamine_clinic.commands.django_setup import add_data_dir, setup_django
from ketamine_clinic.errors import UsageError


def cmd_audit_verify(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.audit.services import audit_verify

    report = audit_verify()
    if report.ok:
        print(f"Audit trail intact: {report.entries} entries verified "
              f"({report.sealed} in the chain, {report.pending} awaiting the sealer), "
              f"{report.checkpoints} checkpoint(s) outside the database matched.")
    else:
        print(f"Audit trail BROKEN: {len(report.problems)} problem(s) in "
              f"{report.entries} entries.")
        for p in report.problems:
            print(f"  entry {p.seq}: {p.problem}" if p.seq else f"  {p.problem}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0 if report.ok else 1


def cmd_audit_seal(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.audit.services import audit_seal

    report = audit_seal(everything=args.all)
    print(f"Sealed {report.sealed} entries; the chain's head is entry {report.head_seq}.")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.lib.backup import backup

    out = args.file or Path(f"ketamine-clinic-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.backup")
    result = backup(out)
    print(f"Backed up the {result.vendor} database to {result.path} "
          f"({result.size_bytes / 1e6:.1f} MB; audit trail sealed up to entry "
          f"{result.audit_head_seq}).")
    print("Keep the audit key apart from the backups: verifying a restored trail needs it.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.audit.services import audit_verify
    from ketamine_clinic.web.lib.backup import restore

    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("--yes", "a restore replaces every record in the database: "
                                      "confirm with --yes")
        answer = input(f"Replace every record in the database with {args.file}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("Nothing restored.")
            return 1
    seq = restore(args.file)
    print(f"Restored {args.file}; the audit trail is back at entry {seq}.")
    report = audit_verify()
    if report.ok:
        print(f"Audit trail intact after the restore: {report.entries} entries verified.")
        return 0
    print(f"Audit trail BROKEN after the restore: {len(report.problems)} problem(s).")
    for p in report.problems:
        print(f"  entry {p.seq}: {p.problem}" if p.seq else f"  {p.problem}")
    return 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="audit trail", description="Audit trail tools.")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    q = audit_sub.add_parser(
        "verify", help="check the keyed chain, checkpoints and triggers; exit 1 if broken",
        description="Check every entry's HMAC, the chain's links, the head, the checkpoints "
        "kept outside the database and the append-only triggers. Exit 1 on any problem.")
    add_data_dir(q)
    q.set_defaults(func=cmd_audit_verify)
    q = audit_sub.add_parser(
        "seal", help="link new entries into the chain and write a checkpoint now",
        description="What the job worker does every few seconds: link the entries not yet "
        "in the chain and append a checkpoint of the new head to the checkpoint file.")
    add_data_dir(q)
    q.add_argument("--all", action="store_true",
                   help="look through the whole trail, not only new and recent entries")
    q.set_defaults(func=cmd_audit_seal)

    p = sub.add_parser("backup", help="write a consistent backup of the whole database",
                       description="Seal the audit trail, then copy the whole database: "
                       "SQLite through its online backup API (the app may keep running), "
                       "PostgreSQL with pg_dump --format=custom. See docs/backup.md.")
    add_data_dir(p)
    p.add_argument("file", nargs="?", type=Path, default=None,
                   help="backup file to create (default ketamine-clinic-<UTC time>.backup)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the database with a backup, then verify",
                       description="Replace every record with the backup's (stop the server "
                       "and the worker first), record the restore in the audit checkpoint "
                       "file and verify the audit trail. Exit 1 if the trail does not verify.")
    add_data_dir(p)
    p.add_argument("file", type=Path, help="a file written by ketamine-clinic backup")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_restore)
