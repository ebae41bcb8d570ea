"""The audit trail: every read and write recorded; tampering detected."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.cli import main
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor, audit_record, audit_seal, audit_verify
from ketamine_clinic.web.audit.triggers import remove_triggers


def test_reading_a_patient_page_is_recorded_with_who_where_and_what(cast: Any,
                                                                     client: Client) -> None:
    client.force_login(cast.bob)
    client.get(reverse("patient_detail", args=[cast.ana.pk]), REMOTE_ADDR="10.1.2.3")
    e = AuditEntry.objects.filter(action="patient.view").last()
    assert e is not None
    assert (e.username, e.role, e.site_code, e.object_id, e.client_address) == (
        "bob", "nurse", "denver", str(cast.ana.pk), "10.1.2.3")


def test_searches_and_writes_are_recorded(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    client.get(reverse("patient_list") + "?q=Ruiz")
    client.post(reverse("measurement_add", args=[cast.ana.pk]), {
        "kind": "weight_kg", "value_number": "70",
        "measured_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    actions = list(AuditEntry.objects.filter(username="bob").values_list("action", flat=True))
    assert "patient.search" in actions
    assert "measurement.record" in actions


def test_the_chain_verifies_when_untouched(cast: Any) -> None:
    for i in range(5):
        audit_record(actor=Actor(user=cast.erin), action=AuditAction.SITE_CREATE, detail={"i": i})
    report = audit_verify()
    assert report.ok
    assert report.entries == AuditEntry.objects.count()
    assert report.pending == report.entries  # not sealed yet, each MAC checked
    audit_seal()
    report = audit_verify()
    assert report.ok, report.problems
    assert (report.sealed, report.pending, report.checkpoints) == (
        AuditEntry.objects.count(), 0, 1)


def test_the_database_refuses_to_update_or_delete_an_entry(cast: Any) -> None:
    entry = AuditEntry.objects.first()
    assert entry is not None
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()


def test_the_cli_verifies_and_names_the_broken_entry(cast: Any, capsys: Any) -> None:
    assert main(["audit", "seal"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "Audit trail intact" in capsys.readouterr().out
    remove_triggers(connection)
    target = AuditEntry.objects.select_related("link").order_by("id")[1]
    with connection.cursor() as cur:
        cur.execute("UPDATE audit_auditentry SET client_address = %s WHERE id = %s",
                    ["203.0.113.9", target.pk])
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"entry {target.link.seq}: content altered" in out
    assert "trigger audit_entry" in out


def test_auditors_can_filter_the_trail_by_user_and_action(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    client.get(reverse("patient_detail", args=[cast.ana.pk]))
    client.force_login(cast.erin)
    response = client.get(reverse("audit_list"), {"username": "bob", "action": "patient."})
    rows = list(response.context["page"])
    assert rows
    assert all(r.username == "bob" and r.action.startswith("patient.") for r in rows)


def test_the_trail_page_can_run_the_chain_check(cast: Any, client: Client) -> None:
    client.force_login(cast.dave)
    response = client.get(reverse("audit_list"), {"verify": "1"})
    assert "chain intact" in response.content.decode()
