"""Backup and restore round trip (issue 13, item 12), on the database the suite runs on:
after a restore every table holds exactly the rows it held at the backup, and the audit
trail verifies."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from ketamine_clinic.cli import main
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.models import AuditEntry, AuditLink
from ketamine_clinic.web.audit.services import Actor, audit_record, audit_verify


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    tables = sorted(connection.introspection.table_names())
    out = {}
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            out[table] = sorted(cur.fetchall(), key=repr)
    return out


def test_a_backup_restores_every_table_exactly_and_the_trail_verifies(
        transactional_db: Any, cast: Any, tmp_path: Path, capsys: Any) -> None:
    from ketamine_clinic.web.patients import services

    for i in range(5):
        audit_record(actor=Actor(user=cast.bob, site_code="denver"), action=AuditAction.SITE_CREATE,
                     detail={"i": i})
    file = tmp_path / "clinic.backup"
    assert main(["backup", str(file)]) == 0
    assert file.stat().st_mode & 0o077 == 0  # readable by the service user only
    at_backup = snapshot()
    assert at_backup["audit_auditlink"]  # the backup sealed the trail first
    assert len(at_backup["accounts_user"]) == 6

    # Life goes on after the backup: a new patient, more audit entries, a second seal.
    services.patient_register(
        actor=Actor(user=cast.carol), site=cast.denver, mrn="DEN-2", given_name="Bea",
        family_name="Lind", date_of_birth=date(1980, 1, 2), sex_at_birth="female")
    assert main(["audit", "seal"]) == 0
    assert snapshot() != at_backup

    capsys.readouterr()
    assert main(["restore", str(file), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Audit trail intact after the restore" in out
    after = snapshot()
    assert after.keys() == at_backup.keys()
    for table in at_backup:
        assert after[table] == at_backup[table], table
    report = audit_verify()
    assert report.ok, report.problems
    assert report.sealed == AuditLink.objects.count() == AuditEntry.objects.count()

    # The trail goes on from the restored head.
    audit_record(actor=Actor(user=cast.bob), action=AuditAction.SITE_CREATE)
    assert main(["audit", "seal"]) == 0
    assert audit_verify().ok


def test_restore_refuses_a_file_that_is_not_a_backup_of_this_kind_of_database(
        transactional_db: Any, tmp_path: Path, capsys: Any) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database")
    assert main(["restore", str(bogus), "--yes"]) == 2
    assert "is not a" in capsys.readouterr().err


def test_restore_asks_for_confirmation(transactional_db: Any, tmp_path: Path,
                                       capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "clinic.backup"
    assert main(["backup", str(file)]) == 0
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["restore", str(file)]) == 2
    assert "--yes" in capsys.readouterr().err


def test_the_stock_ledger_verifies_after_a_restore_to_an_older_head(
        transactional_db: Any, cast: Any, tmp_path: Path) -> None:
    """The ledger's checkpoints outside the database go on past the backup; the restore
    says so (a ``restore`` line per site), so the put-back ledger verifies."""
    from ketamine_clinic.web.stock import services as stock
    from tests.web.stock.conftest import SUPPLIER, _actor, register

    stock.ensure_default_grants()
    register(cast, cast.denver, "AF1234563")
    product = stock.product_create(actor=_actor(cast.dave), ndc="0143-9508-10",
                                   name="Ketamine hydrochloride", strength_mg_per_ml="50",
                                   container_volume_ml="10", rxnorm="")

    def receive(lot: str) -> None:
        stock.stock_receive(actor=_actor(cast.bob), site=cast.denver, product=product,
                            lot_number=lot, expires_on=date.today() + timedelta(days=300),
                            containers=2, invoice_number=f"INV-{lot}",
                            received_on=date.today(), **SUPPLIER)
        assert stock.stock_checkpoint() == 1

    receive("KX1")
    file = tmp_path / "clinic.backup"
    assert main(["backup", str(file)]) == 0
    receive("KX2")  # after the backup: checkpointed, then lost by the restore
    assert main(["restore", str(file), "--yes"]) == 0
    assert stock.stock_verify() == {"denver": []}
