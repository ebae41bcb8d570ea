"""The series' follow-up summaries (:class:`~.models.SeriesFollowUpSummary`), worked out
again from their answers by the core (``clinical.outcomes.charted.follow_up_cells``).

Called in the transaction that records an answer (``services.followup_respond``), by the
synthetic cohort loader after its bulk inserts, and by the migration that made the table
(with that migration's models: the two model arguments).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ketamine_clinic.clinical.outcomes.charted import GivenAnswer, follow_up_cells
from ketamine_clinic.web.outcomes.models import FollowUpResponse, SeriesFollowUpSummary

# Series per query: their ids go into the SQL as parameters (SQLite takes at most 999).
BATCH_SERIES = 500


def followup_summaries_refresh(series_ids: Iterable[int], *, response_model: Any = None,
                               summary_model: Any = None) -> int:
    """Work out and store the follow-up summaries of ``series_ids`` (those without an
    answer get an empty one); returns how many were stored."""
    responses_of: Any = response_model or FollowUpResponse
    summary_of: Any = summary_model or SeriesFollowUpSummary
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
        rows = [summary_of(series_id=sid, cells=[
            [c.point, c.session_id, c.pain_nrs, c.pain_response_id, c.mme_per_day,
             c.mme_response_id] for c in follow_up_cells(answers.get(sid, []))])
            for sid in batch]
        summary_of.objects.bulk_create(rows, batch_size=2000, update_conflicts=True,
                                       unique_fields=["series"], update_fields=["cells"])
    return len(ids)
