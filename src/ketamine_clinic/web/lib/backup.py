"""Backup and restore of the clinic's database (docs/backup.md).

* SQLite: SQLite's online backup API (``sqlite3.Connection.backup``): a consistent copy
  while the app keeps running; restore copies the backup back page by page the same way.
* PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists``.

A backup file holds the whole database, the audit trail with its links and head included,
but not the audit key nor the checkpoint file (keep those apart from the backups). After a
restore, a ``restore`` line in the checkpoint file records the head the trail was put back
to, so that ``audit verify`` does not report the entries written after the backup as
removed; it still checks every checkpoint up to that head.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit import anchor
from ketamine_clinic.web.audit.models import AuditHead
from ketamine_clinic.web.audit.services import audit_seal

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    vendor: str
    size_bytes: int
    audit_head_seq: int


def _db() -> dict[str, Any]:
    return dict(settings.DATABASES["default"])


def _vendor() -> str:
    return str(connections["default"].vendor)


def _pg_env_and_args(db: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    env = os.environ.copy()
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = []
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    return env, args


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UsageError("backup", f"{name} was not found: install the PostgreSQL client "
                                   "programs (apt-get install postgresql-client)")
    return path


def _private(path: Path) -> None:
    path.chmod(0o600)


def backup(out: Path) -> BackupResult:
    """Seal the audit trail, then write a consistent copy of the whole database to ``out``."""
    head_seq = audit_seal().head_seq
    out = out.resolve()
    if out.exists():
        raise UsageError("backup", f"{out} exists already: choose a new file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    db = _db()
    vendor = _vendor()
    if vendor == "sqlite":
        connections["default"].close()
        source = sqlite3.connect(str(db["NAME"]))
        target = sqlite3.connect(str(out))
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
    elif vendor == "postgresql":
        env, args = _pg_env_and_args(db)
        subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", *args,
                        "--file", str(out), str(db["NAME"])], env=env, check=True)
    else:
        raise UsageError("backup", f"no backup for the {vendor} database")
    _private(out)
    return BackupResult(out, vendor, out.stat().st_size, head_seq)


def _check_sqlite_backup(path: Path) -> None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (result,) = con.execute("PRAGMA integrity_check").fetchone()
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    if result != "ok":
        raise UsageError("backup file", f"{path} is damaged (integrity check: {result})")
    if "django_migrations" not in tables or "audit_auditentry" not in tables:
        raise UsageError("backup file", f"{path} is not a ketamine-clinic database")


def restore(path: Path) -> int:
    """Replace the database's whole content with the backup at ``path``.

    Stop the server and the worker first. Returns the restored audit head's sequence
    number, which is recorded in the checkpoint file as a restore.
    """
    path = path.resolve()
    if not path.is_file():
        raise UsageError("backup file", f"{path} does not exist")
    magic = path.read_bytes()[:16]
    db = _db()
    vendor = _vendor()
    if vendor == "sqlite":
        if not magic.startswith(SQLITE_MAGIC):
            raise UsageError("backup file", f"{path} is not an SQLite backup (the database "
                                            "is SQLite)")
        _check_sqlite_backup(path)
        connections["default"].close()
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        target = sqlite3.connect(str(db["NAME"]))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        _private(Path(str(db["NAME"])))
    elif vendor == "postgresql":
        if not magic.startswith(PG_MAGIC):
            raise UsageError("backup file", f"{path} is not a pg_dump backup (the database "
                                            "is PostgreSQL)")
        connections["default"].close()
        env, args = _pg_env_and_args(db)
        subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
                        "--single-transaction", "--exit-on-error", *args,
                        "--dbname", str(db["NAME"]), str(path)], env=env, check=True)
    else:
        raise UsageError("backup file", f"no restore for the {vendor} database")
    head = AuditHead.objects.filter(pk=1).first()
    seq, hash_ = (head.seq, head.hash) if head else (0, "")
    anchor.append(settings.AUDIT_CHECKPOINTS, settings.AUDIT_KEY, seq=seq, hash_=hash_,
                  kind="restore")
    for hook in settings.CHAIN_RESTORED:  # the other chains (the stock ledger) say so too
        import_string(hook)()
    return seq
