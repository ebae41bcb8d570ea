"""The session API's behaviour: monitors posting vital signs, retries, errors that name
fields; and concurrent writers on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.models import TimelineEntry
from tests.web.sessions.conftest import VITALS, Walk, key


def post(client: Client, user: Any, path: str, body: dict[str, Any], **headers: Any) -> Any:
    _, raw = ApiToken.issue(user)
    return client.post(f"/api/v1{path}", data=json.dumps(body),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}",
                       **headers)


def test_a_monitor_posts_vital_signs_and_a_retry_creates_no_duplicate(
        walk: Walk, client: Client) -> None:
    walk.infusing()
    body = {**VITALS, "systolic_bp_mmhg": 191, "idempotency_key": "mon-7-0001",
            "occurred_at": walk.at(45).isoformat()}
    first = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/vitals", body,
                 HTTP_X_DEVICE_ID="bedside-monitor-7")
    assert first.status_code == 201, first.content
    again = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/vitals", body,
                 HTTP_X_DEVICE_ID="bedside-monitor-7")
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"]
    entry = TimelineEntry.objects.get(pk=first.json()["id"])
    assert entry.device_id == "bedside-monitor-7"
    assert TimelineEntry.objects.filter(session=walk.s, kind="vitals").count() == 2
    # The high pressure raised its two alarms (above the limit, risen over the baseline),
    # once each.
    assert sorted(walk.s.alarms.values_list("kind", flat=True)) == ["vital_high", "vital_rise"]


@pytest.mark.parametrize(("change", "field"), [
    ({"spo2_percent": 140}, "spo2_percent"),
    ({"spo2_percent": "high"}, "spo2_percent"),
    ({"occurred_at": "2026-11-25T09:00:00"}, "occurred_at"),
    ({"occurred_at": "2099-01-01T09:00:00Z"}, "occurred_at"),
    ({"idempotency_key": ""}, "idempotency_key"),
])
def test_bad_vital_signs_get_an_error_naming_the_field_and_nothing_is_recorded(
        walk: Walk, client: Client, change: dict[str, Any], field: str) -> None:
    walk.infusing()
    before = TimelineEntry.objects.count()
    body = {**VITALS, "idempotency_key": key(), **change}
    response = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/vitals", body)
    assert response.status_code in (400, 422)
    assert response.json()["errors"][0]["field"] == field
    assert TimelineEntry.objects.count() == before


def test_the_session_reads_back_its_state_dose_and_alarms(walk: Walk, client: Client) -> None:
    walk.infusing()
    walk.observe("vitals", 40, **{**VITALS, "spo2_percent": 90})
    _, raw = ApiToken.issue(walk.c.cast.erin)
    data = client.get(f"/api/v1/sessions/{walk.s.pk}",
                      HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert data["state"] == "infusing"
    assert data["totals"]["current_rate_mg_per_h"] == 60
    assert {a["kind"] for a in data["alarms"]} >= {"vital_low"}
    assert data["protocol"] == {"name": "clinic-standard",
                                "version": str(walk.c.protocol_version.version)}
    timeline = client.get(f"/api/v1/sessions/{walk.s.pk}/timeline",
                          HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert [e["kind"] for e in timeline][:2] == ["check_in", "vitals"]


def test_a_conflicting_transition_over_the_api_is_refused_with_the_reason(
        walk: Walk, client: Client) -> None:
    walk.infusing()
    walk.s.refresh_from_db()
    seen = walk.s.version
    ok = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/events",
              {"event": "pause", "expected_version": seen, "idempotency_key": key()})
    assert ok.status_code == 201
    late = post(client, walk.c.cast.alice, f"/sessions/{walk.s.pk}/events",
                {"event": "stop", "expected_version": seen, "idempotency_key": key()})
    assert late.status_code == 400
    error = late.json()["errors"][0]
    assert error["field"] == "expected_version"
    assert "now paused" in error["message"]


# --------------------------------------------------------------------------- PostgreSQL

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent writers need PostgreSQL (row locks between connections); SQLite "
           "serialises every write to the whole file")


def _together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs at the same moment, each on its own connection; results or errors."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        from django.db import connections

        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:  # the test inspects what each writer got
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@postgres_only
def test_two_nurses_charting_at_once_lose_nothing(transactional_db: Any, walk: Walk) -> None:
    walk.infusing()
    alice = walk.c.actor(walk.c.cast.alice)
    results = _together(
        *(lambda i=i: services.session_observe(
            actor=walk.nurse if i % 2 else alice, session=walk.s, kind="vitals",
            data={**VITALS, "heart_rate_per_min": 70 + i}, idempotency_key=f"w{i}")
          for i in range(6)))
    assert all(isinstance(r, services.Written) for r in results), results
    rates = sorted(e.payload["heart_rate_per_min"] for e in
                   TimelineEntry.objects.filter(session=walk.s, kind="vitals"))
    assert rates == sorted([*range(70, 76), VITALS["heart_rate_per_min"]])


@postgres_only
def test_a_set_decided_before_the_lock_counts_the_entry_of_the_writer_it_waited_for(
        transactional_db: Any, walk: Walk) -> None:
    """A statement on PostgreSQL reads with the snapshot taken when it began: the stamp
    compared under the lock is read after the lock is granted, so an entry committed by the
    writer that held the lock is counted and the early decision does not stand."""
    from django.db import connections, transaction
    from django.utils import timezone

    from ketamine_clinic.clinical.bedside import decisions as cmd
    from ketamine_clinic.web.sessions import selectors
    from ketamine_clinic.web.sessions.models import InfusionSession

    walk.infusing()
    bob = walk.c.cast.bob
    session = selectors.session_get_for_write(bob, walk.s.pk, walk.c.actor(bob))
    early = services._decided_early(session, timezone.now(),
                                    cmd.Observe(walk.at(39), "vitals", dict(VITALS)))
    assert early is not None
    holding, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        try:
            with transaction.atomic():
                InfusionSession.objects.select_for_update().get(pk=walk.s.pk)
                TimelineEntry.objects.create(session_id=walk.s.pk, kind="vitals",
                                             occurred_at=walk.at(38), recorded_by=bob,
                                             payload=dict(VITALS))
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert holding.wait(10)
    threading.Timer(1.0, release.set).start()  # commits while the check below waits
    try:
        with transaction.atomic():
            assert not services._locked_as_read(session, early, None)[0]
    finally:
        release.set()
        writer.join()


@postgres_only
def test_two_conflicting_transitions_at_once_one_wins_and_the_other_is_told_why(
        transactional_db: Any, walk: Walk) -> None:
    walk.infusing()
    walk.s.refresh_from_db()
    seen = walk.s.version
    alice = walk.c.actor(walk.c.cast.alice)
    results = _together(
        lambda: services.session_event(actor=walk.nurse, session=walk.s, event="pause",
                                       expected_version=seen, idempotency_key=key()),
        lambda: services.session_event(actor=alice, session=walk.s, event="stop",
                                       expected_version=seen, idempotency_key=key()))
    wins = [r for r in results if isinstance(r, services.Written)]
    losses = [r for r in results if isinstance(r, UsageError)]
    assert len(wins) == 1, results
    assert len(losses) == 1, results
    assert losses[0].field == "expected_version"
    assert "changed since you loaded it" in losses[0].problem
    assert walk.state() in ("paused", "stopped")


@postgres_only
def test_the_same_retry_arriving_twice_at_once_is_recorded_once(transactional_db: Any,
                                                                walk: Walk) -> None:
    walk.infusing()
    results = _together(*(lambda: services.session_observe(
        actor=walk.nurse, session=walk.s, kind="note", data={"text": "retry"},
        idempotency_key="same-key") for _ in range(4)))
    assert all(isinstance(r, services.Written) for r in results), results
    assert len({r.entry.pk for r in results}) == 1
    assert TimelineEntry.objects.filter(session=walk.s, kind="note").count() == 1


def test_a_rate_refused_through_the_api_with_a_key_keeps_its_limit_decision_and_audit(
        walk: Walk, client: Client) -> None:
    """A refused rate leaves its limit decision for quality review and its refusal in the
    audit trail, also when the monitor sends an idempotency key (whose transaction must not
    take them back); nothing is charted and the key is not spent, so a corrected retry is
    judged afresh."""
    from ketamine_clinic.web.audit.models import AuditEntry
    from ketamine_clinic.web.orders.models import LimitEvent

    walk.infusing()
    charted = TimelineEntry.objects.filter(session=walk.s).count()
    same_key = key()
    body = {"rate": "150 mg/h", "occurred_at": walk.at(60).isoformat(),
            "idempotency_key": same_key}
    refused = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/rate", body)
    assert refused.status_code == 400, refused.content
    assert "above the hard limit" in refused.content.decode()
    assert TimelineEntry.objects.filter(session=walk.s).count() == charted
    assert LimitEvent.objects.filter(session_id_value=walk.s.pk, outcome="blocked",
                                     quantity="rate_mg_per_h").exists()
    assert AuditEntry.objects.filter(action="session.refused", object_id=str(walk.s.pk)).exists()
    again = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/rate", body)
    assert again.status_code == 400
    assert LimitEvent.objects.filter(session_id_value=walk.s.pk, outcome="blocked",
                                     quantity="rate_mg_per_h").count() == 2
