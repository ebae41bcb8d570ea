"""Pages that must not grow with the cohort (issue 19): the patient page reads that
patient's rows, the worklist pages its follow-ups and its booster suggestions. Query
counts are pinned at two cohort sizes; times are in benchmarks/bench_pages.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.web.outcomes import worklist
from tests.web.outcomes.conftest import answer, make_patient, make_series

FAMILY_NAMES = ["Abe", "Bly", "Cho", "Dunn", "Eng", "Ford", "Gray", "Holt"]


def add_patients(cast: Any, pv: Any, count: int, first: int = 0) -> list[Any]:
    """``count`` more Denver patients, each a series that gave relief which was then lost
    (a booster is suggested) and an open follow-up due today."""
    start = timezone.localdate() - timedelta(days=40)
    out = []
    for i in range(first, first + count):
        p = make_patient(cast, cast.denver, f"DEN-9{i:02d}", "Pat", FAMILY_NAMES[i])
        built = make_series(cast, pv, p, start, [(8, 3), (7, 3)])
        answer(cast, built, "week1", 3)
        answer(cast, built, "week2", 7)  # 12.5% below baseline: relief lost
        answer(cast, built, "week4", 0, answered=False, due=timezone.localdate())
        out.append(p)
    return out


def queries_of(client: Client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.fixture
def ana(cast: Any, pv: Any) -> Any:
    start = timezone.localdate() - timedelta(days=40)
    built = make_series(cast, pv, cast.ana, start, [(7, 4), (6, 3), (5, 2)])
    answer(cast, built, "week1", 3)
    answer(cast, built, "week2", 7)
    answer(cast, built, "week4", 0, answered=False, due=timezone.localdate())
    return built


def panel_queries(cast: Any) -> int:
    """What the outcomes panel of Ana's page reads (its selectors), in queries."""
    with CaptureQueriesContext(connection) as ctx:
        worklist.patient_series(cast.ana)
        worklist.patient_trajectory(cast.ana)
        worklist.boosters_suggested([cast.denver.pk], patient=cast.ana)
    return len(ctx.captured_queries)


def worklist_queries(cast: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        work = worklist.worklist_for(cast.bob)
        list(work.page)
    return len(ctx.captured_queries)


# Pinned: what the outcomes panel and the worklist read, whatever the size of the cohort.
# (The whole pages, with the other areas' panels and the audit entry, are compared between
# the two cohort sizes.)
OUTCOMES_PANEL_QUERIES = 13
WORKLIST_SELECTOR_QUERIES = 12


def test_the_patient_page_reads_as_many_queries_with_a_larger_cohort(
        cast: Any, pv: Any, ana: Any, client: Client) -> None:
    client.force_login(cast.alice)
    url = reverse("patient_detail", args=[cast.ana.pk])
    small, page = queries_of(client, url)
    small_panel = panel_queries(cast)
    add_patients(cast, pv, 6)
    large, page_after = queries_of(client, url)
    assert large == small
    assert (small_panel, panel_queries(cast)) == (OUTCOMES_PANEL_QUERIES,
                                                  OUTCOMES_PANEL_QUERIES)
    assert 'id="booster-suggested"' in page
    assert 'id="booster-suggested"' in page_after


def test_a_patient_with_six_sessions_reads_as_many_queries_as_one_with_one(
        cast: Any, pv: Any, client: Client) -> None:
    start = timezone.localdate() - timedelta(days=40)
    counts = []
    for i, visits in enumerate((1, 6)):
        p = make_patient(cast, cast.denver, f"DEN-8{i}", "Lee", FAMILY_NAMES[i])
        built = make_series(cast, pv, p, start, [(8, 3)] * visits)
        for visit in built.sessions:
            answer(cast, built, "day1", 3, session=visit)
        answer(cast, built, "week1", 3)
        client.force_login(cast.alice)
        counts.append(queries_of(client, reverse("patient_detail", args=[p.pk]))[0])
    assert counts[1] == counts[0]


def test_the_worklist_reads_as_many_queries_with_a_larger_cohort(
        cast: Any, pv: Any, ana: Any, client: Client) -> None:
    client.force_login(cast.bob)
    small, _page = queries_of(client, reverse("followup_worklist"))
    small_selector = worklist_queries(cast)
    add_patients(cast, pv, 6)
    large, page_after = queries_of(client, reverse("followup_worklist"))
    assert large == small
    assert (small_selector, worklist_queries(cast)) == (WORKLIST_SELECTOR_QUERIES,
                                                        WORKLIST_SELECTOR_QUERIES)
    boosters = page_after.split('id="boosters"')[1]
    assert "Ruiz, Ana" in boosters
    assert "Abe, Pat" in boosters


def test_the_worklist_pages_its_follow_ups_overdue_first(
        cast: Any, pv: Any, ana: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worklist, "WORKLIST_PAGE_ROWS", 2)
    today = timezone.localdate()
    overdue = [answer(cast, ana, "week8", 0, answered=False, due=today - timedelta(days=d))
               for d in (3, 2)]
    client.force_login(cast.bob)
    first = client.get(reverse("followup_worklist")).content.decode()
    second = client.get(reverse("followup_worklist") + "?page=2").content.decode()
    for f in overdue:
        assert f'data-follow-up="{f.pk}"' in first
        assert f'data-follow-up="{f.pk}"' not in second
    assert second.count("data-follow-up=") == 1  # the one due today
    assert "Follow-ups 3–3 of 3" in second
    assert '<span class="badge bad">2</span>' in second  # the overdue count of all pages


def test_booster_suggestions_come_one_window_of_patients_at_a_time(
        cast: Any, pv: Any, ana: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    others = add_patients(cast, pv, 2)
    everyone = worklist.boosters_suggested([cast.denver.pk])
    assert [b["patient_id"] for b in everyone] == [others[0].pk, others[1].pk, cast.ana.pk]
    monkeypatch.setattr(worklist, "BOOSTER_PAGE_PATIENTS", 2)
    pages = [worklist.booster_suggestions([cast.denver.pk], n) for n in (1, 2)]
    assert [[b["patient_id"] for b in p.rows] for p in pages] == [
        [others[0].pk, others[1].pk], [cast.ana.pk]]
    assert (pages[0].has_next, pages[1].has_next, pages[1].has_previous) == (True, False, True)
    client.force_login(cast.bob)
    body = client.get(reverse("followup_worklist") + "?boosters=2").content.decode()
    assert "Among treated patients 3–3 of 3" in body
    assert "Ruiz, Ana" in body.split('id="boosters"')[1]
