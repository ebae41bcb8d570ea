"""The session's outcome summary (what the outcome report reads of its timeline) follows
every entry charted through the services, corrections and retractions included."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.lib.floats import floats_of
from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.models import SeriesOutcomeSummary, SessionOutcomeSummary
from ketamine_clinic.web.sessions.summaries import outcome_summaries_refresh
from tests.web.sessions.conftest import Walk, key


def _summary(walk: Walk) -> Any:
    return SessionOutcomeSummary.objects.get(session=walk.s)


def _series_fields(walk: Walk) -> tuple[Any, ...] | None:
    row = SeriesOutcomeSummary.objects.filter(series_id=walk.s.series_id).first()
    return None if row is None else (
        row.given_sessions, row.first_given_at, row.pain_before_first_nrs,
        row.pain_at_end_last_nrs, row.last_given_session_id, row.adverse_events,
        floats_of(row.immediate_pairs_nrs))


def _fields(row: Any) -> tuple[Any, ...]:
    return (row.started, row.first_given, row.last_given, row.pain_before_nrs,
            row.pain_at_end_nrs, row.adverse_event_count, row.adverse_events)


def test_the_summary_follows_the_chart_and_an_amended_pain_score_changes_it(
        walk: Walk) -> None:
    walk.ready()  # the pain before, 7, is charted before the start
    assert _fields(_summary(walk)) == (False, False, False, 7.0, None, 0, {})
    assert _series_fields(walk) is None  # no given session yet
    walk.rate("60 mg/h", 30)
    assert _fields(_summary(walk))[:3] == (True, True, True)
    assert _series_fields(walk)[-1] == []  # no pain at the end yet: no pair
    end = walk.observe("pain", 240, nrs=3, phase="end")
    assert _summary(walk).pain_at_end_nrs == 3.0
    assert _series_fields(walk) == (1, walk.s.scheduled_for, 7.0, 3.0, walk.s.pk, {},
                                    [7.0, 3.0])

    services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=end,
                                   reason="the patient said five", idempotency_key=key(),
                                   data={"nrs": 5, "phase": "end"})
    assert _summary(walk).pain_at_end_nrs == 5.0
    assert _series_fields(walk) == (1, walk.s.scheduled_for, 7.0, 5.0, walk.s.pk, {},
                                    [7.0, 5.0])

    event = walk.observe("adverse_event", 90, type="nausea_vomiting", severity="mild")
    walk.observe("adverse_event", 100, type="hypertension", severity="mild")
    row = _summary(walk)
    assert (row.adverse_event_count, row.adverse_events) == (
        2, {"hypertension": 1, "nausea_vomiting": 1})
    services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=event,
                                   reason="charted for the wrong patient",
                                   entered_in_error=True, idempotency_key=key())
    row = _summary(walk)
    assert (row.adverse_event_count, row.adverse_events) == (1, {"hypertension": 1})
    assert _series_fields(walk) == (1, walk.s.scheduled_for, 7.0, 5.0, walk.s.pk,
                                    {"hypertension": 1}, [7.0, 5.0])

    # Worked out again from the whole timeline, the summary is the one kept entry by entry.
    kept, kept_series = _fields(row), _series_fields(walk)
    SessionOutcomeSummary.objects.filter(session=walk.s).delete()
    SeriesOutcomeSummary.objects.filter(series_id=walk.s.series_id).delete()
    assert outcome_summaries_refresh([walk.s.series_id]) == 1
    assert _fields(_summary(walk)) == kept
    assert _series_fields(walk) == kept_series
