"""The busiest pages read the database a fixed number of times, whatever the cohort's size.

Each page is measured over a small and a larger cohort (more patients, series, sessions,
follow-ups due, records on the patient's chart, audit entries): the count may not exceed
the pin at either size, and the larger cohort may not need a query more than the small one
(a query per row would show as growth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.patients import services as patients
from tests.web.outcomes.conftest import answer, make_patient, make_pv, make_series

SMALL, LARGE = 1, 4


@dataclass(frozen=True)
class Pinned:
    name: str
    url: Callable[[Any], str]
    user: Callable[[Any], Any]
    most_queries: int


# The counts measured when pinned (SQLite and PostgreSQL alike): a change that adds a query
# to one of these pages raises its pin here, on purpose.
PAGES = [
    # 56: the fixture's active orders carry their signature now (the orders table requires
    # it), so the page's prefetch of the signers reads once.
    Pinned("patient page", lambda c: reverse("patient_detail", args=[c.ana.pk]),
           lambda c: c.alice, 56),
    Pinned("patient list", lambda c: reverse("patient_list"), lambda c: c.alice, 8),
    Pinned("audit list", lambda c: reverse("audit_list"), lambda c: c.dave, 10),
    Pinned("follow-up worklist", lambda c: reverse("followup_worklist"), lambda c: c.alice, 17),
]


def _grow(cast: Any, pv: Any, start: int, count: int) -> None:
    """``count`` more of everything the pages list, numbered from ``start``."""
    today = timezone.localdate()
    actor = Actor(user=cast.bob, client_address="127.0.0.1", site_code="denver")
    for i in range(start, start + count):
        patient = make_patient(cast, cast.denver, f"DEN-Q{i}", "Quinn", f"Query{i}")
        built = make_series(cast, pv, patient, today - timedelta(days=9), [(7, 3), (6, 2)])
        answer(cast, built, "week1", 0, answered=False, due=today)
        ana = make_series(cast, pv, cast.ana, today - timedelta(days=30 + 3 * i), [(6, 3)])
        answer(cast, ana, "week1", 0, answered=False, due=today)
        patients.allergy_record(actor=actor, patient=cast.ana, substance=f"substance {i}")
        patients.medication_record(actor=actor, patient=cast.ana, name=f"medicine {i}",
                                   dose="1 mg")
        patients.diagnosis_record(actor=Actor(user=cast.alice), patient=cast.ana,
                                  system="icd10cm", code="G90.512",
                                  diagnosed_on=date(2020, 1, 1 + i))
        for n in range(3):
            audit_record(actor=actor, action="patient.view", object_type="patient",
                         object_id=patient.pk, detail={"n": n})


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_page_reads_a_pinned_number_of_times_at_any_cohort_size(
        cast: Any, client: Client, django_assert_max_num_queries: Any, page: Pinned) -> None:
    pv = make_pv()
    client.force_login(page.user(cast))
    url = page.url(cast)
    _grow(cast, pv, 0, SMALL)
    client.get(url)  # warm: the session's first request reads the user and its sites
    with django_assert_max_num_queries(page.most_queries):
        small = _count(client, url)
    _grow(cast, pv, SMALL, LARGE - SMALL)
    with django_assert_max_num_queries(page.most_queries):
        large = _count(client, url)
    print(f"{page.name}: {small} queries with {SMALL}, {large} with {LARGE}")
    assert large <= small, f"{page.name}: {small} queries with {SMALL}, {large} with {LARGE}"
