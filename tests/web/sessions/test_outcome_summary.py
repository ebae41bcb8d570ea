"""The session's outcome summary (what the outcome report reads of its timeline) follows
every entry charted through the services, corrections and retractions included."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.models import SessionOutcomeSummary
from ketamine_clinic.web.sessions.summaries import outcome_summaries_refresh
from tests.web.sessions.conftest import Walk, key


def _summary(walk: Walk) -> Any:
    return SessionOutcomeSummary.objects.get(session=walk.s)


def _fields(row: Any) -> tuple[Any, ...]:
    return (row.started, row.first_given, row.last_given, row.pain_before_nrs,
            row.pain_at_end_nrs, row.adverse_event_count, row.adverse_events)


def test_the_summary_follows_the_chart_and_an_amended_pain_score_changes_it(
        walk: Walk) -> None:
    walk.ready()  # the pain before, 7, is charted before the start
    assert _fields(_summary(walk)) == (False, False, False, 7.0, None, 0, {})
    walk.rate("60 mg/h", 30)
    assert _fields(_summary(walk))[:3] == (True, True, True)
    end = walk.observe("pain", 240, nrs=3, phase="end")
    assert _summary(walk).pain_at_end_nrs == 3.0

    services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=end,
                                   reason="the patient said five", idempotency_key=key(),
                                   data={"nrs": 5, "phase": "end"})
    assert _summary(walk).pain_at_end_nrs == 5.0

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

    # Worked out again from the whole timeline, the summary is the one kept entry by entry.
    kept = _fields(row)
    SessionOutcomeSummary.objects.filter(session=walk.s).delete()
    assert outcome_summaries_refresh([walk.s.series_id]) == 1
    assert _fields(_summary(walk)) == kept
