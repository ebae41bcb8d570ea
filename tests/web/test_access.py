"""Every page and endpoint, for every role and for a user of another site."""

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

ALL = frozenset(Role.values)
CLINICAL = frozenset({"physician", "nurse"})
REGISTRARS = frozenset({"physician", "nurse", "front_desk", "clinic_admin"})


def _now_local() -> str:
    return timezone.localtime(timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    url: Callable[[Any], str]
    allowed: frozenset[str]
    data: Callable[[Any], dict[str, Any]] | None = None
    patient_scoped: bool = True


PAGES = [
    Page("home", "get", lambda c: reverse("home"), ALL, patient_scoped=False),
    Page("patient list", "get", lambda c: reverse("patient_list"), ALL, patient_scoped=False),
    Page("patient search", "get", lambda c: reverse("patient_list") + "?q=Ruiz", ALL,
         patient_scoped=False),
    Page("register form", "get", lambda c: reverse("patient_create"), REGISTRARS,
         patient_scoped=False),
    Page("register", "post", lambda c: reverse("patient_create"), REGISTRARS,
         lambda c: {"site": c.denver.pk, "mrn": "DEN-NEW", "given_name": "New",
                    "family_name": "Person", "date_of_birth": "1980-01-01",
                    "sex_at_birth": "female"}, patient_scoped=False),
    Page("patient page", "get", lambda c: reverse("patient_detail", args=[c.ana.pk]), ALL),
    Page("amend form", "get", lambda c: reverse("patient_amend", args=[c.ana.pk]), REGISTRARS),
    Page("record weight", "post", lambda c: reverse("measurement_add", args=[c.ana.pk]),
         CLINICAL, lambda c: {"kind": "weight_kg", "value_number": "71.5",
                              "measured_at": _now_local()}),
    Page("record diagnosis", "post", lambda c: reverse("diagnosis_add", args=[c.ana.pk]),
         frozenset({"physician"}),
         lambda c: {"code": "icd10cm:G90.512", "diagnosed_on": "2024-03-01"}),
    Page("record allergy", "post", lambda c: reverse("allergy_add", args=[c.ana.pk]),
         CLINICAL, lambda c: {"substance": "latex"}),
    Page("record medication", "post", lambda c: reverse("medication_add", args=[c.ana.pk]),
         CLINICAL, lambda c: {"name": "gabapentin", "dose": "300 mg"}),
    Page("audit trail", "get", lambda c: reverse("audit_list"),
         frozenset({"clinic_admin", "auditor"}), patient_scoped=False),
]


def _call(client: Client, page: Page, cast: Any) -> Any:
    url = page.url(cast)
    if page.method == "get":
        return client.get(url)
    return client.post(url, page.data(cast) if page.data else {})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("role", sorted(Role.values))
def test_each_role_gets_exactly_the_pages_it_is_allowed(cast: Any, client: Client,
                                                        page: Page, role: str) -> None:
    client.force_login(cast.by_role()[role])
    response = _call(client, page, cast)
    if role in page.allowed:
        assert response.status_code in (200, 302), response.content[:500]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("page", [p for p in PAGES if p.patient_scoped], ids=lambda p: p.name)
def test_a_user_of_another_site_cannot_reach_the_patient(cast: Any, client: Client,
                                                          page: Page) -> None:
    client.force_login(cast.oscar)  # a Boulder nurse; Ana is at Denver
    before = AuditEntry.objects.filter(action="patient.access_denied").count()
    response = _call(client, page, cast)
    if "nurse" in page.allowed:
        assert response.status_code == 404
        assert AuditEntry.objects.filter(action="patient.access_denied",
                                         username="oscar").count() == before + 1
    else:
        assert response.status_code == 403


def test_a_user_of_another_site_does_not_see_the_patient_in_lists(cast: Any,
                                                                   client: Client) -> None:
    client.force_login(cast.oscar)
    body = client.get(reverse("patient_list")).content.decode()
    assert "Okafor" in body
    assert "Ruiz" not in body


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_anonymous_visitors_are_sent_to_log_in(cast: Any, client: Client, page: Page) -> None:
    response = _call(client, page, cast)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_and_health_check_need_no_login(client: Client, db: Any) -> None:
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("healthz")).content == b"ok"
