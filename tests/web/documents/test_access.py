"""Every page and API endpoint of the documents area, for every role, for Oscar (a nurse of
another site) and for anonymous visitors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents import services
from ketamine_clinic.web.documents.consent import consent_for
from tests.conftest import make_cast
from tests.web.access import (
    ALL,
    CLINICAL,
    ROLES,
    Page,
    api_call,
    assert_not_found_and_audited,
    assert_role_answer,
    assert_sent_to_log_in,
    built_once,
    call,
    denials,
    fresh,
    page_id,
)

from .factories import build_finished_session, make_protocol_version
from .test_consent import SIGNATURE


@dataclass
class World:
    cast: Any
    pv1: Any
    pv2: Any
    consent: Any
    session: Any


@pytest.fixture(scope="module")
def world_once(django_db_setup: None, django_db_blocker: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("documents-access")):
        cast = make_cast()
        pv1, pv2 = make_protocol_version(version=1), make_protocol_version(version=2)
        consent = services.consent_record(
            actor=Actor(user=cast.bob), patient=cast.ana, protocol_version=pv1,
            document_sha256=consent_for(pv1).sha256, method="paper", explained_by=cast.bob,
            signed_at=timezone.now() - timedelta(hours=1), paper_attested=True)
        yield World(cast, pv1, pv2, consent, build_finished_session(cast, pv1))


@pytest.fixture
def world(world_once: World, db: Any) -> World:
    """The world, built once for the module (each case rolled back after it)."""
    return fresh(world_once)


@pytest.fixture
def cast(world: World) -> Any:
    return world.cast


def consent_post(w: World, user: Any) -> dict[str, Any]:
    return {"protocol_version": w.pv2.pk, "document_sha256": consent_for(w.pv2).sha256,
            "method": "signature", "explained_by": user.pk,
            "signed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "signature_strokes": SIGNATURE, "pad_width": 600, "pad_height": 200}


# Every page is about one patient.
PAGES: list[Page[World]] = [
    Page("record consent form", "get",
         lambda w: reverse("consent_new", args=[w.cast.ana.pk]) + f"?protocol_version={w.pv2.pk}",
         CLINICAL),
    Page("record consent", "post", lambda w: reverse("consent_new", args=[w.cast.ana.pk]),
         CLINICAL, consent_post),
    Page("consent for paper", "get",
         lambda w: reverse("consent_print", args=[w.cast.ana.pk, w.pv1.pk]), ALL),
    Page("consent detail", "get", lambda w: reverse("consent_detail", args=[w.consent.pk]), ALL),
    Page("withdraw consent", "post", lambda w: reverse("consent_withdraw", args=[w.consent.pk]),
         CLINICAL, lambda w, u: {"reason": "patient declined"}),
    Page("instruction sheet", "get",
         lambda w: reverse("session_instructions", args=[w.session.pk]), CLINICAL),
    Page("instruction sheet pdf", "get",
         lambda w: reverse("session_instructions_pdf", args=[w.session.pk]), CLINICAL),
]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_pages_it_is_allowed(world: World, client: Client,
                                                        page: Page[World], role: str) -> None:
    user = world.cast.by_role()[role]
    client.force_login(user)
    assert_role_answer(call(client, page, world, user), role, page)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_a_user_of_another_site_cannot_reach_the_patients_documents(world: World,
                                                                     client: Client,
                                                                     page: Page[World]) -> None:
    oscar = world.cast.oscar  # a Boulder nurse; Ana is at Denver
    client.force_login(oscar)
    before = denials("oscar")
    response = call(client, page, world, oscar)
    if "nurse" in page.allowed:
        assert_not_found_and_audited(response, "oscar", before)
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_anonymous_visitors_are_sent_to_log_in(world: World, client: Client,
                                               page: Page[World]) -> None:
    assert_sent_to_log_in(call(client, page, world, world.cast.bob))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", ["/education/", "/education/risks/", "/education/sources/",
                                 "/education/print/"])
def test_every_role_can_read_the_education_pages(cast: Any, client: Client, role: str,
                                                 url: str) -> None:
    client.force_login(cast.by_role()[role])
    assert client.get(url).status_code == 200


def test_oscar_can_read_the_education_pages(cast: Any, client: Client) -> None:
    client.force_login(cast.oscar)
    assert client.get("/education/how-it-may-help/").status_code == 200


# --------------------------------------------------------------------------- API


def endpoints(w: World) -> list[tuple[str, str, Any, frozenset[str], bool]]:
    """(method, path, body, roles allowed, patient-scoped)."""
    p, c, s = w.cast.ana.pk, w.consent.pk, w.session.pk
    new_consent = {
        "protocol_version": w.pv2.pk, "document_sha256": consent_for(w.pv2).sha256,
        "method": "paper", "explained_by": "bob",
        "signed_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "paper_attested": True, "paper_reference": "scan 77"}
    return [
        ("get", f"/protocol-versions/{w.pv1.pk}/consent-document", None, ALL, False),
        ("get", f"/patients/{p}/consents", None, ALL, True),
        ("post", f"/patients/{p}/consents", new_consent, CLINICAL, True),
        ("get", f"/consents/{c}", None, ALL, True),
        ("post", f"/consents/{c}/withdraw", {"reason": "patient declined"}, CLINICAL, True),
        ("get", f"/sessions/{s}/discharge-instructions", None, CLINICAL, True),
    ]


def _user(w: World, role: str) -> Any:
    return w.cast.oscar if role == "oscar" else w.cast.by_role()[role]


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_answers_each_role_as_the_role_table_says(world: World, client: Client,
                                                                 role: str) -> None:
    user = _user(world, role)
    for method, path, body, allowed, _ in endpoints(world):
        response = api_call(client, user, method, path, body)
        expected = {200, 201} if role in allowed else {403}
        assert response.status_code in expected, (method, path, response.content)


def test_oscar_gets_not_found_and_an_audit_entry_from_the_api(world: World,
                                                              client: Client) -> None:
    oscar = _user(world, "oscar")
    for method, path, body, _allowed, scoped in endpoints(world):
        before = AuditEntry.objects.filter(username="oscar",
                                           action__endswith="access_denied").count()
        response = api_call(client, oscar, method, path, body)
        if not scoped:
            assert response.status_code == 200, path
            continue
        assert response.status_code == 404, (method, path, response.content)
        after = AuditEntry.objects.filter(username="oscar",
                                          action__endswith="access_denied").count()
        assert after == before + 1


def test_the_api_discharge_summary_gives_the_end_and_the_no_driving_time(
        world: World, client: Client) -> None:
    data = api_call(client, world.cast.bob, "get",
                    f"/sessions/{world.session.pk}/discharge-instructions").json()
    assert data["ketamine_total_mg_exact"] == "110"
    assert data["infusion_ended_at"].startswith("2025-03-03T20:30:00")  # 1:30 PM MST in UTC
    assert data["no_driving_until"].startswith("2025-03-04T13:30:00-07:00")
    assert data["no_driving_hours"] == 24


def test_a_bad_api_consent_names_the_field_and_stores_nothing(world: World,
                                                              client: Client) -> None:
    body = {"protocol_version": world.pv2.pk, "document_sha256": "0" * 64,
            "method": "signature", "explained_by": "bob",
            "signed_at": timezone.now().isoformat(), "signature_strokes": SIGNATURE,
            "pad_width": 600, "pad_height": 200}
    response = api_call(client, world.cast.bob, "post",
                        f"/patients/{world.cast.ana.pk}/consents", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "document_sha256"
    assert world.cast.ana.consents.count() == 1
