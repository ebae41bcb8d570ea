"""The series' follow-up cells (:class:`~.models.FollowUpCell`) and places
(:class:`~.models.SeriesFollowUpPlaces`), worked out again from their answers by the core
(``clinical.outcomes.charted``: ``follow_up_cells``, ``follow_up_places``).

Called in the transaction that records an answer (``services.followup_respond``), in the
one that changes a series' last given session (the sessions' hook, registered in
``apps.py``), by the synthetic cohort loader after its bulk inserts, and by the migrations
that made the tables (with those migrations' models: the model arguments).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ketamine_clinic.clinical.outcomes.charted import (
    GivenAnswer,
    follow_up_cells,
    follow_up_places,
)
from ketamine_clinic.web.lib.floats import float64_bytes
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.models import (
    FollowUpCell,
    FollowUpResponse,
    SeriesFollowUpPlaces,
)
from ketamine_clinic.web.sessions.models import SeriesOutcomeSummary

# Series per query: their ids go into the SQL as parameters (SQLite takes at most 999).
BATCH_SERIES = 500


def report_columns() -> tuple[list[int], dict[str, int]]:
    """The report's follow-up days (day 0 and each point's outcome day, in order) and each
    point's place: its day's column, -1 for the baseline (points without a day count
    nowhere)."""
    days = sorted({0, *(p.outcome_day for p in policy.points() if p.outcome_day is not None)})
    column = {p.key: days.index(p.outcome_day) for p in policy.points()
              if p.outcome_day is not None}
    column["baseline"] = -1
    return days, column


def places_layout(column: Mapping[str, int]) -> tuple[list[int], str]:
    """The places a series' follow-up row holds (in order) and the layout it names them
    by (point and place), which the report checks against its own."""
    return (sorted(set(column.values())),
            " ".join(f"{key}:{place}" for key, place in sorted(column.items())))


def followup_summaries_refresh(series_ids: Iterable[int], *, response_model: Any = None,
                               cell_model: Any = None, places_model: Any = None,
                               series_summary_model: Any = None) -> int:
    """Work out and store again the follow-up cells and places of ``series_ids`` (a series
    without an effective answer has none; ``places_model=False``: not the places, for a
    migration before their table); returns how many series were refreshed."""
    responses_of: Any = response_model or FollowUpResponse
    cells_of: Any = cell_model or FollowUpCell
    places_of: Any = SeriesFollowUpPlaces if places_model is None else places_model
    summaries_of: Any = series_summary_model or SeriesOutcomeSummary
    _, column = report_columns()
    places, layout = places_layout(column)
    ids = sorted(set(series_ids))
    for k in range(0, len(ids), BATCH_SERIES):
        batch = ids[k:k + BATCH_SERIES]
        answers: dict[int, list[GivenAnswer]] = defaultdict(list)
        for sid, *row in (responses_of.objects.filter(follow_up__series_id__in=batch)
                          .order_by().values_list(
                              "follow_up__series_id", "id", "follow_up__point",
                              "follow_up__session_id", "answered_at", "corrects_id",
                              "pain_average_nrs", "opioid_mme_per_day")):
            rid, point, session, at, corrects, pain, mme = row
            answers[sid].append(GivenAnswer(rid, point, session, at, corrects, float(pain),
                                            None if mme is None else float(mme)))
        cells = {sid: follow_up_cells(answers[sid]) for sid in batch if sid in answers}
        cells_of.objects.filter(series_id__in=batch).delete()
        cells_of.objects.bulk_create([
            cells_of(series_id=sid, point=c.point, session_id=c.session_id,
                     pain_nrs=c.pain_nrs, pain_response_id=c.pain_response_id,
                     mme_per_day=c.mme_per_day, mme_response_id=c.mme_response_id)
            for sid, mine in cells.items() for c in mine], batch_size=2000)
        if places_of is False:
            continue
        last_given = dict(summaries_of.objects.filter(series_id__in=batch).order_by()
                          .values_list("series_id", "last_given_session_id"))
        places_of.objects.filter(series_id__in=batch).delete()
        places_of.objects.bulk_create([
            places_of(series_id=sid, last_given_session_id=last_given.get(sid),
                      layout=layout, values=float64_bytes(follow_up_places(
                          answers[sid], column, places, last_given.get(sid))))
            for sid, mine in cells.items() if mine], batch_size=2000)
    return len(ids)


def last_given_changed(last_given: Mapping[int, int | None]) -> None:
    """The sessions' hook: the series' summaries were worked out again, with these last
    given sessions (None: none given); the places of a series worked out for another
    one are worked out again."""
    stale = [sid for sid, session in SeriesFollowUpPlaces.objects.filter(
        series_id__in=list(last_given)).order_by().values_list(
            "series_id", "last_given_session_id") if session != last_given[sid]]
    if stale:
        followup_summaries_refresh(stale)
