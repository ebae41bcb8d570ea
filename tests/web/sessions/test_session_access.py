"""Every session page and API endpoint, for every role and for Oscar (another site)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.sessions.models import Alarm, TimelineEntry
from tests.conftest import make_cast
from tests.web.access import (
    ALL,
    CLINICAL,
    ROLES,
    Page,
    assert_role_answer,
    built_once,
    call,
    fresh,
    page_id,
)
from tests.web.sessions.conftest import VITALS, Walk, build_clinic, key


def _alarm(w: Walk) -> Alarm:
    return Alarm.objects.filter(session=w.s).first()  # type: ignore[return-value]


PAGES: list[Page[Walk]] = [
    Page("board", "get", lambda w: reverse("session_board"), ALL, scoped=False),
    Page("session page", "get", lambda w: reverse("session_detail", args=[w.s.pk]), ALL),
    Page("live region", "get", lambda w: reverse("session_live", args=[w.s.pk]), ALL),
    Page("note", "post", lambda w: reverse("session_observe", args=[w.s.pk, "note"]),
         CLINICAL, lambda w, _u: {"text": "comfortable", "idempotency_key": key()}),
    Page("vitals", "post", lambda w: reverse("session_observe", args=[w.s.pk, "vitals"]),
         CLINICAL, lambda w, _u: {**VITALS, "idempotency_key": key()}),
    Page("rate", "post", lambda w: reverse("session_rate", args=[w.s.pk]), CLINICAL,
         lambda w, _u: {"rate": "60 mg/h", "idempotency_key": key()}),
    Page("pause", "post", lambda w: reverse("session_event", args=[w.s.pk, "pause"]),
         CLINICAL, lambda w, _u: {"idempotency_key": key()}),
    Page("correct form", "get",
         lambda w: reverse("session_correct", args=[w.s.pk, w.s.entries.first().pk]),
         CLINICAL),
    Page("alarm ack", "post",
         lambda w: reverse("session_alarm_ack", args=[w.s.pk, _alarm(w).pk]), CLINICAL,
         lambda w, _u: {"response": "seen"}),
    Page("recovery", "post", lambda w: reverse("session_recovery", args=[w.s.pk]), CLINICAL,
         lambda w, _u: {"score_name": "aldrete_modified_1995", "idempotency_key": key()}),
    Page("discharge", "post", lambda w: reverse("session_discharge", args=[w.s.pk]), CLINICAL,
         lambda w, _u: {"escort_name": "Luis", "idempotency_key": key()}),
    Page("discharge check", "post",
         lambda w: reverse("session_discharge_check", args=[w.s.pk]), CLINICAL,
         lambda w, _u: {"escort_name": "Luis"}),
]


@pytest.fixture(scope="module")
def busy_once(django_db_setup: None, django_db_blocker: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("sessions-access")):
        walk = Walk(build_clinic(make_cast()))
        walk.infusing()
        walk.observe("vitals", 40, **{**VITALS, "spo2_percent": 90})  # an alarm to ack
        yield walk


@pytest.fixture
def busy(busy_once: Walk, db: Any) -> Walk:
    """The running session, built once for the module (each case rolled back after it)."""
    return fresh(busy_once)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_session_pages_it_may(busy: Walk, client: Client,
                                                        page: Page[Walk], role: str) -> None:
    user = busy.c.cast.by_role()[role]
    client.force_login(user)
    # 400 is a refusal the page explains (e.g. discharge before recovery), not a denial.
    assert_role_answer(call(client, page, busy, user), role, page, (200, 302, 400))


@pytest.mark.parametrize("page", [p for p in PAGES if p.scoped], ids=page_id)
def test_a_nurse_of_another_site_sees_no_session_and_the_attempt_is_audited(
        busy: Walk, client: Client, page: Page[Walk]) -> None:
    before = TimelineEntry.objects.count()
    client.force_login(busy.c.cast.oscar)
    response = call(client, page, busy, busy.c.cast.oscar)
    assert response.status_code == 404
    assert TimelineEntry.objects.count() == before
    assert AuditEntry.objects.filter(username="oscar",
                                     action__endswith="access_denied").exists()


def test_the_board_of_another_site_does_not_list_the_session(busy: Walk,
                                                             client: Client) -> None:
    client.force_login(busy.c.cast.oscar)
    assert b"Ruiz" not in client.get(reverse("session_board")).content
    client.force_login(busy.c.cast.bob)
    page = client.get(reverse("session_board")).content.decode()
    assert "Ruiz" in page
    # The low saturation, and the vital signs now hours overdue.
    assert "2 unacknowledged" in page
    assert "overdue" in page


def test_every_page_read_is_audited(busy: Walk, client: Client) -> None:
    client.force_login(busy.c.cast.erin)
    # The live region first: a poll with no recent read of the session is audited.
    client.get(reverse("session_live", args=[busy.s.pk]))
    client.get(reverse("session_detail", args=[busy.s.pk]))
    actions = set(AuditEntry.objects.filter(username="erin").values_list("action", flat=True))
    assert {"session.view", "session.view_live"} <= actions


def _reads(user: Any, w: Walk) -> list[str]:
    return list(AuditEntry.objects.filter(
        username=user.username, object_type="session", object_id=str(w.s.pk),
        action__startswith="session.view").order_by("id").values_list("action", flat=True))


def test_polls_of_the_live_region_soon_after_a_read_write_no_new_entry(
        busy: Walk, client: Client) -> None:
    erin, bob = busy.c.cast.erin, busy.c.cast.bob
    client.force_login(erin)
    client.get(reverse("session_detail", args=[busy.s.pk]))
    for _ in range(3):  # the page polls every 15 s
        assert client.get(reverse("session_live", args=[busy.s.pk])).status_code == 200
    assert _reads(erin, busy) == ["session.view"]
    # Another user's recent read does not cover this one: Bob's first poll is audited.
    client.force_login(bob)
    client.get(reverse("session_live", args=[busy.s.pk]))
    client.get(reverse("session_live", args=[busy.s.pk]))
    assert _reads(bob, busy) == ["session.view_live"]
    # A full page load is always audited, however recent the last read.
    client.get(reverse("session_detail", args=[busy.s.pk]))
    assert _reads(bob, busy) == ["session.view_live", "session.view"]


def test_a_poll_after_the_window_is_audited_again(busy: Walk, client: Client,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from django.utils import timezone

    from ketamine_clinic.web.sessions.views import LIVE_AUDIT_WINDOW

    client.force_login(busy.c.cast.erin)
    client.get(reverse("session_detail", args=[busy.s.pk]))
    later = timezone.now() + LIVE_AUDIT_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    client.get(reverse("session_live", args=[busy.s.pk]))
    assert _reads(busy.c.cast.erin, busy) == ["session.view", "session.view_live"]


def test_board_refreshes_showing_the_same_patients_write_no_new_entry(
        busy: Walk, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.utils import timezone

    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.sessions import services
    from ketamine_clinic.web.sessions.views import LIVE_AUDIT_WINDOW
    from tests.web.sessions.conftest import make_order

    client.force_login(busy.c.cast.bob)

    def boards() -> int:
        return AuditEntry.objects.filter(username="bob", action="session.board").count()

    assert "Ruiz" in client.get(reverse("session_board")).content.decode()
    for _ in range(3):  # the board refreshes itself (htmx) every few seconds
        client.get(reverse("session_board"), HTTP_HX_REQUEST="true")
    assert boards() == 1
    # A patient new on the board changes whom it shows: audited.
    patient = patients.patient_register(
        actor=Actor(user=busy.c.cast.bob), site=busy.c.cast.denver, mrn="DEN-B1",
        given_name="Bo", family_name="Nyberg", date_of_birth=busy.c.cast.ana.date_of_birth,
        sex_at_birth="male")
    order = make_order(busy.c.cast, patient, busy.c.protocol_version)
    services.session_schedule(actor=busy.nurse, order=order,
                              scheduled_for=busy.s.scheduled_for, chair="4")
    assert "Nyberg" in client.get(reverse("session_board"),
                                  HTTP_HX_REQUEST="true").content.decode()
    assert boards() == 2
    # A full load is always audited; a refresh after the window is audited again.
    client.get(reverse("session_board"))
    assert boards() == 3
    later = timezone.now() + LIVE_AUDIT_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    client.get(reverse("session_board"), HTTP_HX_REQUEST="true")
    assert boards() == 4


# --------------------------------------------------------------------------- API


class Api:
    def __init__(self, client: Client, user: Any) -> None:
        self.client = client
        _, self.raw = ApiToken.issue(user)

    def __call__(self, method: str, path: str, body: Any = None, **headers: Any) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}", **headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)


def api_endpoints(w: Walk) -> list[tuple[str, str, Callable[[], Any], frozenset[str]]]:
    s = w.s.pk
    return [
        ("get", "/sessions/ping", lambda: None, ALL),
        ("get", "/sessions/board", lambda: None, ALL),
        ("get", f"/sessions/{s}", lambda: None, ALL),
        ("get", f"/sessions/{s}/timeline", lambda: None, ALL),
        ("post", f"/sessions/{s}/vitals", lambda: {**VITALS, "idempotency_key": key()},
         CLINICAL),
        ("post", f"/sessions/{s}/observations",
         lambda: {"kind": "note", "payload": {"text": "ok"}, "idempotency_key": key()},
         CLINICAL),
        ("post", f"/sessions/{s}/rate", lambda: {"rate": "60 mg/h", "idempotency_key": key()},
         CLINICAL),
        ("post", f"/sessions/{s}/events", lambda: {"event": "pause", "idempotency_key": key()},
         CLINICAL),
        ("post", f"/sessions/{s}/entries/{w.s.entries.filter(kind='note').first().pk}"
                 "/corrections",
         lambda: {"reason": "typo", "payload": {"text": "fine"}, "idempotency_key": key()},
         CLINICAL),
        ("post", f"/sessions/{s}/alarms/{_alarm(w).pk}/ack", lambda: {"response": "seen"},
         CLINICAL),
        ("post", f"/sessions/{s}/recovery-scores",
         lambda: {"observed": {"activity": 2}, "idempotency_key": key()}, CLINICAL),
        ("post", f"/sessions/{s}/discharge",
         lambda: {"escort_name": "Luis", "idempotency_key": key()}, CLINICAL),
    ]


@pytest.mark.parametrize("role", sorted(Role.values))
def test_every_session_endpoint_answers_each_role_as_the_role_table_says(
        busy: Walk, client: Client, role: str) -> None:
    busy.observe("note", 41, text="first")
    call = Api(client, busy.c.cast.by_role()[role])
    for method, path, body, allowed in api_endpoints(busy):
        response = call(method, path, body())
        if role in allowed:
            assert response.status_code in (200, 201, 400), (path, response.content[:300])
        else:
            assert response.status_code == 403, (path, response.status_code)
            assert response.json()["errors"][0]["message"].startswith("your role may not")


def test_every_session_endpoint_is_not_found_for_another_site(busy: Walk,
                                                             client: Client) -> None:
    busy.observe("note", 41, text="first")
    call = Api(client, busy.c.cast.oscar)
    for method, path, body, _allowed in api_endpoints(busy):
        if path in ("/sessions/ping", "/sessions/board"):
            continue
        response = call(method, path, body())
        assert response.status_code == 404, path
    assert call("get", "/sessions/board").json() == []


def test_the_api_refuses_anonymous_callers(busy: Walk, client: Client) -> None:
    response = client.get(f"/api/v1/sessions/{busy.s.pk}")
    assert response.status_code == 401


def test_the_board_reads_a_fixed_number_of_queries_however_many_chairs(
        busy: Walk, client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.sessions import services
    from tests.web.sessions.conftest import Clinic, make_consent, make_order

    client.force_login(busy.c.cast.bob)
    client.get(reverse("session_board"))  # raises the due alarms once

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("session_board")).status_code == 200
        return len(queries.captured_queries)

    one = count()
    for n in range(3):
        patient = patients.patient_register(
            actor=Actor(user=busy.c.cast.bob), site=busy.c.cast.denver, mrn=f"DEN-Q{n}",
            given_name=f"Q{n}", family_name="Query", date_of_birth=busy.c.cast.ana.date_of_birth,
            sex_at_birth="male")
        order = make_order(busy.c.cast, patient, busy.c.protocol_version)
        make_consent(busy.c.cast, patient, busy.c.protocol_version)
        session = services.session_schedule(actor=busy.nurse, order=order,
                                            scheduled_for=busy.s.scheduled_for, chair=str(n))
        Walk(Clinic(busy.c.cast, busy.c.protocol_version, order.series, order, session,
                    None), t0=busy.t0).infusing()
    client.get(reverse("session_board"))  # their overdue alarms, once
    assert count() == one
