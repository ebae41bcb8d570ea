"""The visit's billing summary from a charted session: start and stop clock times, 96365
and 96366 units from the infusion time, the premedication push, the ketamine line with
the mg given, the diagnosis; the page, the CSV, and who may see them."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.billing.selectors import billing_summary
from ketamine_clinic.web.sessions.selectors import snapshot
from tests.web.scheduling.conftest import make_clinic
from tests.web.sessions.conftest import Clinic, Walk


@pytest.fixture
def clinic(cast: Any) -> Clinic:
    return make_clinic(cast)  # type: ignore[no-any-return]


def _charted(clinic: Clinic, infusion_min: int) -> Walk:
    """Premedicated at t0+20 (glycopyrrolate IV), infusing from t0+30 for ``infusion_min``."""
    walk = Walk(clinic)
    walk.infusing()
    walk.event("stop", 30 + infusion_min)
    return walk


def test_a_151_minute_infusion_bills_96365_and_two_96366_and_the_premedication_push(
        clinic: Clinic) -> None:
    walk = _charted(clinic, 151)
    summary, inputs = billing_summary(clinic.session)
    assert summary.infusion_started_at == walk.at(30)
    assert summary.infusion_stopped_at == walk.at(181)
    assert summary.infusion_minutes == 151
    assert [(p.code, p.units) for p in summary.procedures] == [("96365", 1), ("96366", 2),
                                                                ("96375", 1)]
    [ketamine] = [d for d in summary.drugs if "ketamine" in d.label]
    totals = snapshot(clinic.session, gates=False).totals
    assert totals is not None
    assert ketamine.quantity == f"{float(totals.total_mg):g} mg"
    assert totals.total_mg == Fraction(60 * 151, 60)  # 60 mg/h for 151 min
    assert summary.diagnoses == ("G90.512",)
    assert "no NDC" in " ".join(summary.problems)  # no vial drawn in the stock record
    assert inputs["rules_version"] == summary.rules_version


def test_a_90_minute_infusion_has_no_add_on_hour(clinic: Clinic) -> None:
    _charted(clinic, 90)
    summary, _ = billing_summary(clinic.session)
    assert [p.code for p in summary.procedures if p.code.startswith("9636")] == ["96365"]


def test_an_infusion_still_running_names_the_missing_stop_time(clinic: Clinic) -> None:
    Walk(clinic).infusing()
    summary, _ = billing_summary(clinic.session)
    assert any("stop time is missing" in p for p in summary.problems)
    assert not [p for p in summary.procedures if p.code.startswith("9636")]


def test_the_page_and_the_csv(clinic: Clinic, client: Client) -> None:
    _charted(clinic, 91)
    client.force_login(clinic.cast.carol)
    html = client.get(reverse("billing_summary", args=[clinic.session.pk])).content.decode()
    assert 'data-code="96366"' in html
    assert "J3490" in html
    response = client.get(reverse("billing_csv", args=[clinic.session.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    codes = {(r[1], r[3]) for r in rows if r[0] == "procedure"}
    assert codes == {("96365", "1"), ("96366", "1"), ("96375", "1")}
    assert any(r[0] == "infusion" and r[2] == "infusion stop" and r[6] for r in rows)


@pytest.mark.parametrize(("role", "status"), [("front_desk", 200), ("clinic_admin", 200),
                                              ("physician", 200), ("nurse", 403),
                                              ("auditor", 403)])
def test_who_sees_the_billing_summary(clinic: Clinic, client: Client, role: str,
                                      status: int) -> None:
    client.force_login(clinic.cast.by_role()[role])
    url = reverse("billing_summary", args=[clinic.session.pk])
    assert client.get(url).status_code == status
