"""Every page and API endpoint of the protocols area, for every role, for Oscar (a nurse of
another site) and for anonymous visitors."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.protocols import services

from .conftest import answers_all_absent, renamed_text

ALL = frozenset(Role.values)
CLINICAL = frozenset({"physician", "nurse"})
PHYSICIAN = frozenset({"physician"})
ADMIN = frozenset({"clinic_admin"})


@dataclass
class World:
    cast: Any
    v1: Any
    v2: Any
    screening: Any


@pytest.fixture
def world(cast: Any, standard: Any, ana_ready: Any) -> World:
    v2 = services.protocol_publish(actor=Actor(user=cast.dave), change_note="v2",
                                   toml_text=renamed_text(standard, version=3))
    s = services.screening_record(actor=Actor(user=cast.bob), patient=ana_ready,
                                  protocol_version=standard,
                                  answers=answers_all_absent(medications_complete=False))
    return World(cast, standard, v2, s)


def screening_post(w: World, user: Any) -> dict[str, Any]:
    return {"protocol_version": w.v2.pk, "medications_complete": "on"}


def publish_check(w: World, user: Any) -> dict[str, Any]:
    return {"toml_text": renamed_text(w.v1, version=4), "change_note": "c", "check": "1"}


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    url: Callable[[World], str]
    allowed: frozenset[str]
    data: Callable[[World, Any], dict[str, Any]] | None = None
    patient_scoped: bool = False


PAGES = [
    Page("protocol list", "get", lambda w: reverse("protocol_list"), ALL),
    Page("protocol version", "get",
         lambda w: reverse("protocol_detail", args=["clinic-standard", 1]), ALL),
    Page("protocol toml", "get",
         lambda w: reverse("protocol_toml", args=["clinic-standard", 2]), ALL),
    Page("compare", "get",
         lambda w: reverse("protocol_compare") + f"?old={w.v1.pk}&new={w.v2.pk}", ALL),
    Page("references", "get", lambda w: reverse("protocol_references"), ALL),
    Page("publish form", "get", lambda w: reverse("protocol_publish"), ADMIN),
    Page("publish check", "post", lambda w: reverse("protocol_publish"), ADMIN, publish_check),
    Page("screening form", "get",
         lambda w: reverse("screening_new", args=[w.cast.ana.pk]), CLINICAL,
         patient_scoped=True),
    Page("screen", "post", lambda w: reverse("screening_new", args=[w.cast.ana.pk]),
         CLINICAL, screening_post, patient_scoped=True),
    Page("screenings of a patient", "get",
         lambda w: reverse("screening_list", args=[w.cast.ana.pk]), ALL, patient_scoped=True),
    Page("screening", "get", lambda w: reverse("screening_detail", args=[w.screening.pk]),
         ALL, patient_scoped=True),
    Page("override", "post", lambda w: reverse("screening_override", args=[w.screening.pk]),
         PHYSICIAN, lambda w, u: {"rule": "interactions", "justification": "checked"},
         patient_scoped=True),
]


def _call(client: Client, page: Page, w: World, user: Any) -> Any:
    url = page.url(w)
    if page.method == "get":
        return client.get(url)
    return client.post(url, page.data(w, user) if page.data else {})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("role", sorted(Role.values))
def test_each_role_gets_exactly_the_pages_it_is_allowed(world: World, client: Client,
                                                        page: Page, role: str) -> None:
    user = world.cast.by_role()[role]
    client.force_login(user)
    response = _call(client, page, world, user)
    if role in page.allowed:
        assert response.status_code in (200, 302), response.content[:800]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_user_of_another_site_reads_protocols_but_not_the_patients_screenings(
        world: World, client: Client, page: Page) -> None:
    oscar = world.cast.oscar  # a Boulder nurse; Ana is at Denver
    client.force_login(oscar)
    before = AuditEntry.objects.filter(username="oscar", action__endswith="access_denied").count()
    response = _call(client, page, world, oscar)
    if "nurse" not in page.allowed:
        assert response.status_code == 403
    elif page.patient_scoped:
        assert response.status_code == 404
        after = AuditEntry.objects.filter(username="oscar",
                                          action__endswith="access_denied").count()
        assert after == before + 1
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_anonymous_visitors_are_sent_to_log_in(world: World, client: Client,
                                               page: Page) -> None:
    response = _call(client, page, world, world.cast.bob)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --------------------------------------------------------------------------- API


def api_call(client: Client, user: Any, method: str, path: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {}
    if user is not None:
        _, raw = ApiToken.issue(user)
        kwargs["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(f"/api/v1{path}", **kwargs)


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


@pytest.mark.parametrize("role", sorted(Role.values))
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
