"""Who sees the audit trail, and what it costs to write (issue 13, items 4, 5 and 7)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor, audit_record, audit_verify


def test_a_single_site_administrator_sees_nothing_of_another_site(cast: Any,
                                                                   client: Client) -> None:
    client.force_login(cast.oscar)
    client.get(reverse("patient_detail", args=[cast.zed.pk]), REMOTE_ADDR="192.0.2.77")
    assert AuditEntry.objects.filter(site_code="boulder", username="oscar").exists()

    client.force_login(cast.dave)  # Denver only
    for query in ({"site_code": "boulder"}, {"username": "oscar"}):
        assert list(client.get(reverse("audit_list"), query).context["page"]) == [], query
    response = client.get(reverse("audit_list"))
    rows = list(response.context["page"])
    assert rows
    assert {r.site_code for r in rows} <= {"denver", ""}
    page = response.content.decode()
    assert "oscar" not in page
    assert "192.0.2.77" not in page


def test_an_auditor_of_every_site_also_sees_the_entries_of_no_site(cast: Any,
                                                                   client: Client) -> None:
    audit_record(actor=Actor(user=None, client_address="cli"), action="site.create")
    client.force_login(cast.erin)  # Denver only: not shown
    actions = {r.action for r in client.get(reverse("audit_list")).context["page"]}
    assert "site.create" not in actions
    cast.erin.sites.add(cast.boulder)
    actions = {r.action for r in client.get(reverse("audit_list")).context["page"]}
    assert "site.create" in actions


def test_recording_an_entry_is_one_insert_without_a_lock_on_a_shared_row(cast: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        audit_record(actor=Actor(user=cast.bob, client_address="10.0.0.1", site_code="denver"),
                     action="patient.view", object_type="patient", object_id=cast.ana.pk)
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 1
    assert statements[0].startswith("INSERT INTO")
    assert "audit_audithead" not in statements[0]


def test_anonymous_requests_write_a_bounded_number_of_entries_per_address(
        cast: Any, client: Client, settings: Any) -> None:
    settings.AUDIT_ANONYMOUS_PER_ADDRESS_PER_HOUR = 3
    for _ in range(10):
        assert client.get("/q/not-a-real-token/", REMOTE_ADDR="198.51.100.4").status_code == 404
    rows = list(AuditEntry.objects.filter(client_address="198.51.100.4").order_by("id")
                .values_list("action", "role"))
    assert rows == [("follow_up.link_refused", "anonymous")] * 3 + [
        ("audit.anonymous_suppressed", "anonymous")]
    client.get("/q/not-a-real-token/", REMOTE_ADDR="198.51.100.5")  # another address
    assert AuditEntry.objects.filter(client_address="198.51.100.5").count() == 1
    assert audit_verify().ok


def test_anonymous_requests_from_many_addresses_are_bounded_together(
        cast: Any, client: Client, settings: Any) -> None:
    settings.AUDIT_ANONYMOUS_PER_HOUR = 5
    for i in range(12):
        client.get("/q/not-a-real-token/", REMOTE_ADDR=f"198.51.100.{10 + i}")
    anonymous = AuditEntry.objects.filter(role="anonymous")
    assert anonymous.count() == 6
    assert anonymous.filter(action="audit.anonymous_suppressed").count() == 1


def test_a_failed_log_in_is_recorded_with_the_name_tried_and_no_password(
        cast: Any, client: Client) -> None:
    client.post(reverse("login"), {"username": "bob", "password": "not-bobs-password"},
                REMOTE_ADDR="203.0.113.50")
    client.post(reverse("login"), {"username": "nobody", "password": "guess-number-two"},
                REMOTE_ADDR="203.0.113.50")
    rows = list(AuditEntry.objects.filter(action="auth.login_failed").order_by("id"))
    assert [(r.detail["username"], r.client_address) for r in rows] == [
        ("bob", "203.0.113.50"), ("nobody", "203.0.113.50")]
    assert all("password" not in str(r.detail) for r in rows)


def test_the_fhir_audit_events_follow_the_same_site_rule(cast: Any, client: Client) -> None:
    client.post(reverse("login"), {"username": "zed.admin", "password": "a guess at it"},
                REMOTE_ADDR="203.0.113.60")  # a failed log-in: no site, no staff member
    client.force_login(cast.erin)  # auditor, Denver only
    response = client.get("/fhir/AuditEvent?_count=500")
    assert response.status_code == 200
    events = [e["resource"] for e in response.json().get("entry", [])]
    assert events
    assert all(e.get("agent", [{}])[0].get("network", {}).get("address") != "203.0.113.60"
               for e in events)
    assert not any(e["subtype"][0]["code"] == "auth.login_failed" for e in events)


def test_a_lockout_is_recorded(cast: Any, client: Client, settings: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        client.post(reverse("login"), {"username": "bob", "password": "still-not-it"},
                    REMOTE_ADDR="203.0.113.51")
    failed = AuditEntry.objects.filter(action="auth.login_failed",
                                       client_address="203.0.113.51")
    assert failed.count() == settings.AXES_FAILURE_LIMIT + 1
    locked = AuditEntry.objects.filter(action="auth.locked_out", client_address="203.0.113.51")
    assert locked.exists()  # (axes signals again on each attempt while locked)
    assert {e.detail["username"] for e in locked} == {"bob"}
