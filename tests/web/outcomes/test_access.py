"""Every page and endpoint of the outcomes area, for every role, for Oscar (another site)
and for anonymous visitors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_cast
from tests.web.access import (
    ALL,
    ROLES,
    Page,
    assert_not_found_and_audited,
    assert_role_answer,
    assert_sent_to_log_in,
    built_once,
    call,
    denials,
    fresh,
    page_id,
)
from tests.web.outcomes.conftest import answer, make_pv, make_series

FOLLOW_UP = frozenset({"physician", "nurse", "front_desk"})
REPORTS = frozenset({"physician", "clinic_admin", "auditor"})


def _now() -> str:
    return timezone.localtime().strftime("%Y-%m-%dT%H:%M")


ENDPOINTS: list[Page[Any]] = [
    Page("worklist", "get", lambda w: reverse("followup_worklist"), FOLLOW_UP,
         scoped=False),
    Page("follow-up page", "get", lambda w: reverse("followup_detail", args=[w.fu.pk]),
         FOLLOW_UP),
    Page("follow-up answer", "post", lambda w: reverse("followup_detail", args=[w.fu.pk]),
         FOLLOW_UP, lambda w, _u: {"pain_average_nrs": 3, "pain_worst_nrs": 4,
                               "answered_at": _now()}),
    Page("patient link", "post",
         lambda w: reverse("followup_link_create", args=[w.fu.pk]), FOLLOW_UP),
    Page("schedule", "post",
         lambda w: reverse("series_followups_schedule", args=[w.series.pk]), FOLLOW_UP),
    Page("report", "get", lambda w: reverse("outcome_report"), REPORTS,
         scoped=False),
    Page("report csv", "get", lambda w: reverse("outcome_report_csv"), REPORTS,
         scoped=False),
    Page("report pdf", "get", lambda w: reverse("outcome_report_pdf"), REPORTS,
         scoped=False),
    Page("patient page panel", "get",
         lambda w: reverse("patient_detail", args=[w.cast.ana.pk]), ALL),
    Page("api report", "get", lambda w: "/api/v1/outcomes/report", REPORTS,
         scoped=False, api=True),
    Page("api due", "get", lambda w: "/api/v1/follow-ups/due", FOLLOW_UP,
         scoped=False, api=True),
    Page("api answer", "post", lambda w: f"/api/v1/follow-ups/{w.fu.pk}/responses",
         FOLLOW_UP, lambda w, _u: {"pain_average_nrs": 3, "pain_worst_nrs": 4}, api=True),
    Page("api trajectory", "get",
         lambda w: f"/api/v1/patients/{w.cast.ana.pk}/pain-trajectory", ALL, api=True),
]


@dataclass
class World:
    cast: Any
    series: Any
    fu: Any


@pytest.fixture(scope="module")
def world_once(django_db_setup: None, django_db_blocker: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("outcomes-access")):
        cast = make_cast()
        built = make_series(cast, make_pv(), cast.ana, timezone.localdate() - timedelta(days=9),
                            [(7, 3), (6, 2)])
        fu = answer(cast, built, "week1", 0, answered=False, due=timezone.localdate())
        yield World(cast, built.series, fu)


@pytest.fixture
def world(world_once: World, db: Any) -> World:
    """The world, built once for the module (each case rolled back after it)."""
    return fresh(world_once)


@pytest.fixture
def cast(world: World) -> Any:
    return world.cast


@pytest.mark.parametrize("ep", ENDPOINTS, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_what_it_may(cast: Any, client: Client, world: World,
                                               ep: Page[Any], role: str) -> None:
    user = cast.by_role()[role]
    client.force_login(user)
    assert_role_answer(call(client, ep, world, user), role, ep, (200, 201, 302))


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.scoped], ids=page_id)
def test_oscar_of_another_site_cannot_reach_the_denver_patient(cast: Any, client: Client,
                                                                world: World,
                                                                ep: Page[Any]) -> None:
    client.force_login(cast.oscar)
    before = denials("oscar", "patient.access_denied")
    response = call(client, ep, world, cast.oscar)
    assert_not_found_and_audited(response, "oscar", before, "patient.access_denied")


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if not e.scoped], ids=page_id)
def test_oscar_sees_nothing_of_denver_in_lists_and_reports(cast: Any, client: Client,
                                                           world: World, ep: Page[Any]) -> None:
    client.force_login(cast.oscar)
    response = call(client, ep, world, cast.oscar)
    if "nurse" not in ep.allowed:
        assert response.status_code == 403
        return
    body = response.content.decode()
    assert "Ruiz" not in body
    if ep.api:
        assert response.json() == []
    else:
        assert f'data-follow-up="{world.fu.pk}"' not in body


@pytest.mark.parametrize("ep", ENDPOINTS, ids=page_id)
def test_anonymous_visitors_are_sent_to_log_in(cast: Any, client: Client, world: World,
                                               ep: Page[Any]) -> None:
    response = call(client, ep, world)
    if ep.api:
        assert response.status_code == 401
    else:
        assert_sent_to_log_in(response)
