"""Database triggers that keep the audit trail append-only.

Entries and links refuse UPDATE and DELETE; on PostgreSQL every audit table also refuses
TRUNCATE (which fires no row trigger). The head row may only be moved forward by the
sealer, never deleted. The keyed chain detects tampering by someone who drops these
triggers first; the triggers stop ordinary mistakes and ORM bulk updates from ever getting
that far. ``audit verify`` reports a missing trigger and ``migrate`` reinstalls them.
Test databases are flushed between transactional tests, so the test fixtures remove them
just before (``tests/conftest.py``).
"""

from __future__ import annotations

from typing import Any

ENTRY, LINK, HEAD = "audit_auditentry", "audit_auditlink", "audit_audithead"
MESSAGE = "audit entries are append-only"


def _sqlite_refuse(name: str, event: str, table: str) -> str:
    return (f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;")


SQLITE_TRIGGERS = {
    "audit_entry_no_update": (ENTRY, "UPDATE"),
    "audit_entry_no_delete": (ENTRY, "DELETE"),
    "audit_link_no_update": (LINK, "UPDATE"),
    "audit_link_no_delete": (LINK, "DELETE"),
    "audit_head_no_delete": (HEAD, "DELETE"),
}

# name -> (table, timing and event, FOR EACH ...)
POSTGRES_TRIGGERS = {
    "audit_entry_append_only": (ENTRY, "UPDATE OR DELETE", "ROW"),
    "audit_entry_no_truncate": (ENTRY, "TRUNCATE", "STATEMENT"),
    "audit_link_append_only": (LINK, "UPDATE OR DELETE", "ROW"),
    "audit_link_no_truncate": (LINK, "TRUNCATE", "STATEMENT"),
    "audit_head_no_delete": (HEAD, "DELETE", "ROW"),
    "audit_head_no_truncate": (HEAD, "TRUNCATE", "STATEMENT"),
}
def expected_triggers(vendor: str) -> set[str]:
    if vendor == "sqlite":
        return set(SQLITE_TRIGGERS)
    if vendor == "postgresql":
        return set(POSTGRES_TRIGGERS)
    return set()


def _install_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return [_sqlite_refuse(name, event, table)
                for name, (table, event) in SQLITE_TRIGGERS.items()]
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql;""",
            *(f"CREATE OR REPLACE TRIGGER {name} BEFORE {event} ON {table} "
              f"FOR EACH {each} EXECUTE FUNCTION audit_append_only();"
              for name, (table, event, each) in POSTGRES_TRIGGERS.items()),
        ]
    return []


def _remove_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name};" for name in SQLITE_TRIGGERS]
    if vendor == "postgresql":
        return [*(f"DROP TRIGGER IF EXISTS {name} ON {table};"
                  for name, (table, _e, _f) in POSTGRES_TRIGGERS.items()),
                "DROP FUNCTION IF EXISTS audit_append_only();",
                "DROP FUNCTION IF EXISTS audit_entry_append_only();"]
    return []


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install_triggers(connection: Any) -> None:
    _run(connection, _install_sql(connection.vendor))


def remove_triggers(connection: Any) -> None:
    _run(connection, _remove_sql(connection.vendor))


def installed_triggers(connection: Any) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            return set()
        return {str(row[0]) for row in cursor.fetchall()}


def missing_triggers(connection: Any) -> list[str]:
    return sorted(expected_triggers(connection.vendor) - installed_triggers(connection))
