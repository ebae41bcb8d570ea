"""Every page and endpoint, for every role and for a user of another site."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import Cast, make_cast
from tests.web.access import (
    ALL,
    CLINICAL,
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

REGISTRARS = frozenset({"physician", "nurse", "front_desk", "clinic_admin"})


def _now_local() -> str:
    return timezone.localtime(timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")


PAGES: list[Page[Any]] = [
    Page("home", "get", lambda c: reverse("home"), ALL, scoped=False),
    Page("patient list", "get", lambda c: reverse("patient_list"), ALL, scoped=False),
    Page("patient search", "get", lambda c: reverse("patient_list") + "?q=Ruiz", ALL,
         scoped=False),
    Page("register form", "get", lambda c: reverse("patient_create"), REGISTRARS,
         scoped=False),
    Page("register", "post", lambda c: reverse("patient_create"), REGISTRARS,
         lambda c, _u: {"site": c.denver.pk, "mrn": "DEN-NEW", "given_name": "New",
                    "family_name": "Person", "date_of_birth": "1980-01-01",
                    "sex_at_birth": "female"}, scoped=False),
    Page("patient page", "get", lambda c: reverse("patient_detail", args=[c.ana.pk]), ALL),
    Page("amend form", "get", lambda c: reverse("patient_amend", args=[c.ana.pk]), REGISTRARS),
    Page("record weight", "post", lambda c: reverse("measurement_add", args=[c.ana.pk]),
         CLINICAL, lambda c, _u: {"kind": "weight_kg", "value_number": "71.5",
                              "measured_at": _now_local()}),
    Page("record diagnosis", "post", lambda c: reverse("diagnosis_add", args=[c.ana.pk]),
         frozenset({"physician"}),
         lambda c, _u: {"code": "icd10cm:G90.512", "diagnosed_on": "2024-03-01"}),
    Page("record allergy", "post", lambda c: reverse("allergy_add", args=[c.ana.pk]),
         CLINICAL, lambda c, _u: {"substance": "latex"}),
    Page("record medication", "post", lambda c: reverse("medication_add", args=[c.ana.pk]),
         CLINICAL, lambda c, _u: {"name": "gabapentin", "dose": "300 mg"}),
    Page("audit trail", "get", lambda c: reverse("audit_list"),
         frozenset({"clinic_admin", "auditor"}), scoped=False),
]


@pytest.fixture(scope="module")
def cast_once(django_db_setup: None, django_db_blocker: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("access")):
        yield make_cast()


@pytest.fixture
def cast(cast_once: Cast, db: Any) -> Cast:
    """The cast, built once for the module (each case rolled back after it)."""
    return fresh(cast_once)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_pages_it_is_allowed(cast: Any, client: Client,
                                                        page: Page[Any], role: str) -> None:
    user = cast.by_role()[role]
    client.force_login(user)
    assert_role_answer(call(client, page, cast, user), role, page)


@pytest.mark.parametrize("page", [p for p in PAGES if p.scoped], ids=page_id)
def test_a_user_of_another_site_cannot_reach_the_patient(cast: Any, client: Client,
                                                          page: Page[Any]) -> None:
    client.force_login(cast.oscar)  # a Boulder nurse; Ana is at Denver
    before = denials("oscar", "patient.access_denied")
    response = call(client, page, cast, cast.oscar)
    if "nurse" in page.allowed:
        assert_not_found_and_audited(response, "oscar", before, "patient.access_denied")
    else:
        assert response.status_code == 403


def test_a_user_of_another_site_does_not_see_the_patient_in_lists(cast: Any,
                                                                   client: Client) -> None:
    client.force_login(cast.oscar)
    body = client.get(reverse("patient_list")).content.decode()
    assert "Okafor" in body
    assert "Ruiz" not in body


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_anonymous_visitors_are_sent_to_log_in(cast: Any, client: Client,
                                               page: Page[Any]) -> None:
    assert_sent_to_log_in(call(client, page, cast))


def test_login_page_and_health_check_need_no_login(client: Client, db: Any) -> None:
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("healthz")).content == b"ok"
