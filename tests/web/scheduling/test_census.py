"""The day's census: each visit's readiness (screening, consent, order, escort, checklist)
and the chair board with free chairs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.scheduling import selectors, services
from ketamine_clinic.web.scheduling.checklist import checklist


def _all_yes() -> dict[str, bool]:
    return dict.fromkeys(checklist().keys, True)


def _state(visit: Any) -> dict[str, bool]:
    visit.refresh_from_db()
    return {c.key: c.ok for c in selectors.visit_readiness(visit)}


def test_a_visit_is_ready_once_its_checklist_and_escort_are_recorded(sched: Any) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    assert _state(visit) == {"screening": True, "consent": True, "order": True,
                             "escort": False, "checklist": False}
    services.visit_checklist_record(actor=sched.actor(), visit=visit, answers=_all_yes(),
                                    escort_name="Luis Ruiz")
    assert all(_state(visit).values())
    assert visit.events.filter(kind="checklist").exists()


def test_a_no_on_the_checklist_keeps_the_visit_not_ready_and_says_which(sched: Any) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    services.visit_checklist_record(actor=sched.actor(), visit=visit,
                                    answers={**_all_yes(), "driver": False},
                                    escort_name="Luis Ruiz")
    visit.refresh_from_db()
    [check] = [c for c in selectors.visit_readiness(visit) if c.key == "checklist"]
    assert not check.ok
    assert "responsible adult" in check.detail


def test_the_checklist_needs_every_answer_and_an_escort(sched: Any) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    with pytest.raises(UsageError, match="fasting"):
        services.visit_checklist_record(actor=sched.actor(), visit=visit,
                                        answers={"driver": True}, escort_name="Luis")
    with pytest.raises(UsageError, match="escort_name"):
        services.visit_checklist_record(actor=sched.actor(), visit=visit, answers=_all_yes(),
                                        escort_name=" ")


def test_a_withdrawn_consent_an_ended_order_or_a_lapsed_screening_show_as_problems(
        sched: Any) -> None:
    from ketamine_clinic.web.documents.services import consent_withdraw
    from ketamine_clinic.web.protocols.models import Consent

    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    consent = Consent.objects.filter(patient=sched.cast.ana).latest("signed_at")
    consent_withdraw(actor=sched.actor(sched.cast.alice), consent=consent,
                     reason="changed her mind")
    assert _state(visit)["consent"] is False
    order = sched.ana_order
    order.status = "discontinued"
    order.save()
    assert _state(visit)["order"] is False
    later = visit.order.series.screening.valid_until
    checks = {c.key: c for c in selectors.visit_readiness(
        visit, today=later + timedelta(days=1))}
    assert not checks["screening"].ok
    assert "screens the patient again" in checks["screening"].detail


def test_the_census_lists_the_days_visits_in_order_with_their_readiness(
        sched: Any, client: Client, django_assert_max_num_queries: Any) -> None:
    [bea] = sched.book(sched.bea_order, (1, sched.at(7), "2"))
    [ana] = sched.book(sched.ana_order, (1, sched.at(9), "1"))
    services.visit_checklist_record(actor=sched.actor(), visit=bea, answers=_all_yes(),
                                    escort_name="Kim Lund")
    client.force_login(sched.cast.bob)
    url = reverse("census_today", args=["denver"]) + f"?day={sched.day.isoformat()}"
    with django_assert_max_num_queries(80):
        html = client.get(url).content.decode()
    assert html.index(f'data-visit="{bea.pk}"') < html.index(f'data-visit="{ana.pk}"')
    assert "1 ready" in html
    assert "not yet confirmed for this visit" in html  # Ana's registered escort


def test_the_census_query_count_does_not_grow_with_each_visit(
        sched: Any, client: Client, django_assert_max_num_queries: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(sched.cast.bob)
    url = reverse("census_today", args=["denver"]) + f"?day={sched.day.isoformat()}"
    sched.book(sched.ana_order, (1, sched.at(7), "1"))
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    sched.book(sched.bea_order, (1, sched.at(7), "2"))
    with CaptureQueriesContext(connection) as two:
        client.get(url)
    per_visit = len(two) - len(one)
    # Each visit's readiness reads its screening, consent and series: a bounded handful.
    print(f"census queries: {len(one)} with one visit, {len(two)} with two")
    assert per_visit <= 12, per_visit


def test_the_census_is_for_the_users_sites_only(sched: Any, client: Client) -> None:
    client.force_login(sched.cast.oscar)
    assert client.get(reverse("census_today", args=["denver"])).status_code == 404
    assert client.get(reverse("census_home")).status_code == 302


def test_the_desk_records_the_checklist_on_the_visit_page(sched: Any, client: Client) -> None:
    [visit] = sched.series(sched.ana_order, sched.at(8), visits=1)
    client.force_login(sched.cast.carol)
    data = {f"item_{k}": "yes" for k in checklist().keys}
    bad = client.post(reverse("visit_checklist", args=[visit.pk]), {**data,
                                                                     "escort_name": ""})
    assert bad.status_code == 400
    ok = client.post(reverse("visit_checklist", args=[visit.pk]),
                     {**data, "escort_name": "Luis Ruiz", "escort_phone": "303"})
    assert ok.status_code == 302
    visit.refresh_from_db()
    assert visit.checklist["escort_name"] == "Luis Ruiz"
    client.force_login(sched.cast.erin)  # the auditor sees, does not answer
    assert client.post(reverse("visit_checklist", args=[visit.pk]), data).status_code == 403
