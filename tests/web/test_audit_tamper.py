"""Tampering with the audit trail by someone who holds the database but not the audit key
(issue 13, item 3). Each case is first shown to succeed at the database level (with the
triggers dropped, as an attacker would), then shown to be caught by ``audit verify``.
The same tests run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.chain import entry_mac, link_hash
from ketamine_clinic.web.audit.models import AuditEntry, AuditHead, AuditLink
from ketamine_clinic.web.audit.services import Actor, audit_record, audit_seal, audit_verify
from ketamine_clinic.web.audit.triggers import missing_triggers, remove_triggers

WRONG_KEY = b"what an attacker without the audit key would have to guess"


@pytest.fixture
def chain(cast: Any) -> list[AuditLink]:
    """A sealed, checkpointed chain of the cast's entries plus six more."""
    for i in range(6):
        audit_record(actor=Actor(user=cast.erin, client_address="10.0.0.7"),
                     action=AuditAction.SITE_CREATE, detail={"i": i})
    audit_seal()
    assert audit_verify().ok
    return list(AuditLink.objects.select_related("entry").order_by("seq"))


def sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cur:
        cur.execute(statement, params or [])


def problems() -> list[str]:
    return [p.problem for p in audit_verify().problems]


def test_an_altered_entry_is_caught(chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    target = chain[2]
    sql("UPDATE audit_auditentry SET client_address = %s WHERE id = %s",
        ["203.0.113.9", target.entry_id])
    report = audit_verify()
    assert [(p.seq, "content altered" in p.problem) for p in report.problems
            if "trigger" not in p.problem] == [(target.seq, True)]


def test_an_altered_entry_with_every_later_hash_recomputed_without_the_key_is_caught(
        chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    target = chain[2]
    sql("UPDATE audit_auditentry SET username = %s WHERE id = %s", ["mallory", target.entry_id])
    entry = AuditEntry.objects.get(pk=target.entry_id)
    forged_mac = entry_mac(WRONG_KEY, entry.chain_content())
    sql("UPDATE audit_auditentry SET mac = %s WHERE id = %s", [forged_mac, entry.pk])
    prev = target.prev_hash
    for link in chain[2:]:  # relink from the altered entry to the head
        mac = AuditEntry.objects.get(pk=link.entry_id).mac
        h = link_hash(WRONG_KEY, prev_hash=prev, seq=link.seq, entry_id=link.entry_id, mac=mac)
        sql("UPDATE audit_auditlink SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, h, link.seq])
        prev = h
    sql("UPDATE audit_audithead SET hash = %s", [prev])
    found = audit_verify().problems
    assert {p.seq for p in found if "MAC mismatch" in p.problem} == {target.seq}
    assert {p.seq for p in found if "hash mismatch" in p.problem} == {
        link.seq for link in chain[2:]}


def test_a_deleted_entry_is_caught(chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    target = chain[3]
    sql("DELETE FROM audit_auditlink WHERE seq = %s", [target.seq])
    sql("DELETE FROM audit_auditentry WHERE id = %s", [target.entry_id])
    assert any(f"expected entry {target.seq}: missing" in p for p in problems())


def test_the_newest_entries_deleted_and_the_head_moved_back_are_caught(
        chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    keep = chain[-3]
    for link in chain[-2:]:
        sql("DELETE FROM audit_auditlink WHERE seq = %s", [link.seq])
        sql("DELETE FROM audit_auditentry WHERE id = %s", [link.entry_id])
    sql("UPDATE audit_audithead SET seq = %s, hash = %s", [keep.seq, keep.hash])
    found = problems()
    assert any(f"entries {keep.seq + 1} to {chain[-1].seq} were removed" in p for p in found)


def test_reordered_entries_are_caught(chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    a, b = chain[1], chain[2]
    # Swap the two links' places: each link now points at the other one's entry.
    free = 10**12
    sql("UPDATE audit_auditlink SET seq = %s WHERE seq = %s", [free, a.seq])
    sql("UPDATE audit_auditlink SET seq = %s WHERE seq = %s", [a.seq, b.seq])
    sql("UPDATE audit_auditlink SET seq = %s WHERE seq = %s", [b.seq, free])
    found = audit_verify().problems
    assert {p.seq for p in found if "hash mismatch" in p.problem} == {a.seq, b.seq}


def test_the_database_refuses_truncate_and_a_truncated_trail_is_caught(
        chain: list[AuditLink]) -> None:
    tables = "audit_auditlink, audit_auditentry, audit_audithead"
    # (SET CONSTRAINTS: the test's own transaction still has deferred foreign-key checks.)
    truncate = (["SET CONSTRAINTS ALL IMMEDIATE", f"TRUNCATE {tables}"]
                if connection.vendor == "postgresql" else
                [f"DELETE FROM {t}" for t in tables.split(", ")])  # SQLite has no TRUNCATE
    def run_all() -> None:
        for statement in truncate:
            sql(statement)

    with pytest.raises(DatabaseError), transaction.atomic():
        run_all()
    assert AuditLink.objects.count() == len(chain)

    remove_triggers(connection)
    for statement in truncate:
        sql(statement)
    assert AuditEntry.objects.count() == 0
    found = problems()
    assert any(f"entries 1 to {chain[-1].seq} were removed" in p for p in found)


def test_a_forged_entry_with_a_plain_hash_is_caught(chain: list[AuditLink]) -> None:
    at = datetime.now(UTC)
    content = {"at": at.isoformat(timespec="microseconds"), "nonce": secrets.token_hex(16),
               "user_id": None, "username": "alice", "role": "physician", "site_code": "denver",
               "action": "patient.view", "object_type": "patient", "object_id": "1",
               "client_address": "10.0.0.9", "detail": {}}
    plain = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    forged = AuditEntry.objects.create(
        at=at, nonce=content["nonce"], username="alice", role="physician", site_code="denver",
        action="patient.view", object_type="patient", object_id="1",
        client_address="10.0.0.9", detail={}, mac=plain)
    assert any(f"unsealed entry (id {forged.pk}) altered or forged" in p for p in problems())
    # Sealed by the real sealer (which trusts nothing it did not write), still caught.
    audit_seal()
    assert any("content altered or forged" in p for p in problems())


def test_a_forged_link_appended_after_the_head_is_caught(chain: list[AuditLink]) -> None:
    head = AuditHead.objects.get()
    entry = AuditEntry.objects.create(
        at=datetime.now(UTC), nonce=secrets.token_hex(16), username="alice",
        action="patient.view", detail={}, mac="0" * 64)
    entry.mac = entry_mac(WRONG_KEY, entry.chain_content())
    remove_triggers(connection)
    sql("UPDATE audit_auditentry SET mac = %s WHERE id = %s", [entry.mac, entry.pk])
    seq = head.seq + 1
    h = link_hash(WRONG_KEY, prev_hash=head.hash, seq=seq, entry_id=entry.pk, mac=entry.mac)
    AuditLink.objects.create(seq=seq, entry=entry, prev_hash=head.hash, hash=h)
    sql("UPDATE audit_audithead SET seq = %s, hash = %s", [seq, h])
    found = audit_verify().problems
    assert {p.seq for p in found if "forged" in p.problem} == {seq}


def test_dropped_triggers_are_reported_and_migrate_reinstalls_them(
        chain: list[AuditLink]) -> None:
    remove_triggers(connection)
    assert missing_triggers(connection)
    assert sum("trigger" in p for p in problems()) == len(missing_triggers(connection))
    call_command("migrate", verbosity=0)
    assert missing_triggers(connection) == []
    assert audit_verify().ok


def test_an_altered_or_forged_checkpoint_line_is_caught(chain: list[AuditLink]) -> None:
    path = settings.AUDIT_CHECKPOINTS
    line = json.loads(path.read_text().splitlines()[-1])
    line["seq"] = 1  # an attacker who removed all but the first entry would need this
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")
    assert any("checkpoint file line 2 is not a valid checkpoint" in p for p in problems())


def test_a_chain_without_its_checkpoint_file_is_reported(chain: list[AuditLink]) -> None:
    settings.AUDIT_CHECKPOINTS.unlink()
    assert any("no checkpoint file" in p for p in problems())


def test_an_entry_made_with_the_key_verifies_and_the_key_is_not_in_the_database(
        chain: list[AuditLink]) -> None:
    key = settings.AUDIT_KEY.decode()
    for model in (AuditEntry, AuditLink, AuditHead):
        for row in model.objects.values():
            assert key not in json.dumps(row, default=str)
