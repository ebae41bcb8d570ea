"""The series' follow-up cells (:class:`~.models.FollowUpCell`), worked out again from
their answers by the core (``clinical.outcomes.charted.follow_up_cells``).

Called in the transaction that records an answer (``services.followup_respond``), by the
synthetic cohort loader after its bulk inserts, and by the migration that made the table
(with that migration's models: the two model arguments).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ketamine_clinic.clinical.outcomes.charted import GivenAnswer, follow_up_cells
from ketamine_clinic.web.outcomes.models import FollowUpCell, FollowUpResponse

# Series per query: their ids go into the SQL as parameters (SQLite takes at most 999).
BATCH_SERIES = 500


def followup_summaries_refresh(series_ids: Iterable[int], *, response_model: Any = None,
                               cell_model: Any = None) -> int:
    """Work out and store again the follow-up cells of ``series_ids`` (a series without an
    answer has none); returns how many series were refreshed."""
    responses_of: Any = response_model or FollowUpResponse
    cells_of: Any = cell_model or FollowUpCell
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
        cells_of.objects.filter(series_id__in=batch).delete()
        cells_of.objects.bulk_create([
            cells_of(series_id=sid, point=c.point, session_id=c.session_id,
                     pain_nrs=c.pain_nrs, pain_response_id=c.pain_response_id,
                     mme_per_day=c.mme_per_day, mme_response_id=c.mme_response_id)
            for sid in batch if sid in answers for c in follow_up_cells(answers[sid])],
            batch_size=2000)
    return len(ids)
