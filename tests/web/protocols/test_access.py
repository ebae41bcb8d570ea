"""Every page and API endpoint of the protocols area, for every role, for Oscar (a nurse of
another site) and for anonymous visitors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.protocols import services
from ketamine_clinic.web.protocols.models import ProtocolVersion
from tests.conftest import make_cast
from tests.web.access import (
    ALL,
    CLINICAL,
    PHYSICIAN,
    ROLES,
    Page,
    api_call,
    assert_other_site_kept_out,
    assert_role_answer,
    assert_sent_to_log_in,
    built_once,
    call,
    fresh,
    page_id,
)

from .conftest import answers_all_absent, make_ana_ready, renamed_text

ADMIN = frozenset({"clinic_admin"})


@dataclass
class World:
    cast: Any
    v1: Any
    v2: Any
    screening: Any


@pytest.fixture(scope="module")
def world_once(django_db_setup: None, django_db_blocker: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("protocols-access")):
        cast = make_cast()
        standard = ProtocolVersion.objects.get(name="clinic-standard", version=2)
        v2 = services.protocol_publish(actor=Actor(user=cast.dave), change_note="v2",
                                       toml_text=renamed_text(standard, version=3))
        s = services.screening_record(actor=Actor(user=cast.bob), patient=make_ana_ready(cast),
                                      protocol_version=standard,
                                      answers=answers_all_absent(medications_complete=False))
        yield World(cast, standard, v2, s)


@pytest.fixture
def world(world_once: World, db: Any) -> World:
    """The world, built once for the module (each case rolled back after it)."""
    return fresh(world_once)


def screening_post(w: World, user: Any) -> dict[str, Any]:
    return {"protocol_version": w.v2.pk, "medications_complete": "on"}


def publish_check(w: World, user: Any) -> dict[str, Any]:
    return {"toml_text": renamed_text(w.v1, version=4), "change_note": "c", "check": "1"}


PAGES: list[Page[World]] = [
    Page("protocol list", "get", lambda w: reverse("protocol_list"), ALL, scoped=False),
    Page("protocol version", "get",
         lambda w: reverse("protocol_detail", args=["clinic-standard", 1]), ALL, scoped=False),
    Page("protocol toml", "get",
         lambda w: reverse("protocol_toml", args=["clinic-standard", 2]), ALL, scoped=False),
    Page("compare", "get",
         lambda w: reverse("protocol_compare") + f"?old={w.v1.pk}&new={w.v2.pk}", ALL,
         scoped=False),
    Page("references", "get", lambda w: reverse("protocol_references"), ALL, scoped=False),
    Page("publish form", "get", lambda w: reverse("protocol_publish"), ADMIN, scoped=False),
    Page("publish check", "post", lambda w: reverse("protocol_publish"), ADMIN, publish_check,
         scoped=False),
    Page("screening form", "get",
         lambda w: reverse("screening_new", args=[w.cast.ana.pk]), CLINICAL),
    Page("screen", "post", lambda w: reverse("screening_new", args=[w.cast.ana.pk]),
         CLINICAL, screening_post),
    Page("screenings of a patient", "get",
         lambda w: reverse("screening_list", args=[w.cast.ana.pk]), ALL),
    Page("screening", "get", lambda w: reverse("screening_detail", args=[w.screening.pk]),
         ALL),
    Page("override", "post", lambda w: reverse("screening_override", args=[w.screening.pk]),
         PHYSICIAN, lambda w, u: {"rule": "interactions", "justification": "checked"}),
]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_pages_it_is_allowed(world: World, client: Client,
                                                        page: Page[World], role: str) -> None:
    user = world.cast.by_role()[role]
    client.force_login(user)
    assert_role_answer(call(client, page, world, user), role, page)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_a_user_of_another_site_reads_protocols_but_not_the_patients_screenings(
        world: World, client: Client, page: Page[World]) -> None:
    # Oscar, a Boulder nurse; Ana is at Denver.
    assert_other_site_kept_out(client, page, world, world.cast.oscar)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_anonymous_visitors_are_sent_to_log_in(world: World, client: Client,
                                               page: Page[World]) -> None:
    assert_sent_to_log_in(call(client, page, world, world.cast.bob))


# --------------------------------------------------------------------------- API


def endpoints(w: World) -> list[tuple[str, str, Any, frozenset[str], bool]]:
    """(method, path, body, roles allowed, patient-scoped)."""
    p, s = w.cast.ana.pk, w.screening.pk
    return [
        ("get", "/protocols", None, ALL, False),
        ("get", "/protocols/references", None, ALL, False),
        ("get", "/protocols/clinic-standard/versions/1", None, ALL, False),
        ("get", "/protocols/clinic-standard/diff?old=1&new=2", None, ALL, False),
        ("post", "/protocols", {"toml_text": renamed_text(w.v1, version=9),
                                "change_note": "api"}, ADMIN, False),
        ("get", f"/patients/{p}/screenings", None, ALL, True),
        ("post", f"/patients/{p}/screenings", {"medications_complete": True}, CLINICAL, True),
        ("get", f"/screenings/{s}", None, ALL, True),
        ("post", f"/screenings/{s}/overrides",
         {"rule": "interactions", "justification": "checked"}, PHYSICIAN, True),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_answers_each_role_as_the_role_table_says(world: World, client: Client,
                                                                 role: str) -> None:
    user = world.cast.by_role()[role]
    for method, path, body, allowed, _ in endpoints(world):
        response = api_call(client, user, method, path, body)
        expected = {200, 201} if role in allowed else {403}
        assert response.status_code in expected, (method, path, response.content)


def test_oscar_gets_not_found_and_an_audit_entry_from_the_api(world: World,
                                                              client: Client) -> None:
    oscar = world.cast.oscar
    for method, path, body, allowed, scoped in endpoints(world):
        before = AuditEntry.objects.filter(username="oscar",
                                           action__endswith="access_denied").count()
        response = api_call(client, oscar, method, path, body)
        if "nurse" not in allowed:
            assert response.status_code == 403, path
        elif not scoped:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 404, (method, path, response.content)
            after = AuditEntry.objects.filter(username="oscar",
                                              action__endswith="access_denied").count()
            assert after == before + 1


def test_the_api_refuses_anonymous_callers(world: World, client: Client) -> None:
    for method, path, body, _allowed, _scoped in endpoints(world):
        response = api_call(client, None, method, path, body)
        assert response.status_code == 401, path
