"""The series' follow-up cells (what the outcome report reads of the answers) follow
every answer recorded through the services, corrections included, and the report read
from it is the one computed from the answers themselves."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.outcomes import services
from ketamine_clinic.web.outcomes.models import FollowUpCell
from ketamine_clinic.web.outcomes.selectors import (
    CohortFilters,
    exact_outcome_report_for,
    outcome_report_for,
)
from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh
from tests.web.outcomes.conftest import answer, make_patient, make_series


def _cells(built: Any) -> list[list[Any]]:
    """The series' cells as [point, session, pain, its answer, MME, its answer]."""
    return [list(row) for row in FollowUpCell.objects.filter(series=built.series)
            .order_by("point", "session_id").values_list(
                "point", "session_id", "pain_nrs", "pain_response_id", "mme_per_day",
                "mme_response_id")]


def _same_report(cast: Any) -> bool:
    sites = [cast.denver.pk, cast.boulder.pk]
    return (json.dumps(outcome_report_for(sites, CohortFilters()).to_dict(), sort_keys=True,
                       default=str)
            == json.dumps(exact_outcome_report_for(sites, CohortFilters()).to_dict(),
                          sort_keys=True, default=str))


def test_a_corrected_answer_changes_the_summary_and_the_report(cast: Any, pv: Any) -> None:
    start = timezone.localdate() - timedelta(days=20)
    built = make_series(cast, pv, cast.ana, start, [(8, 4), (7, 3)])
    answer(cast, built, "baseline", 8, mme=40)
    fu = answer(cast, built, "week1", 0, answered=False, due=timezone.localdate())
    actor = Actor(user=cast.bob)
    first = services.followup_respond(actor=actor, follow_up=fu, answers=services.Answers.check(
        pain_average_nrs="3", pain_worst_nrs="5", opioid_mme_per_day="15"))
    week1 = [c for c in _cells(built) if c[0] == "week1"]
    assert week1 == [["week1", None, 3.0, first.pk, 15.0, first.pk]]
    assert _same_report(cast)

    fixed = services.followup_respond(
        actor=actor, follow_up=fu, corrects=first, correction_reason="patient meant seven",
        answers=services.Answers.check(pain_average_nrs="7", pain_worst_nrs="8"))
    week1 = [c for c in _cells(built) if c[0] == "week1"]
    assert week1 == [["week1", None, 7.0, fixed.pk, None, None]]
    assert _same_report(cast)
    report = outcome_report_for([cast.denver.pk], CohortFilters()).report
    assert report.opioids.n == 0  # the MME went with the corrected answer


def test_an_mme_before_a_later_answer_without_one_still_counts(cast: Any, pv: Any) -> None:
    """Two follow-ups of one point: the pain of the later answer counts, the MME of the
    earlier one (the last that recorded one), as in the exact report."""
    p = make_patient(cast, cast.denver, "DEN-S1", "Sam", "Summary")
    built = make_series(cast, pv, p, date(2025, 7, 1), [(8, 3), (7, 2)])
    answer(cast, built, "baseline", 8, mme=60)
    answer(cast, built, "week1", 4, mme=30, due=date(2025, 7, 9))
    answer(cast, built, "week1", 5, mme=None, due=date(2025, 7, 10))
    cell = next(c for c in _cells(built) if c[0] == "week1")
    assert (cell[2], cell[4]) == (5.0, 30.0)
    assert cell[3] != cell[5]
    assert _same_report(cast)
    report = outcome_report_for([cast.denver.pk], CohortFilters()).report
    assert (report.opioids.n, report.opioids.mean_after_mme) == (1, 30.0)

    kept = _cells(built)
    FollowUpCell.objects.filter(series=built.series).delete()
    assert _cells(built) == []
    assert followup_summaries_refresh([built.series.pk]) == 1
    assert _cells(built) == kept
