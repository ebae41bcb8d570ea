"""Database triggers that refuse UPDATE and DELETE on the audit trail.

The hash chain detects tampering; the triggers stop ordinary mistakes (and ORM bulk
updates) from ever getting that far. PostgreSQL's TRUNCATE does not fire row triggers, so
a test database can still be flushed there; on SQLite a flush must remove them first.
"""

from __future__ import annotations

from typing import Any

SQL = {
    "sqlite": {
        "install": [
            """CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE
               ON audit_auditentry
               BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;""",
            """CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE
               ON audit_auditentry
               BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;""",
        ],
        "remove": [
            "DROP TRIGGER IF EXISTS audit_entry_no_update;",
            "DROP TRIGGER IF EXISTS audit_entry_no_delete;",
        ],
    },
    "postgresql": {
        "install": [
            """CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
               BEGIN RAISE EXCEPTION 'audit entries are append-only'; END;
               $$ LANGUAGE plpgsql;""",
            """CREATE OR REPLACE TRIGGER audit_entry_append_only
               BEFORE UPDATE OR DELETE ON audit_auditentry
               FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();""",
        ],
        "remove": [
            "DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;",
            "DROP FUNCTION IF EXISTS audit_entry_append_only();",
        ],
    },
}


def _run(connection: Any, which: str) -> None:
    statements = SQL.get(connection.vendor, {}).get(which, [])
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install_triggers(connection: Any) -> None:
    _run(connection, "install")


def remove_triggers(connection: Any) -> None:
    _run(connection, "remove")
