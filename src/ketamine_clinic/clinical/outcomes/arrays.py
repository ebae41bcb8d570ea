"""The outcome report over a cohort held as arrays (one row per series), computed with NumPy
over all series at once; it gives the same report as :func:`.report.outcome_report`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.outcomes.measures import (
    ResponderThresholds,
    _pain,
    _reduction,
    default_responder_thresholds,
    proportion,
)
from ketamine_clinic.clinical.outcomes.report import OutcomeReport
from ketamine_clinic.clinical.outcomes.statistics import (
    AdverseEventRate,
    OpioidChange,
    ReliefDuration,
    ReliefSurvival,
    ResponderRates,
    _relief_percents,
    kaplan_meier,
    mean_with_ci,
)
from ketamine_clinic.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

from ketamine_clinic.clinical.outcomes.measures import Number
from ketamine_clinic.clinical.outcomes.records import Grouping, SeriesOutcome

# --------------------------------------------------------------------------- arrays
#
# The same report over a cohort held as arrays (one row per series), for cohorts of
# thousands of series: every statistic is computed with NumPy over all series at once.
# Percent reductions are compared with the thresholds exactly, as above: the exact
# reduction is worked out once per distinct (baseline, pain) pair, of which an NRS cohort
# has a few hundred at most. Floats that are displayed are computed as the exact path
# computes them (math.fsum, the same scipy calls), so both paths give the same report;
# ``tests/clinical/test_outcomes_arrays.py`` checks that on random cohorts.


@dataclass(frozen=True)
class CohortArrays:
    """The inputs of :func:`outcome_report` as arrays, one row per series.

    ``pain[i, j]`` is series i's pain at follow-up day ``days[j]`` (NaN: no score that
    day); ``adverse_events[i, k]`` counts its events of type ``adverse_event_types[k]``;
    NaN in ``last_contact_day``, ``mme_before`` and ``mme_after`` means not recorded (the
    last follow-up, for the last contact). Groups are codes into their label tuples.
    """

    series_id: tuple[str, ...]
    patient: npt.NDArray[np.int64]
    diagnosis_group: npt.NDArray[np.intp]
    diagnosis_labels: tuple[str, ...]
    protocol: npt.NDArray[np.intp]
    protocol_labels: tuple[str, ...]
    baseline_pain: npt.NDArray[np.float64]
    days: npt.NDArray[np.float64]
    pain: npt.NDArray[np.float64]
    sessions: npt.NDArray[np.int64]
    adverse_event_types: tuple[str, ...]
    adverse_events: npt.NDArray[np.int64]
    last_contact_day: npt.NDArray[np.float64]
    mme_before: npt.NDArray[np.float64]
    mme_after: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        import numpy as np

        n = len(self.series_id)
        if self.pain.shape != (n, self.days.size):
            raise UsageError("pain", "needs one row per series and one column per day")
        if self.days.size and (np.any(np.diff(self.days) <= 0) or self.days[0] < 0):
            raise UsageError("days", "must be distinct, in order and not negative")
        base = self.baseline_pain
        bad_base = np.isnan(base) | (base < 0) | (base > 10)
        bad_pain = ~np.isnan(self.pain) & ((self.pain < 0) | (self.pain > 10))
        for name, bad in (("baseline_pain", bad_base), ("follow_ups", bad_pain.any(axis=1))):
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise UsageError(f"{self.series_id[row]}.{name}",
                                 "is missing or outside the 0–10 NRS")
        last = _last_column(~np.isnan(self.pain))
        if not self.days.size:
            return
        early = (last >= 0) & (self.last_contact_day < self.days[np.maximum(last, 0)])
        if early.any():
            row = int(np.flatnonzero(early)[0])
            raise UsageError(f"{self.series_id[row]}.last_contact_day",
                             "is before the last follow-up")

    @property
    def n(self) -> int:
        return len(self.series_id)

    @classmethod
    def from_series(cls, series: Sequence[SeriesOutcome]) -> CohortArrays:
        """The arrays of the series given (for tests and small cohorts)."""
        import numpy as np

        days = sorted({f.day for s in series for f in s.follow_ups})
        col = {d: j for j, d in enumerate(days)}
        pain = np.full((len(series), len(days)), np.nan)
        for i, s in enumerate(series):
            for f in s.follow_ups:
                pain[i, col[f.day]] = f.pain
        types = sorted({t for s in series for t in s.adverse_events})
        events = np.zeros((len(series), len(types)), dtype=np.int64)
        tcol = {t: k for k, t in enumerate(types)}
        for i, s in enumerate(series):
            for t in s.adverse_events:
                events[i, tcol[t]] += 1

        def codes(values: list[str]) -> tuple[npt.NDArray[np.intp], tuple[str, ...]]:
            labels = tuple(sorted(set(values)))
            index = {v: k for k, v in enumerate(labels)}
            return np.array([index[v] for v in values], dtype=np.intp), labels

        def maybe(values: Iterable[float | None]) -> npt.NDArray[np.float64]:
            return np.array([np.nan if v is None else float(v) for v in values], dtype=float)

        patients, _ = codes([s.patient_id for s in series])
        diagnosis, diagnosis_labels = codes([s.diagnosis_group for s in series])
        protocol, protocol_labels = codes([s.protocol for s in series])
        return cls(
            series_id=tuple(s.series_id for s in series),
            patient=patients.astype(np.int64),
            diagnosis_group=diagnosis, diagnosis_labels=diagnosis_labels,
            protocol=protocol, protocol_labels=protocol_labels,
            baseline_pain=np.array([float(s.baseline_pain) for s in series], dtype=float),
            days=np.array(days, dtype=float), pain=pain,
            sessions=np.array([s.sessions for s in series], dtype=np.int64),
            adverse_event_types=tuple(types), adverse_events=events,
            last_contact_day=maybe(s.last_contact_day for s in series),
            mme_before=maybe(s.mme_before for s in series),
            mme_after=maybe(s.mme_after for s in series),
        )


def _last_column(has: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """Per row, the last column where ``has`` is True (-1 where none is)."""
    import numpy as np

    if has.shape[1] == 0:
        return np.full(has.shape[0], -1, dtype=np.intp)
    last = has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1)
    return np.where(has.any(axis=1), last, -1)


class _Reductions:
    """Exact percent reductions of many (baseline, pain) pairs, worked out once per
    distinct pair; baselines must not be 0."""

    def __init__(self, baseline: npt.NDArray[np.float64], pain: npt.NDArray[np.float64]):
        import numpy as np

        pairs, self._inverse = np.unique(baseline + 1j * pain, return_inverse=True)
        self._exact = [_reduction(_pain(p.real, "baseline_pain"), _pain(p.imag, "pain"))
                       for p in pairs.tolist()]

    def at_least(self, percent: Fraction) -> npt.NDArray[np.bool_]:
        import numpy as np

        table = np.array([r >= percent for r in self._exact], dtype=bool)
        return table[self._inverse]

    def below(self, percent: Fraction) -> npt.NDArray[np.bool_]:
        return ~self.at_least(percent)

    def as_float(self) -> npt.NDArray[np.float64]:
        import numpy as np

        return np.array([float(r) for r in self._exact], dtype=float)[self._inverse]


def _groups(codes: npt.NDArray[np.intp], labels: tuple[str, ...],
            mask: npt.NDArray[np.bool_]) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    """(label, rows of that group within ``mask``) for each group present, by label."""
    import numpy as np

    present = np.unique(codes[mask])
    return sorted(((labels[int(c)], mask & (codes == c)) for c in present), key=lambda g: g[0])


def outcome_report_arrays(
    cohort: CohortArrays,
    *,
    loss_percent: Number,
    thresholds: ResponderThresholds | None = None,
    confidence: float = 0.95,
) -> OutcomeReport:
    """:func:`outcome_report` of the series in ``cohort``, computed over arrays: the same
    report, in a time that grows with the cohort at NumPy's pace rather than Python's."""
    import numpy as np

    th = thresholds or default_responder_thresholds()
    response = min(th.percents)
    resp, loss = _relief_percents(response, loss_percent)
    c = cohort
    n = c.n
    has = ~np.isnan(c.pain)
    any_fu = np.asarray(has.any(axis=1), dtype=bool)
    first = np.argmax(has, axis=1) if c.days.size else np.zeros(n, dtype=np.intp)
    rows = np.arange(n)
    first_pain = c.pain[rows, first] if c.days.size else np.full(n, np.nan)
    eligible = any_fu & (c.baseline_pain != 0)

    # Responders at the first assessment.
    red_first = _Reductions(c.baseline_pain[eligible], first_pain[eligible])
    excluded: dict[str, int] = {}
    if (~any_fu).any():
        excluded["no score on that day"] = int((~any_fu).sum())
    if (any_fu & (c.baseline_pain == 0)).any():
        excluded["baseline pain 0"] = int((any_fu & (c.baseline_pain == 0)).sum())
    k_eligible = int(eligible.sum())
    responders = ResponderRates(None, th, {
        f"{float(p):g}": proportion(int(red_first.at_least(p).sum()), k_eligible, confidence)
        for p in th.percents}, excluded)

    # Duration of relief.
    had_relief = np.zeros(n, dtype=bool)
    had_relief[eligible] = red_first.at_least(resp)
    cells = has & had_relief[:, None] & (np.arange(c.days.size)[None, :] > first[:, None])
    below = np.zeros_like(has)
    r_idx, c_idx = np.nonzero(cells)
    below[r_idx, c_idx] = _Reductions(c.baseline_pain[r_idx], c.pain[r_idx, c_idx]).below(loss)
    lost = np.asarray(below.any(axis=1), dtype=bool)
    first_day = c.days[first] if c.days.size else np.zeros(n)
    loss_day = c.days[np.argmax(below, axis=1)] if c.days.size else np.zeros(n)
    last_col = _last_column(has)
    last_day = np.where(np.isnan(c.last_contact_day), c.days[np.maximum(last_col, 0)]
                        if c.days.size else np.zeros(n), c.last_contact_day)
    relief_days = np.where(lost, loss_day - first_day, last_day - first_day)
    durations = tuple(
        ReliefDuration(sid, True, d, lo) if hr else ReliefDuration(sid, False, None, False)
        for sid, hr, d, lo in zip(c.series_id, had_relief.tolist(), relief_days.tolist(),
                                  lost.tolist(), strict=True))

    def survival(by: Grouping, codes: npt.NDArray[np.intp],
                 labels: tuple[str, ...]) -> ReliefSurvival:
        curves = {
            g: kaplan_meier(relief_days[rows_g].tolist(), lost[rows_g].tolist(), label=g,
                            confidence=confidence)
            for g, rows_g in _groups(codes, labels, had_relief)}
        without = {g: int(rows_g.sum()) for g, rows_g in _groups(codes, labels, ~had_relief)}
        return ReliefSurvival(by, units.exact(response, field="response_percent"),
                              units.exact(loss_percent, field="loss_percent"), curves,
                              without, durations)

    # Mean change in pain at the first assessment, by diagnosis group.
    change = first_pain - c.baseline_pain
    pain_change = {g: mean_with_ci(g, change[rows_g].tolist(), confidence)
                   for g, rows_g in _groups(c.diagnosis_group, c.diagnosis_labels, any_fu)}

    # Adverse events per session.
    by_type = c.adverse_events.sum(axis=0) if n else np.zeros(len(c.adverse_event_types))
    counts = {t: int(k) for t, k in sorted(zip(c.adverse_event_types, by_type.tolist(),
                                               strict=True)) if k}
    adverse = AdverseEventRate(int(c.sessions.sum()), sum(counts.values()), counts)

    # Opioids.
    both = ~np.isnan(c.mme_before) & ~np.isnan(c.mme_after)
    before, after = c.mme_before[both], c.mme_after[both]
    if (before < 0).any() or (after < 0).any():
        raise UsageError("mme", "morphine milligram equivalents cannot be negative")
    k = int(both.sum())
    opioids = OpioidChange(
        n=k,
        mean_before_mme=math.fsum(before.tolist()) / k if k else None,
        mean_after_mme=math.fsum(after.tolist()) / k if k else None,
        change=mean_with_ci("all", (after - before).tolist(), confidence),
        reduced=proportion(int((after < before).sum()), k, confidence),
    )
    return OutcomeReport(
        n_series=n,
        n_patients=int(np.unique(c.patient).size),
        responders=responders,
        relief_by_diagnosis=survival("diagnosis_group", c.diagnosis_group, c.diagnosis_labels),
        relief_by_protocol=survival("protocol", c.protocol, c.protocol_labels),
        pain_change_by_diagnosis=pain_change,
        adverse_events=adverse,
        opioids=opioids,
        parameters={
            "thresholds": th.to_dict(),
            "loss_percent": float(units.exact(loss_percent, field="loss_percent")),
            "confidence": confidence,
        },
    )
