"""The series' follow-up cells and places (what the outcome report reads of the answers)
follow every answer recorded through the services, corrections included, and the report read
from it is the one computed from the answers themselves."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.floats import float64_bytes, floats_of
from ketamine_clinic.web.outcomes import services
from ketamine_clinic.web.outcomes.models import FollowUpCell, SeriesFollowUpPlaces
from ketamine_clinic.web.outcomes.selectors import (
    CohortFilters,
    exact_outcome_report_for,
    outcome_report_for,
)
from ketamine_clinic.web.outcomes.summaries import (
    followup_summaries_refresh,
    places_layout,
    report_columns,
)
from tests.web.outcomes.conftest import answer, make_patient, make_series


def _cells(built: Any) -> list[list[Any]]:
    """The series' cells as [point, session, pain, its answer, MME, its answer]."""
    return [list(row) for row in FollowUpCell.objects.filter(series=built.series)
            .order_by("point", "session_id").values_list(
                "point", "session_id", "pain_nrs", "pain_response_id", "mme_per_day",
                "mme_response_id")]


def _report_json(cast: Any, report_for: Any = outcome_report_for) -> str:
    """The whole report of both sites, as JSON to compare."""
    sites = [cast.denver.pk, cast.boulder.pk]
    return json.dumps(report_for(sites, CohortFilters()).to_dict(), sort_keys=True,
                      default=str)


def _same_report(cast: Any) -> bool:
    return _report_json(cast) == _report_json(cast, exact_outcome_report_for)


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


def _places(built: Any) -> tuple[Any, list[Any]]:
    """The series' follow-up places as (last given session, values)."""
    row = SeriesFollowUpPlaces.objects.get(series=built.series)
    return row.last_given_session_id, floats_of(row.values)


def _place(column: str) -> int:
    """Where a point's pain sits in the places' values."""
    _, columns = report_columns()
    places, _ = places_layout(columns)
    return 2 * places.index(columns[column])


def test_the_places_follow_answers_recorded_and_corrected(cast: Any, pv: Any) -> None:
    start = timezone.localdate() - timedelta(days=20)
    built = make_series(cast, pv, cast.ana, start, [(8, 4), (7, 3)])
    answer(cast, built, "baseline", 8, mme=40)
    fu = answer(cast, built, "week1", 0, answered=False, due=timezone.localdate())
    actor = Actor(user=cast.bob)
    first = services.followup_respond(actor=actor, follow_up=fu, answers=services.Answers.check(
        pain_average_nrs="3", pain_worst_nrs="5", opioid_mme_per_day="15"))
    session, values = _places(built)
    assert session == built.sessions[-1].pk
    at = _place("week1")
    assert values[at:at + 2] == [3.0, 15.0]
    assert values[_place("baseline"):_place("baseline") + 2] == [8.0, 40.0]
    assert _same_report(cast)

    services.followup_respond(
        actor=actor, follow_up=fu, corrects=first, correction_reason="patient meant seven",
        answers=services.Answers.check(pain_average_nrs="7", pain_worst_nrs="8"))
    _, values = _places(built)
    assert values[at:at + 2] == [7.0, None]
    assert _same_report(cast)


def test_the_places_follow_a_new_last_session(cast: Any, pv: Any) -> None:
    """A day-1 answer counts after the series' last given session only: when a later
    session is given, the places are worked out again for it in that write, and the day-1
    answer after the earlier session no longer counts."""
    from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry
    from tests.web.outcomes.conftest import at, charted

    p = make_patient(cast, cast.denver, "DEN-S2", "Lee", "Later")
    built = make_series(cast, pv, p, date(2025, 7, 1), [(8, 3), (7, 2)], planned=3)
    answer(cast, built, "baseline", 8)
    answer(cast, built, "day1", 2, mme=20)
    day1 = _place("day1")
    assert _places(built)[0] == built.sessions[-1].pk
    assert _places(built)[1][day1:day1 + 2] == [2.0, 20.0]
    assert _same_report(cast)

    before = built.sessions[-1]
    third = InfusionSession.objects.create(
        order=before.order, series=built.series, patient=p, site=p.site, visit_number=3,
        scheduled_for=at(date(2025, 7, 3), 9), state="discharged", created_by=cast.bob)
    TimelineEntry.objects.create(session=third, kind="infusion_start",
                                 occurred_at=at(date(2025, 7, 3), 9, 30),
                                 payload={"rate_mg_per_h": 20, "pump_rate_ml_per_h": 20},
                                 recorded_by=cast.bob)
    charted(built)
    session, values = _places(built)
    assert session == third.pk
    assert values[day1:day1 + 2] == [None, None]
    assert values[_place("baseline")] == 8.0
    assert _same_report(cast)


