"""The statistics over series: responder rates, duration of relief (Kaplan–Meier), mean
pain change, adverse events and opioid change.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.outcomes.measures import (
    Number,
    Proportion,
    ResponderThresholds,
    default_responder_thresholds,
    percent_reduction,
    proportion,
)
from ketamine_clinic.clinical.outcomes.records import Grouping, SeriesOutcome, _group_key
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- responders


@dataclass(frozen=True, slots=True)
class ResponderRates:
    day: float | None
    thresholds: ResponderThresholds
    by_threshold: Mapping[str, Proportion]
    excluded: Mapping[str, int]  # reason -> count

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "thresholds": self.thresholds.to_dict(),
            "responders": {k: v.to_dict() for k, v in self.by_threshold.items()},
            "excluded": dict(self.excluded),
        }


def responder_rates(
    series: Sequence[SeriesOutcome],
    *,
    thresholds: ResponderThresholds | None = None,
    day: float | None = None,
    confidence: float = 0.95,
) -> ResponderRates:
    """Share of series with a reduction from the series baseline ≥ each threshold.

    ``day`` picks the follow-up (None: each series' first assessment, normally the end of
    its last infusion). Series with no score on that day or a baseline of 0 are excluded
    and counted by reason.
    """
    th = thresholds or default_responder_thresholds()
    reductions: list[Fraction] = []
    excluded: Counter[str] = Counter()
    for s in series:
        pain = s.pain_on(day)
        if pain is None:
            excluded["no score on that day"] += 1
        elif s.baseline_pain == 0:
            excluded["baseline pain 0"] += 1
        else:
            reductions.append(percent_reduction(s.baseline_pain, pain))
    by = {
        f"{float(p):g}": proportion(sum(r >= p for r in reductions), len(reductions), confidence)
        for p in th.percents
    }
    return ResponderRates(day, th, by, dict(excluded))


# --------------------------------------------------------------------------- duration


@dataclass(frozen=True, slots=True)
class ReliefDuration:
    series_id: str
    had_relief: bool
    days: float | None  # time to loss of relief (event) or to last contact (censored)
    lost: bool  # True: relief lost (event); False: censored

    def to_dict(self) -> dict[str, Any]:
        return {
            "series_id": self.series_id,
            "had_relief": self.had_relief,
            "days": self.days,
            "lost": self.lost,
        }


@lru_cache(maxsize=64)
def _relief_percents(response_percent: Number, loss_percent: Number) -> tuple[Fraction, Fraction]:
    resp = units.exact(response_percent, field="response_percent")
    loss = units.exact(loss_percent, field="loss_percent")
    if loss > resp:
        raise UsageError("loss_percent", "cannot be above the response threshold")
    return resp, loss


def relief_duration(
    s: SeriesOutcome, *, response_percent: Number, loss_percent: Number
) -> ReliefDuration:
    """Duration of relief of one series (see the module's definitions).

    Parameters
    ----------
    response_percent
        Reduction [%] from the series baseline at the first assessment that counts as
        relief (the protocol's responder threshold).
    loss_percent
        Relief is lost at the first follow-up whose reduction is below this [%] (the
        protocol's loss-of-response rule); at most ``response_percent``.
    """
    resp, loss = _relief_percents(response_percent, loss_percent)
    if not s.follow_ups or s.baseline_pain == 0:
        return ReliefDuration(s.series_id, False, None, False)
    first, *later = s.follow_ups
    if percent_reduction(s.baseline_pain, first.pain) < resp:
        return ReliefDuration(s.series_id, False, None, False)
    for f in later:
        if percent_reduction(s.baseline_pain, f.pain) < loss:
            return ReliefDuration(s.series_id, True, f.day - first.day, True)
    last = s.last_contact_day if s.last_contact_day is not None else s.follow_ups[-1].day
    return ReliefDuration(s.series_id, True, last - first.day, False)


@dataclass(frozen=True, slots=True)
class KMRow:
    day: float
    at_risk: int
    events: int
    censored: int
    survival: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        return {
            "day": self.day,
            "at_risk": self.at_risk,
            "events": self.events,
            "censored": self.censored,
            "survival": self.survival,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """A Kaplan–Meier curve of time to loss of relief [days]."""

    label: str
    n: int
    events: int
    median_days: float | None
    median_ci_low: float | None
    median_ci_high: float | None
    confidence: float
    table: tuple[KMRow, ...]

    @property
    def censored(self) -> int:
        return self.n - self.events

    def survival_at(self, day: float) -> float:
        """Estimated share still in relief at ``day`` (the step function)."""
        value = 1.0
        for row in self.table:
            if row.day > day:
                break
            value = row.survival
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n": self.n,
            "events": self.events,
            "censored": self.censored,
            "median_days": self.median_days,
            "median_ci_low": self.median_ci_low,
            "median_ci_high": self.median_ci_high,
            "confidence": self.confidence,
            "table": [r.to_dict() for r in self.table],
        }


def kaplan_meier(
    days: Sequence[float], lost: Sequence[bool], *, label: str = "all", confidence: float = 0.95
) -> KaplanMeier:
    """Kaplan–Meier estimate (``scipy.stats.ecdf`` on right-censored data) of time to loss
    of relief, with the exponential-Greenwood (log-log) band.

    ``days[i]`` is the time [days] to loss (``lost[i]`` True) or to censoring.
    """
    if len(days) != len(lost):
        raise UsageError("lost", "needs one flag per duration")
    if not days:
        return KaplanMeier(label, 0, 0, None, None, None, confidence, ())
    if min(days) < 0:
        raise UsageError("days", "a duration cannot be negative")
    # numpy and scipy load only when a survival curve is computed.
    import warnings

    import numpy as np
    from scipy.stats import CensoredData, ecdf

    t = np.asarray(days, dtype=float)
    e = np.asarray(lost, dtype=bool)
    sf = ecdf(CensoredData(uncensored=t[e], right=t[~e])).sf
    times, surv = sf.quantiles, sf.probabilities  # every distinct time, events or not
    with warnings.catch_warnings():
        # The band is undefined where S is 0 or 1; it is S itself there (below).
        warnings.simplefilter("ignore", RuntimeWarning)
        # scipy types the band's ends as floats; they are step functions of ``times``.
        band: Any = sf.confidence_interval(confidence, method="log-log")
    inside = (surv > 0) & (surv < 1)
    low = np.where(inside, band.low.probabilities, surv)
    high = np.where(inside, band.high.probabilities, surv)
    at = np.searchsorted(times, t)
    events = np.bincount(at, weights=e, minlength=times.size).astype(int)
    removed = np.bincount(at, minlength=times.size)
    at_risk = t.size - np.concatenate(([0], np.cumsum(removed)[:-1]))
    rows = tuple(
        KMRow(day=float(d), at_risk=int(n), events=int(k), censored=int(r - k),
              survival=float(s_), ci_low=float(lo), ci_high=float(hi))
        for d, n, k, r, s_, lo, hi in zip(times, at_risk, events, removed, surv, low, high,
                                          strict=True)
    )

    def first_day_at_or_below_half(values: Any) -> float | None:
        hit = np.flatnonzero(values <= 0.5)
        return float(times[hit[0]]) if hit.size else None

    return KaplanMeier(
        label=label,
        n=len(days),
        events=int(sum(lost)),
        median_days=first_day_at_or_below_half(surv),
        median_ci_low=first_day_at_or_below_half(low),
        median_ci_high=first_day_at_or_below_half(high),
        confidence=confidence,
        table=rows,
    )


@dataclass(frozen=True, slots=True)
class ReliefSurvival:
    by: Grouping
    response_percent: Fraction
    loss_percent: Fraction
    curves: Mapping[str, KaplanMeier]
    without_relief: Mapping[str, int]
    durations: tuple[ReliefDuration, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "response_percent": float(self.response_percent),
            "loss_percent": float(self.loss_percent),
            "curves": {k: v.to_dict() for k, v in self.curves.items()},
            "without_relief": dict(self.without_relief),
            "inputs": {"durations": [d.to_dict() for d in self.durations]},
        }


def relief_survival(
    series: Sequence[SeriesOutcome],
    *,
    response_percent: Number,
    loss_percent: Number,
    by: Grouping = "all",
    confidence: float = 0.95,
) -> ReliefSurvival:
    """Duration of relief as Kaplan–Meier curves, one per group (``by``:
    ``diagnosis_group``, ``protocol`` or ``all``), with median and confidence interval."""
    key = _group_key(by)
    groups: dict[str, list[ReliefDuration]] = defaultdict(list)
    without: Counter[str] = Counter()
    durations = []
    for s in series:
        d = relief_duration(s, response_percent=response_percent, loss_percent=loss_percent)
        durations.append(d)
        if d.had_relief:
            groups[key(s)].append(d)
        else:
            without[key(s)] += 1
    curves = {
        g: kaplan_meier(
            [d.days for d in ds if d.days is not None],
            [d.lost for d in ds],
            label=g,
            confidence=confidence,
        )
        for g, ds in sorted(groups.items())
    }
    return ReliefSurvival(
        by,
        units.exact(response_percent, field="response_percent"),
        units.exact(loss_percent, field="loss_percent"),
        curves,
        dict(without),
        tuple(durations),
    )


# --------------------------------------------------------------------------- means


@dataclass(frozen=True, slots=True)
class MeanChange:
    """Mean of a per-series change, with SD and a t-based confidence interval."""

    group: str
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "mean": self.mean,
            "sd": self.sd,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
        }


def mean_with_ci(group: str, values: Sequence[float], confidence: float = 0.95) -> MeanChange:
    """Mean, sample SD and Student-t interval of ``values`` (None where undefined)."""
    n = len(values)
    if n == 0:
        return MeanChange(group, 0, None, None, None, None, confidence)
    mean = math.fsum(values) / n
    if n == 1:
        return MeanChange(group, 1, mean, None, None, None, confidence)
    # The squared deviations element by element in NumPy (each the same IEEE double as in
    # Python), summed exactly by fsum: the same SD, without a Python loop per value.
    import numpy as np
    from scipy.stats import t

    deviations = np.asarray(values, dtype=float) - mean
    sd = math.sqrt(math.fsum((deviations * deviations).tolist()) / (n - 1))

    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return MeanChange(group, n, mean, sd, mean - half, mean + half, confidence)


def mean_pain_change(
    series: Sequence[SeriesOutcome],
    *,
    by: Grouping = "diagnosis_group",
    day: float | None = None,
    confidence: float = 0.95,
) -> dict[str, MeanChange]:
    """Mean change in NRS pain (follow-up − baseline; negative is better) per group.

    ``day`` picks the follow-up (None: the first assessment). Series without a score on
    that day are left out. Grouped by diagnosis group (CRPS vs other) by default.
    """
    key = _group_key(by)
    changes: dict[str, list[float]] = defaultdict(list)
    for s in series:
        pain = s.pain_on(day)
        if pain is not None:
            changes[key(s)].append(float(pain) - float(s.baseline_pain))
    return {g: mean_with_ci(g, v, confidence) for g, v in sorted(changes.items())}


# --------------------------------------------------------------------------- safety & opioids


@dataclass(frozen=True, slots=True)
class AdverseEventRate:
    sessions: int
    events: int
    by_type: Mapping[str, int]

    @property
    def per_session(self) -> float | None:
        return None if self.sessions == 0 else self.events / self.sessions

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "events": self.events,
            "per_session": self.per_session,
            "by_type": dict(self.by_type),
            "by_type_per_session": {
                k: (v / self.sessions if self.sessions else None) for k, v in self.by_type.items()
            },
        }


def adverse_event_rate(series: Sequence[SeriesOutcome]) -> AdverseEventRate:
    """Adverse events per session (all types and by type) over the series given."""
    sessions = sum(s.sessions for s in series)
    counts: Counter[str] = Counter(ev for s in series for ev in s.adverse_events)
    return AdverseEventRate(sessions, sum(counts.values()), dict(sorted(counts.items())))


@dataclass(frozen=True, slots=True)
class OpioidChange:
    n: int
    mean_before_mme: float | None
    mean_after_mme: float | None
    change: MeanChange
    reduced: Proportion  # share of patients whose MME fell

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean_before_mme": self.mean_before_mme,
            "mean_after_mme": self.mean_after_mme,
            "change": self.change.to_dict(),
            "reduced": self.reduced.to_dict(),
        }


def opioid_change(series: Sequence[SeriesOutcome], confidence: float = 0.95) -> OpioidChange:
    """Change in daily oral morphine milligram equivalents (after − before) over the
    series with both recorded. The MME values are inputs: the conversion factors belong
    to the clinic's opioid table, not to this module."""
    pairs = [
        (float(s.mme_before), float(s.mme_after))
        for s in series
        if s.mme_before is not None and s.mme_after is not None
    ]
    for before, after in pairs:
        if before < 0 or after < 0:
            raise UsageError("mme", "morphine milligram equivalents cannot be negative")
    n = len(pairs)
    return OpioidChange(
        n=n,
        mean_before_mme=math.fsum(b for b, _ in pairs) / n if n else None,
        mean_after_mme=math.fsum(a for _, a in pairs) / n if n else None,
        change=mean_with_ci("all", [a - b for b, a in pairs], confidence),
        reduced=proportion(sum(a < b for b, a in pairs), n, confidence),
    )
