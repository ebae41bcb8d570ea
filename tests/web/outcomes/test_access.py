"""Every page and endpoint of the outcomes area, for every role, for Oscar (another site)
and for anonymous visitors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.models import AuditEntry
from tests.web.outcomes.conftest import answer, make_series

FOLLOW_UP = frozenset({"physician", "nurse", "front_desk"})
REPORTS = frozenset({"physician", "clinic_admin", "auditor"})
ALL = frozenset(Role.values)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    url: Callable[[Any], str]
    allowed: frozenset[str]
    data: Callable[[Any], dict[str, Any]] | None = None
    patient_scoped: bool = True
    api: bool = False


def _now() -> str:
    return timezone.localtime().strftime("%Y-%m-%dT%H:%M")


ENDPOINTS = [
    Endpoint("worklist", "get", lambda w: reverse("followup_worklist"), FOLLOW_UP,
             patient_scoped=False),
    Endpoint("follow-up page", "get", lambda w: reverse("followup_detail", args=[w.fu.pk]),
             FOLLOW_UP),
    Endpoint("follow-up answer", "post", lambda w: reverse("followup_detail", args=[w.fu.pk]),
             FOLLOW_UP, lambda w: {"pain_average_nrs": 3, "pain_worst_nrs": 4,
                                   "answered_at": _now()}),
    Endpoint("patient link", "post",
             lambda w: reverse("followup_link_create", args=[w.fu.pk]), FOLLOW_UP),
    Endpoint("schedule", "post",
             lambda w: reverse("series_followups_schedule", args=[w.series.pk]), FOLLOW_UP),
    Endpoint("report", "get", lambda w: reverse("outcome_report"), REPORTS,
             patient_scoped=False),
    Endpoint("report csv", "get", lambda w: reverse("outcome_report_csv"), REPORTS,
             patient_scoped=False),
    Endpoint("report pdf", "get", lambda w: reverse("outcome_report_pdf"), REPORTS,
             patient_scoped=False),
    Endpoint("patient page panel", "get",
             lambda w: reverse("patient_detail", args=[w.cast.ana.pk]), ALL),
    Endpoint("api report", "get", lambda w: "/api/v1/outcomes/report", REPORTS,
             patient_scoped=False, api=True),
    Endpoint("api due", "get", lambda w: "/api/v1/follow-ups/due", FOLLOW_UP,
             patient_scoped=False, api=True),
    Endpoint("api answer", "post", lambda w: f"/api/v1/follow-ups/{w.fu.pk}/responses",
             FOLLOW_UP, lambda w: {"pain_average_nrs": 3, "pain_worst_nrs": 4}, api=True),
    Endpoint("api trajectory", "get",
             lambda w: f"/api/v1/patients/{w.cast.ana.pk}/pain-trajectory", ALL, api=True),
]


@dataclass
class World:
    cast: Any
    series: Any
    fu: Any


@pytest.fixture
def world(cast: Any, pv: Any) -> World:
    built = make_series(cast, pv, cast.ana, timezone.localdate() - timedelta(days=9),
                        [(7, 3), (6, 2)])
    fu = answer(cast, built, "week1", 0, answered=False, due=timezone.localdate())
    return World(cast, built.series, fu)


def _call(client: Client, ep: Endpoint, world: World) -> Any:
    url = ep.url(world)
    if ep.method == "get":
        return client.get(url)
    data = ep.data(world) if ep.data else {}
    if ep.api:
        return client.post(url, data, content_type="application/json")
    return client.post(url, data)


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(Role.values))
def test_each_role_reaches_exactly_what_it_may(cast: Any, client: Client, world: World,
                                               ep: Endpoint, role: str) -> None:
    client.force_login(cast.by_role()[role])
    response = _call(client, ep, world)
    if role in ep.allowed:
        assert response.status_code in (200, 201, 302), response.content[:300]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.patient_scoped], ids=lambda e: e.name)
def test_oscar_of_another_site_cannot_reach_the_denver_patient(cast: Any, client: Client,
                                                                world: World,
                                                                ep: Endpoint) -> None:
    client.force_login(cast.oscar)
    before = AuditEntry.objects.filter(action="patient.access_denied").count()
    response = _call(client, ep, world)
    assert response.status_code == 404
    assert AuditEntry.objects.filter(action="patient.access_denied",
                                     username="oscar").count() == before + 1


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if not e.patient_scoped],
                         ids=lambda e: e.name)
def test_oscar_sees_nothing_of_denver_in_lists_and_reports(cast: Any, client: Client,
                                                           world: World, ep: Endpoint) -> None:
    client.force_login(cast.oscar)
    response = _call(client, ep, world)
    if "nurse" not in ep.allowed:
        assert response.status_code == 403
        return
    body = response.content.decode()
    assert "Ruiz" not in body
    if ep.api:
        assert response.json() == []
    else:
        assert f'data-follow-up="{world.fu.pk}"' not in body


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: e.name)
def test_anonymous_visitors_are_sent_to_log_in(cast: Any, client: Client, world: World,
                                               ep: Endpoint) -> None:
    response = _call(client, ep, world)
    if ep.api:
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_a_report_user_of_one_site_sees_only_that_sites_series(cast: Any, client: Client,
                                                               pv: Any) -> None:
    make_series(cast, pv, cast.zed, timezone.localdate() - timedelta(days=9), [(7, 3)])
    client.force_login(cast.dave)  # Denver
    assert client.get("/api/v1/outcomes/report").json()["report"]["n_series"] == 0
    client.force_login(cast.alice)  # Denver and Boulder
    assert client.get("/api/v1/outcomes/report").json()["report"]["n_series"] == 1
