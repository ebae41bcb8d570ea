"""Database triggers that refuse UPDATE and DELETE on the stock ledger's append-only tables.

As for the audit trail: the hash chain exposes what gets past them; PostgreSQL's TRUNCATE
(test flushes) does not fire them; on SQLite a flush removes them first (tests/conftest).
"""

from __future__ import annotations

from typing import Any

TABLES = ("stock_ledgerentry", "stock_receipt", "stock_count", "stock_inventory",
          "stock_discrepancynote", "stock_losscaseevent")


def _sqlite(table: str) -> tuple[list[str], list[str]]:
    install = [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'stock records are append-only'); END;""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'stock records are append-only'); END;""",
    ]
    remove = [f"DROP TRIGGER IF EXISTS {table}_no_update;",
              f"DROP TRIGGER IF EXISTS {table}_no_delete;"]
    return install, remove


def _postgres(table: str) -> tuple[list[str], list[str]]:
    install = [f"""CREATE OR REPLACE TRIGGER {table}_append_only
                   BEFORE UPDATE OR DELETE ON {table}
                   FOR EACH ROW EXECUTE FUNCTION stock_append_only();"""]
    remove = [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"]
    return install, remove


def statements(vendor: str, which: str) -> list[str]:
    if vendor == "postgresql":
        head = {"install": ["""CREATE OR REPLACE FUNCTION stock_append_only() RETURNS trigger
                               AS $$ BEGIN RAISE EXCEPTION 'stock records are append-only';
                               END; $$ LANGUAGE plpgsql;"""], "remove": []}[which]
        tail = [] if which == "install" else ["DROP FUNCTION IF EXISTS stock_append_only();"]
        body = [s for t in TABLES for s in _postgres(t)[0 if which == "install" else 1]]
        return [*head, *body, *tail]
    if vendor == "sqlite":
        return [s for t in TABLES for s in _sqlite(t)[0 if which == "install" else 1]]
    return []


def install_triggers(connection: Any) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, "install"):
            cursor.execute(sql)


def remove_triggers(connection: Any) -> None:
    with connection.cursor() as cursor:
        for sql in statements(connection.vendor, "remove"):
            cursor.execute(sql)