def test_places_worked_out_for_another_session_or_layout_are_not_read(
        cast: Any, pv: Any) -> None:
    """The report checks that a series' places were worked out for its last given session
    and its own layout; where not, it reads that series' cells (the same report)."""
    p = make_patient(cast, cast.denver, "DEN-S3", "Kim", "Stale")
    built = make_series(cast, pv, p, date(2025, 7, 1), [(8, 3), (7, 2)])
    answer(cast, built, "baseline", 8, mme=50)
    answer(cast, built, "day1", 2)
    answer(cast, built, "week1", 3, mme=20)
    kept = _report_json(cast)
    rows = SeriesFollowUpPlaces.objects.filter(series=built.series)
    wrong = float64_bytes([9.0] * len(floats_of(rows.get().values)))
    rows.update(values=wrong, last_given_session=built.sessions[0])
    assert _same_report(cast)
    rows.update(last_given_session=built.sessions[-1], layout="baseline:-1")
    assert _same_report(cast)
    assert _report_json(cast) == kept
    rows.update(layout=places_layout(report_columns()[1])[1])
    assert not _same_report(cast)  # the wrong values, now read: the check can fail


def test_the_places_are_worked_out_again_the_same(cast: Any, pv: Any) -> None:
    p = make_patient(cast, cast.denver, "DEN-S4", "Ray", "Again")
    built = make_series(cast, pv, p, date(2025, 7, 1), [(8, 3), (7, 2)])
    answer(cast, built, "baseline", 8, mme=60)
    answer(cast, built, "week1", 4, mme=30, due=date(2025, 7, 9))
    answer(cast, built, "week1", 5, mme=None, due=date(2025, 7, 10))
    kept = _places(built)
    assert kept[1][_place("week1"):_place("week1") + 2] == [5.0, 30.0]
    SeriesFollowUpPlaces.objects.filter(series=built.series).delete()
    assert followup_summaries_refresh([built.series.pk]) == 1
    assert _places(built) == kept


def test_the_migrations_backfill_the_places_and_the_pairs(cast: Any, pv: Any) -> None:
    """The migrations that made the follow-up places and the series' immediate pairs work
    them out from the records already there, with the models of their own time."""
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from ketamine_clinic.web.sessions.models import SeriesOutcomeSummary

    p = make_patient(cast, cast.denver, "DEN-S5", "Mo", "Migrated")
    built = make_series(cast, pv, p, date(2025, 7, 1), [(8, 3), (7, 2)])
    answer(cast, built, "baseline", 8, mme=60)
    answer(cast, built, "day1", 2, mme=30)
    answer(cast, built, "week1", 4)
    kept_places = _places(built)
    summary = SeriesOutcomeSummary.objects.filter(series=built.series)
    kept_pairs = floats_of(summary.get().immediate_pairs_nrs)
    assert kept_pairs == [8.0, 3.0, 7.0, 2.0]
    SeriesFollowUpPlaces.objects.filter(series=built.series).delete()
    summary.update(immediate_pairs_nrs=b"")

    loader = MigrationExecutor(connection).loader
    for app, area, name in (("infusion_sessions", "sessions", "0006_series_immediate_pairs"),
                            ("outcomes", "outcomes", "0004_series_follow_up_places")):
        module = importlib.import_module(f"ketamine_clinic.web.{area}.migrations.{name}")
        module.backfill(loader.project_state((app, name)).apps, None)
    assert _places(built) == kept_places
    assert floats_of(summary.get().immediate_pairs_nrs) == kept_pairs
    assert _same_report(cast)
