"""The cohort report: the page's numbers are the core's on a hand-made cohort."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical import outcomes as core
from ketamine_clinic.web.audit.models import AuditEntry
from tests.web.outcomes.conftest import answer, at, charted, make_patient, make_series

F = core.FollowUp


def expected_denver() -> list[core.SeriesOutcome]:
    """The Denver series of ``hand_cohort``, written out from the fixture's numbers."""
    return [
        core.SeriesOutcome("s1", "p1", "crps", "test-standard", 8,
                           (F(0, 3), F(1, 4), F(7, 4), F(14, 6), F(28, 7)), sessions=3,
                           adverse_events=("nausea_vomiting",), mme_before=60, mme_after=45),
        core.SeriesOutcome("s2", "p2", "crps", "test-standard", 6,
                           (F(0, 2), F(1, 2), F(7, 3), F(14, 3)), sessions=2,
                           mme_before=30, mme_after=30),
        core.SeriesOutcome("s3", "p3", "other", "alt-protocol", 9, (F(0, 7), F(7, 8)),
                           sessions=2, adverse_events=("hypertension", "other")),
        core.SeriesOutcome("s4", "p4", "other", "test-standard", 5,
                           (F(0, 2), F(7, 2), F(14, 4), F(28, 5)), sessions=1),
    ]


def _strip_ids(report: dict[str, Any]) -> dict[str, Any]:
    for key in ("relief_by_diagnosis", "relief_by_protocol"):
        report[key].pop("inputs", None)
    return report


