"""The array path of the outcome report gives the exact path's report (issue 17).

``outcome_report_arrays`` computes over NumPy arrays what ``outcome_report`` computes one
series at a time with exact fractions; on random cohorts both reports are the same, number
for number (compared as JSON, so that a float differing in its last bit fails).
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical.outcomes import (
    CohortArrays,
    FollowUp,
    SeriesOutcome,
    default_responder_thresholds,
    outcome_report,
    outcome_report_arrays,
    responder_thresholds,
)
from ketamine_clinic.errors import UsageError

DAYS = (0.0, 1.0, 7.0, 14.0, 28.0, 56.0, 84.0)
# Whole and half NRS points, and a few one-decimal scores (4.9 against a baseline of 7 is
# exactly 30%, which floats get wrong).
PAIN = st.one_of(st.integers(0, 20).map(lambda k: k / 2),
                 st.sampled_from([0.1, 2.1, 4.9, 6.3, 9.9]))
MME = st.one_of(st.none(), st.integers(0, 2000).map(lambda k: k / 10))


@st.composite
def a_series(draw: st.DrawFn, index: int) -> SeriesOutcome:
    days = sorted(draw(st.sets(st.sampled_from(DAYS), max_size=len(DAYS))))
    follow_ups = tuple(FollowUp(d, draw(PAIN)) for d in days)
    last = None
    if days and draw(st.booleans()):
        last = days[-1] + draw(st.sampled_from([0.0, 3.0, 40.5]))
    return SeriesOutcome(
        series_id=f"s{index}",
        patient_id=f"p{draw(st.integers(0, 5))}",
        diagnosis_group=draw(st.sampled_from(["crps", "other"])),
        protocol=draw(st.sampled_from(["clinic-standard", "schwartzman-2009", "consensus"])),
        baseline_pain=draw(PAIN),
        follow_ups=follow_ups,
        sessions=draw(st.integers(0, 10)),
        adverse_events=tuple(draw(st.lists(st.sampled_from(
            ["nausea_vomiting", "hypertension", "dissociation"]), max_size=3))),
        last_contact_day=last,
        mme_before=draw(MME),
        mme_after=draw(MME),
    )


@st.composite
def cohorts(draw: st.DrawFn) -> list[SeriesOutcome]:
    n = draw(st.integers(0, 40))
    return [draw(a_series(i)) for i in range(n)]


def _json(report: object) -> str:
    return json.dumps(report, sort_keys=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort=cohorts(), loss=st.sampled_from([0, 20, 30, 30.5]),
       percents=st.sampled_from([None, (30, 50), (25,), (30, 50, 70)]))
def test_the_array_report_equals_the_exact_report(cohort: list[SeriesOutcome], loss: float,
                                                  percents: tuple[int, ...] | None) -> None:
    th = None if percents is None else responder_thresholds(percents, "test")
    if min((th or default_responder_thresholds()).percents) < Fraction(loss):
        loss = 0  # a loss threshold above the response threshold is refused
    want = outcome_report(cohort, loss_percent=loss, thresholds=th)
    got = outcome_report_arrays(CohortArrays.from_series(cohort), loss_percent=loss,
                                thresholds=th)
    assert _json(got.to_dict()) == _json(want.to_dict())


def test_the_exact_30_percent_boundary_counts_as_a_response_in_both_paths() -> None:
    # (7 - 4.9) / 7 is 30% exactly; in floats it is 29.999...
    s = SeriesOutcome("s1", "p1", "crps", "clinic-standard", 7, (FollowUp(0.0, 4.9),))
    got = outcome_report_arrays(CohortArrays.from_series([s]), loss_percent=30)
    assert got.responders.by_threshold["30"].k == 1
    assert got.relief_by_diagnosis.durations[0].had_relief


def test_arrays_outside_the_nrs_are_refused_with_the_series_named() -> None:
    s = SeriesOutcome("s1", "p1", "crps", "clinic-standard", 7, (FollowUp(0.0, 4.0),))
    good = CohortArrays.from_series([s])
    with pytest.raises(UsageError, match=r"s1\.follow_ups"):
        CohortArrays(**{**good.__dict__, "pain": np.array([[11.0]])})
    with pytest.raises(UsageError, match=r"s1\.baseline_pain"):
        CohortArrays(**{**good.__dict__, "baseline_pain": np.array([np.nan])})
