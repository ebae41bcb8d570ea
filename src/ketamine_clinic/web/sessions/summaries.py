"""The sessions' outcome summaries (:class:`~.models.SessionOutcomeSummary`), worked out
again from their timelines by the core (``clinical.outcomes.charted``).

Called in the transaction that appends a timeline entry that changes a summary (the
services' ``_store``), by the synthetic cohort loader after its bulk inserts, and by the
migration that made the table (with that migration's models: the three model arguments).
A whole series is worked out at once, since its first and last given sessions are
decided within it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from ketamine_clinic.clinical.outcomes.charted import (
    SUMMARY_KINDS,
    ChartedEntry,
    ChartedSession,
    series_summaries,
    session_summaries,
)
from ketamine_clinic.web.lib.floats import float64_bytes
from ketamine_clinic.web.sessions import hooks
from ketamine_clinic.web.sessions.models import (
    InfusionSession,
    SeriesOutcomeSummary,
    SessionOutcomeSummary,
    TimelineEntry,
)

# Series per query: their ids go into the SQL as parameters (SQLite takes at most 999).
BATCH_SERIES = 500
FIELDS = ["series", "scheduled_for", "started", "first_given", "last_given", "pain_before_nrs",
          "pain_at_end_nrs", "adverse_event_count", "adverse_events"]
# The series summaries' pairs came with migration 0006: a backfill before it (0005, with the
# models of its time) stores the other fields only.
PAIRS_FIELD = "immediate_pairs_nrs"
SERIES_FIELDS = ["given_sessions", "first_given_at", "pain_before_first_nrs",
                 "pain_at_end_last_nrs", "last_given_session", "adverse_events", PAIRS_FIELD]


def changes_summary(kind: str, corrects_id: int | None) -> bool:
    """Whether appending an entry of ``kind`` (correcting ``corrects_id``) may change its
    session's outcome summary."""
    return kind in SUMMARY_KINDS or corrects_id is not None


def outcome_summaries_refresh(series_ids: Iterable[int], *, session_model: Any = None,
                              entry_model: Any = None, summary_model: Any = None,
                              series_summary_model: Any = None) -> int:
    """Work out and store the summaries of every session of ``series_ids``, and of each of
    those series with a given session (``SeriesOutcomeSummary``, from its sessions'
    summaries; a series without one has none; ``series_summary_model=False``: not those,
    for a migration before their table); returns how many session summaries were stored.
    Sessions never given get a summary too (``started`` False)."""
    sessions_of: Any = session_model or InfusionSession
    entries_of: Any = entry_model or TimelineEntry
    summary_of: Any = summary_model or SessionOutcomeSummary
    series_summary_of: Any = (SeriesOutcomeSummary if series_summary_model is None
                              else series_summary_model)
    # The hook (the areas above follow the last given sessions) with the live models only:
    # a migration's models are those of its own time.
    live = session_model is None and series_summary_model is None
    # A migration's series summaries may be from before their immediate pairs.
    pairs_field = series_summary_of is not False and any(
        f.name == PAIRS_FIELD for f in series_summary_of._meta.get_fields())
    series_fields = [f for f in SERIES_FIELDS if pairs_field or f != PAIRS_FIELD]
    ids = sorted(set(series_ids))
    stored = 0
    for k in range(0, len(ids), BATCH_SERIES):
        batch = ids[k:k + BATCH_SERIES]
        booked = {}
        sessions = []
        for pk, series, visit, at in (sessions_of.objects.filter(series_id__in=batch)
                                      .order_by().values_list("id", "series_id",
                                                              "visit_number",
                                                              "scheduled_for")):
            sessions.append(ChartedSession(pk, series, visit))
            booked[pk] = at
        entries = [ChartedEntry(*row) for row in entries_of.objects.filter(
            session__series_id__in=batch).filter(Q(kind__in=SUMMARY_KINDS)
                                                 | Q(corrects__isnull=False))
            .order_by().values_list("session_id", "id", "kind", "occurred_at",
                                    "corrects_id", "payload")]
        summaries = session_summaries(sessions, entries)
        rows = [summary_of(session_id=s.session_id, series_id=s.series_id,
                           scheduled_for=booked[s.session_id], started=s.started,
                           first_given=s.first_given, last_given=s.last_given,
                           pain_before_nrs=s.pain_before_nrs,
                           pain_at_end_nrs=s.pain_at_end_nrs,
                           adverse_event_count=s.adverse_event_count,
                           adverse_events=dict(s.adverse_events))
                for s in summaries]
        summary_of.objects.bulk_create(rows, batch_size=2000, update_conflicts=True,
                                       unique_fields=["session"], update_fields=FIELDS)
        stored += len(rows)
        if series_summary_of is False:
            continue
        first_at: dict[int, Any] = {}
        for s in summaries:
            if s.started:
                at = booked[s.session_id]
                first_at[s.series_id] = min(first_at.get(s.series_id, at), at)
        per_series = series_summaries(summaries)
        series_summary_of.objects.filter(series_id__in=batch).exclude(
            series_id__in=[s.series_id for s in per_series]).delete()
        series_summary_of.objects.bulk_create([
            series_summary_of(
                series_id=s.series_id, given_sessions=s.given_sessions,
                first_given_at=first_at[s.series_id],
                pain_before_first_nrs=s.pain_before_first_nrs,
                pain_at_end_last_nrs=s.pain_at_end_last_nrs,
                last_given_session_id=s.last_given_session_id,
                adverse_events=dict(s.adverse_events),
                **({} if not pairs_field else {
                    PAIRS_FIELD: float64_bytes(s.immediate_pairs_nrs)}))
            for s in per_series], batch_size=2000, update_conflicts=True,
            unique_fields=["series"],
            update_fields=series_fields)
        if live:
            last_given: dict[int, int | None] = dict.fromkeys(batch)
            last_given.update({s.series_id: s.last_given_session_id for s in per_series})
            hooks.series_summarised(last_given)
    return stored