def _api_report(client: Client, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/outcomes/report", params)
    assert response.status_code == 200, response.content
    return response.json()["report"]


def test_the_api_report_equals_the_core_on_the_hand_made_cohort(cast: Any, client: Client,
                                                                 hand_cohort: Any) -> None:
    client.force_login(cast.dave)  # Denver only: the Boulder series is not his
    got = _api_report(client)
    want = _strip_ids(core.outcome_report(expected_denver(), loss_percent=30).to_dict())
    for key, value in want.items():
        assert json.dumps(got[key], sort_keys=True) == json.dumps(
            json.loads(json.dumps(value)), sort_keys=True), key


def test_the_hand_made_cohort_gives_the_numbers_worked_out_by_hand(cast: Any, client: Client,
                                                                  hand_cohort: Any) -> None:
    client.force_login(cast.dave)
    got = _api_report(client)
    assert got["n_series"] == 4
    # End of the last infusion vs baseline: 3/8, 2/6, 7/9, 2/5 -> 62.5%, 66.7%, 22%, 60%.
    assert got["responders"]["responders"]["30"]["k"] == 3
    assert got["responders"]["responders"]["50"]["k"] == 3
    # 3 events in 3 + 2 + 2 + 1 sessions.
    assert got["adverse_events"]["per_session"] == pytest.approx(3 / 8)
    # CRPS: 3-8 = -5 and 2-6 = -4; other: 7-9 = -2 and 2-5 = -3.
    assert got["pain_change_by_diagnosis"]["crps"]["mean"] == pytest.approx(-4.5)
    assert got["pain_change_by_diagnosis"]["other"]["mean"] == pytest.approx(-2.5)
    # Relief lost at week 2 (s1: 6/8 = 25% < 30%) and (s4: 4/5 = 20%); s2 censored at 14.
    crps = got["relief_by_diagnosis"]["curves"]["crps"]
    assert (crps["n"], crps["events"]) == (2, 1)
    assert got["relief_by_diagnosis"]["without_relief"] == {"other": 1}
    # Opioids: 60 -> 45 and 30 -> 30.
    assert got["opioids"]["change"]["mean"] == pytest.approx(-7.5)
    # Immediate response: 8 infusions, reductions 37.5, 33.3, 40, 50, 50, 11.1, 12.5, 60 %.
    imm = got["immediate_response"]
    assert imm["infusions"] == 8
    assert imm["at_least_percent"]["30"]["k"] == 6
    assert imm["at_least_percent"]["50"]["k"] == 3
    mean = (37.5 + 100 / 3 + 40 + 50 + 50 + 100 / 9 + 12.5 + 60) / 8
    assert imm["mean_percent_reduction"]["mean"] == pytest.approx(mean)


def test_the_page_shows_the_core_numbers(cast: Any, client: Client, hand_cohort: Any) -> None:
    client.force_login(cast.dave)
    body = client.get(reverse("outcome_report")).content.decode()
    want = core.outcome_report(expected_denver(), loss_percent=30)
    r30 = want.responders.by_threshold["30"]
    assert f'data-responders="30">{100 * r30.value:.0f}%' in body
    assert f"{r30.k} of {r30.n}" in body
    assert f"data-ae-rate>{want.adverse_events.per_session:.3f}" in body
    crps = want.pain_change_by_diagnosis["crps"]
    assert f"<td data-mean>{crps.mean:.2f}</td>" in body
    assert 'data-n-series>4<' in body
    assert "plotly" in body
    assert 'id="plot-km-diagnosis"' in body


def test_the_filters_narrow_the_cohort(cast: Any, client: Client, hand_cohort: Any) -> None:
    client.force_login(cast.alice)  # both sites
    assert _api_report(client)["n_series"] == 5
    assert _api_report(client, site="boulder")["n_series"] == 1
    assert _api_report(client, diagnosis="crps")["n_series"] == 3  # s1, s2 and Boulder's
    assert _api_report(client, protocol="alt-protocol")["n_series"] == 1
    got = _api_report(client, date_from="2025-02-10", date_to="2025-03-31")
    assert got["n_series"] == 2  # s2 (10 Feb) and s3 (3 Mar)
    assert got["filters"]["date_from"] == "2025-02-10"


def test_bad_filters_are_refused_with_the_field_named(cast: Any, client: Client,
                                                      hand_cohort: Any) -> None:
    client.force_login(cast.dave)
    response = client.get("/api/v1/outcomes/report", {"site": "boulder"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "site"
    response = client.get("/api/v1/outcomes/report",
                          {"date_from": "2025-05-01", "date_to": "2025-04-01"})
    assert response.json()["errors"][0]["field"] == "date_to"
    page = client.get(reverse("outcome_report"), {"date_from": "2025-05-01",
                                                  "date_to": "2025-04-01"})
    assert page.status_code == 400
    assert "is before the start date" in page.content.decode()


def test_a_corrected_pain_score_counts_and_the_one_it_corrects_does_not(
        cast: Any, client: Client, hand_cohort: Any) -> None:
    from ketamine_clinic.web.sessions.models import TimelineEntry

    last = hand_cohort.p4.sessions[-1]
    wrong = TimelineEntry.objects.get(session=last, kind="pain", payload__phase="end")
    TimelineEntry.objects.create(session=last, kind="pain", occurred_at=wrong.occurred_at,
                                 payload={"nrs": 4, "phase": "end"}, recorded_by=cast.bob,
                                 corrects=wrong, correction_reason="misheard")
    charted(hand_cohort.p4)
    client.force_login(cast.dave)
    got = _api_report(client, protocol="test-standard", diagnosis="other")
    # s4 end pain is now 4 of baseline 5: a 20% reduction, not a responder.
    assert got["responders"]["responders"]["30"]["k"] == 0


def test_the_report_needs_a_fixed_number_of_queries_whatever_the_cohort_size(
        cast: Any, hand_cohort: Any, pv: Any) -> None:
    from ketamine_clinic.web.outcomes.selectors import CohortFilters, outcome_report_for

    sites = [cast.denver.pk]
    with CaptureQueriesContext(connection) as small:
        outcome_report_for(sites, CohortFilters())
    for i in range(6):
        p = make_patient(cast, cast.denver, f"DEN-Q{i}", "Q", f"Query{i}")
        b = make_series(cast, pv, p, date(2025, 5, 1 + i), [(7, 3), (6, 2)], {1: ["other"]})
        answer(cast, b, "baseline", 7, mme=20)
        answer(cast, b, "day1", 3)
        answer(cast, b, "week1", 4, mme=10)
    with CaptureQueriesContext(connection) as large:
        report = outcome_report_for(sites, CohortFilters())
    assert report.report.n_series == 10
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(large.captured_queries) <= 5


def test_csv_export_has_one_row_per_number(cast: Any, client: Client,
                                           hand_cohort: Any) -> None:
    client.force_login(cast.erin)
    response = client.get(reverse("outcome_report_csv"), {"diagnosis": "crps"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by = {(r["section"], r["group"], r["measure"]): r for r in rows}
    resp = by[("responders", "all", "share >= 30% reduction")]
    assert (resp["n"], resp["k"], float(resp["value"])) == ("2", "2", 1.0)
    assert by[("cohort", "all", "series")]["value"] == "2"
    assert AuditEntry.objects.filter(action="outcomes.report", username="erin").exists()


def test_pdf_export_is_a_pdf_with_the_plots(cast: Any, client: Client,
                                           hand_cohort: Any) -> None:
    client.force_login(cast.alice)
    response = client.get(reverse("outcome_report_pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert len(response.content) > 20_000  # four PNG plots are in it


def test_an_empty_cohort_gives_a_page_without_plots(cast: Any, client: Client) -> None:
    client.force_login(cast.dave)
    response = client.get(reverse("outcome_report"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "data-n-series>0<" in body
    assert 'id="plot-km-diagnosis"' not in body


def _report_json(data: Any) -> str:
    return json.dumps(data.to_dict(), sort_keys=True, default=str)


def test_the_array_report_equals_the_exact_report_with_competing_rows(
        cast: Any, hand_cohort: Any, pv: Any) -> None:
    """The report read as arrays is the one computed series by series, also where rows
    compete for one place: two pain scores before one infusion and two at its end (the
    first before and the last at the end count), two answers for one follow-up day, two
    cells for one day (one after the last session, one after none) and two baselines, an
    answer after an earlier session, a corrected pain score, and a series never started."""
    from ketamine_clinic.web.outcomes.selectors import (
        CohortFilters,
        exact_outcome_report_for,
        outcome_report_for,
    )
    from ketamine_clinic.web.sessions.models import TimelineEntry

    p = make_patient(cast, cast.denver, "DEN-C1", "Cara", "Compete")
    b = make_series(cast, pv, p, date(2025, 6, 2), [(8, 3), (7, 2), (6, 4)], {2: ["other"]})
    first, last = b.sessions[0], b.sessions[-1]
    for session, phase, nrs, hour in ((first, "pre", 9, 8), (first, "pre", 2, 10),
                                      (last, "end", 1, 12), (last, "end", 5, 15)):
        TimelineEntry.objects.create(session=session, kind="pain", occurred_at=at(
            date(2025, 6, 2) + timedelta(days=session.visit_number - 1), hour),
            payload={"nrs": nrs, "phase": phase}, recorded_by=cast.bob)
    wrong = TimelineEntry.objects.filter(session=b.sessions[1], kind="pain",
                                         payload__phase="end").get()
    TimelineEntry.objects.create(session=b.sessions[1], kind="pain",
                                 occurred_at=wrong.occurred_at,
                                 payload={"nrs": 6, "phase": "end"}, recorded_by=cast.bob,
                                 corrects=wrong, correction_reason="misheard")
    charted(b)
    answer(cast, b, "baseline", 8, mme=40)
    answer(cast, b, "week1", 3, mme=30, due=date(2025, 6, 12))
    answer(cast, b, "week1", 6, mme=None, due=date(2025, 6, 11))
    answer(cast, b, "week2", 7, due=date(2025, 6, 19))
    answer(cast, b, "day1", 9, session=first)  # after an earlier session: not counted
    # Two cells for one place: week 2 after the last session (earlier, with an MME) and
    # without a session (later, without); two baselines after different sessions.
    answer(cast, b, "week2", 4, mme=25, session=last, due=date(2025, 6, 18))
    answer(cast, b, "baseline", 6, mme=35, session=b.sessions[1], due=date(2025, 3, 2))
    q = make_patient(cast, cast.denver, "DEN-C2", "Nora", "Never")
    make_series(cast, pv, q, date(2025, 6, 3), [])
    # A day-1 answer recorded against another series' last session counts for neither.
    r = make_patient(cast, cast.denver, "DEN-C3", "Otto", "Other")
    c = make_series(cast, pv, r, date(2025, 6, 4), [(7, 3)])
    charted(c)
    answer(cast, c, "baseline", 7)
    answer(cast, c, "day1", 1, session=last)

    sites = [cast.denver.pk, cast.boulder.pk]
    fast = outcome_report_for(sites, CohortFilters())
    exact = exact_outcome_report_for(sites, CohortFilters())
    assert _report_json(fast) == _report_json(exact)
    assert (fast.report.relief_by_diagnosis.durations
            == exact.report.relief_by_diagnosis.durations)
    for filters in (CohortFilters(diagnosis="crps"), CohortFilters(protocol="alt-protocol"),
                    CohortFilters(date_from=date(2025, 6, 1))):
        assert (_report_json(outcome_report_for(sites, filters))
                == _report_json(exact_outcome_report_for(sites, filters)))


@pytest.mark.django_db
def test_the_array_report_equals_the_exact_report_on_a_synthetic_cohort(cast: Any) -> None:
    from ketamine_clinic.web.outcomes.cohort_loader import load_synthetic_cohort
    from ketamine_clinic.web.outcomes.selectors import (
        CohortFilters,
        exact_outcome_report_for,
        outcome_report_for,
    )

    load_synthetic_cohort(n_patients=25, seed=11, start_date=date(2024, 1, 8),
                          progress=False, sites=[cast.denver, cast.boulder])
    sites = [cast.denver.pk, cast.boulder.pk]
    assert (_report_json(outcome_report_for(sites, CohortFilters()))
            == _report_json(exact_outcome_report_for(sites, CohortFilters())))


def test_a_report_user_of_one_site_sees_only_that_sites_series(cast: Any, client: Client,
                                                               pv: Any) -> None:
    make_series(cast, pv, cast.zed, timezone.localdate() - timedelta(days=9), [(7, 3)])
    client.force_login(cast.dave)  # Denver
    assert client.get("/api/v1/outcomes/report").json()["report"]["n_series"] == 0
    client.force_login(cast.alice)  # Denver and Boulder
    assert client.get("/api/v1/outcomes/report").json()["report"]["n_series"] == 1
