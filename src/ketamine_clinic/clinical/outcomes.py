"""Outcome statistics of infusion series.

Inputs are plain records (:class:`SeriesOutcome`, one per treatment series) that the web
layer builds from the database; every function returns a result with ``to_dict()`` that
carries its inputs' summary and the thresholds used.

Definitions
-----------
* Pain is the 0–10 NRS. The **series baseline** is the pain before the first infusion of
  the series. Follow-up times are **days after the end of the series** (the end of its
  last infusion); day 0 is the score at the end of that infusion.
* **Percent reduction** = (baseline − pain) / baseline × 100, exactly (Fractions); a
  baseline of 0 has no percent reduction and is left out (counted as excluded).
* A **responder** at threshold *p* has a percent reduction ≥ *p* (IMMPACT: 30% moderately
  important, 50% substantial [Dworkin2008], defaults in ``reference/outcomes.toml``).
* **Duration of relief**: a series whose first assessment reaches the response threshold
  has relief; relief is lost at the first later follow-up whose reduction falls below the
  loss-of-response threshold (an event at that follow-up's day: pain is only known at
  visits, so the loss is dated to the visit that found it). A series still in relief at
  its last contact is censored there (drop-outs are censored where they dropped out).
  Series without relief are not part of the duration analysis; they are counted.
* Kaplan–Meier estimates come from ``scipy.stats.ecdf`` on right-censored data (Greenwood
  variance, log(−log) confidence band; a test checks them against lifelines); the median
  and its confidence interval are read from the curve and its band. A median that is not
  reached is reported as None.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from ketamine_clinic.clinical import units
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Number = units.ExactInput


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True, slots=True)
class ResponderThresholds:
    """Percent reductions that define responders, and where they come from."""

    percents: tuple[Fraction, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"percents": [float(p) for p in self.percents], "source": self.source}


def _data() -> Mapping[str, Any]:
    return read_toml("outcomes.toml")


def default_responder_thresholds() -> ResponderThresholds:
    """IMMPACT's 30% and 50% [Dworkin2008], from ``reference/outcomes.toml``."""
    raw = _data()["responder"]
    return ResponderThresholds(
        tuple(units.exact(p, field="thresholds_percent") for p in raw["thresholds_percent"]),
        raw["source"],
    )


def responder_thresholds(percents: Iterable[Number], source: str) -> ResponderThresholds:
    """A protocol's own thresholds [% reduction], each in (0, 100]."""
    values = tuple(units.exact(p, field="thresholds_percent") for p in percents)
    if not values:
        raise UsageError("thresholds_percent", "give at least one threshold")
    for p in values:
        if not 0 < p <= 100:
            raise UsageError("thresholds_percent", f"{float(p):g} is not in (0, 100]")
    return ResponderThresholds(tuple(sorted(values)), source)


# --------------------------------------------------------------------------- basics


# A cohort report reads the same few NRS values (0-10, whole or half points) hundreds of
# thousands of times: their exact forms and reductions are computed once per value.
@lru_cache(maxsize=4096)
def _nrs(value: Number) -> Fraction | str:
    """``value`` as an exact 0-10 NRS score, or what is wrong with it."""
    try:
        pain = units.exact(value, field="pain")
    except UsageError as exc:
        return exc.problem
    if not 0 <= pain <= 10:
        return f"{float(pain):g} is outside the 0–10 NRS"
    return pain


def _pain(value: Number, field_name: str) -> Fraction:
    pain = _nrs(value)
    if isinstance(pain, str):
        raise UsageError(field_name, pain)
    return pain


@lru_cache(maxsize=4096)
def _reduction(base: Fraction, now: Fraction) -> Fraction:
    return (base - now) / base * 100


def percent_reduction(baseline: Number, pain: Number) -> Fraction:
    """(baseline − pain) / baseline × 100 [%]; negative when pain rose.

    Raises :class:`UsageError` for a baseline of 0 (no reduction is possible).
    """
    base = _pain(baseline, "baseline_pain")
    now = _pain(pain, "pain")
    if base == 0:
        raise UsageError("baseline_pain", "a baseline of 0 has no percent reduction")
    return _reduction(base, now)


@dataclass(frozen=True, slots=True)
class ImmediateResponse:
    """Pain before an infusion against pain at its end."""

    before: Fraction
    after: Fraction
    percent_reduction: Fraction | None  # None when the pain before was 0
    band: str  # the highest IMMPACT band reached, or "none"

    @property
    def change(self) -> Fraction:
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        pr = self.percent_reduction
        return {
            "before": float(self.before),
            "after": float(self.after),
            "change": float(self.change),
            "percent_reduction": None if pr is None else round(float(pr), 2),
            "band": self.band,
        }


def immediate_response(pain_before: Number, pain_at_end: Number) -> ImmediateResponse:
    """Immediate response of one infusion: NRS before vs at the end of the infusion, with
    the IMMPACT band reached [Dworkin2008]."""
    return _immediate(_pain(pain_before, "pain_before"), _pain(pain_at_end, "pain_at_end"))


@cache
def _bands() -> tuple[tuple[Fraction, str], ...]:
    """The IMMPACT bands, highest first: (minimum reduction [%], name)."""
    raw = sorted(_data()["responder"]["band"], key=lambda b: -b["min_percent"])
    return tuple((units.exact(b["min_percent"], field="band"), b["name"]) for b in raw)


@lru_cache(maxsize=4096)
def _immediate(before: Fraction, after: Fraction) -> ImmediateResponse:
    if before == 0:
        return ImmediateResponse(before, after, None, "none")
    pr = _reduction(before, after)
    band = next((name for low, name in _bands() if pr >= low), "none")
    return ImmediateResponse(before, after, pr, band)


@dataclass(frozen=True, slots=True)
class Proportion:
    """k of n, with a Wilson score interval at ``confidence``."""

    k: int
    n: int
    low: float | None
    high: float | None
    confidence: float

    @property
    def value(self) -> float | None:
        return None if self.n == 0 else self.k / self.n

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "proportion": self.value,
            "ci_low": self.low,
            "ci_high": self.high,
            "confidence": self.confidence,
        }


def proportion(k: int, n: int, confidence: float = 0.95) -> Proportion:
    """k/n with its Wilson score confidence interval (scipy's binomtest)."""
    if not 0 <= k <= n:
        raise UsageError("k", f"{k} is not between 0 and n={n}")
    if n == 0:
        return Proportion(0, 0, None, None, confidence)
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Proportion(k, n, float(ci.low), float(ci.high), confidence)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class FollowUp:
    day: float  # days after the end of the series; 0 = end of its last infusion
    pain: float  # 0-10 NRS

    def to_dict(self) -> dict[str, float]:
        return {"day": self.day, "pain": self.pain}


@dataclass(frozen=True, slots=True)
class SeriesOutcome:
    """What the outcome statistics need from one treatment series.

    last_contact_day
        Days after the series end of the last contact (a drop-out's last visit or a
        later phone call); defaults to the last follow-up.
    adverse_events
        Adverse-event types, one entry per event, over all sessions of the series.
    mme_before, mme_after
        Daily oral morphine milligram equivalents before the series and at the last
        follow-up, as computed by the clinic's opioid conversion (None if not recorded).
    """

    series_id: str
    patient_id: str
    diagnosis_group: str  # "crps" or "other" (ketamine_clinic.clinical.codes groups)
    protocol: str
    baseline_pain: float
    follow_ups: tuple[FollowUp, ...]
    sessions: int = 0
    adverse_events: tuple[str, ...] = ()
    last_contact_day: float | None = None
    mme_before: float | None = None
    mme_after: float | None = None

    def __post_init__(self) -> None:
        _pain(self.baseline_pain, f"{self.series_id}.baseline_pain")
        days = [f.day for f in self.follow_ups]
        if days != sorted(days) or len(set(days)) != len(days):
            raise UsageError(f"{self.series_id}.follow_ups", "days must be distinct and in order")
        for f in self.follow_ups:
            if f.day < 0:
                raise UsageError(f"{self.series_id}.follow_ups", "a day cannot be negative")
            _pain(f.pain, f"{self.series_id}.follow_ups")
        if self.last_contact_day is not None and days and self.last_contact_day < days[-1]:
            raise UsageError(f"{self.series_id}.last_contact_day", "is before the last follow-up")

    def pain_on(self, day: float | None) -> float | None:
        """Pain at follow-up ``day`` (None: the first assessment), or None if not recorded."""
        if not self.follow_ups:
            return None
        if day is None:
            return self.follow_ups[0].pain
        return next((f.pain for f in self.follow_ups if f.day == day), None)


Grouping = str  # "diagnosis_group", "protocol" or "all"


def _group_key(by: Grouping) -> Callable[[SeriesOutcome], str]:
    if by == "all":
        return lambda s: "all"
    if by in ("diagnosis_group", "protocol"):
        return lambda s: str(getattr(s, by))
    raise UsageError("by", f"group by diagnosis_group, protocol or all, not {by!r}")


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
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy.stats import t

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


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """Everything the outcome report shows, computed in one pass over the series given."""

    n_series: int
    n_patients: int
    responders: ResponderRates
    relief_by_diagnosis: ReliefSurvival
    relief_by_protocol: ReliefSurvival
    pain_change_by_diagnosis: Mapping[str, MeanChange]
    adverse_events: AdverseEventRate
    opioids: OpioidChange
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_series": self.n_series,
            "n_patients": self.n_patients,
            "parameters": dict(self.parameters),
            "responders": self.responders.to_dict(),
            "relief_by_diagnosis": self.relief_by_diagnosis.to_dict(),
            "relief_by_protocol": self.relief_by_protocol.to_dict(),
            "pain_change_by_diagnosis": {
                k: v.to_dict() for k, v in self.pain_change_by_diagnosis.items()
            },
            "adverse_events": self.adverse_events.to_dict(),
            "opioids": self.opioids.to_dict(),
        }


def outcome_report(
    series: Sequence[SeriesOutcome],
    *,
    loss_percent: Number,
    thresholds: ResponderThresholds | None = None,
    confidence: float = 0.95,
) -> OutcomeReport:
    """The full outcome summary. Relief starts at the lowest responder threshold and is
    lost below ``loss_percent`` (the protocol's loss-of-response rule)."""
    th = thresholds or default_responder_thresholds()
    response = min(th.percents)
    relief = {
        by: relief_survival(
            series,
            response_percent=response,
            loss_percent=loss_percent,
            by=by,
            confidence=confidence,
        )
        for by in ("diagnosis_group", "protocol")
    }
    return OutcomeReport(
        n_series=len(series),
        n_patients=len({s.patient_id for s in series}),
        responders=responder_rates(series, thresholds=th, confidence=confidence),
        relief_by_diagnosis=relief["diagnosis_group"],
        relief_by_protocol=relief["protocol"],
        pain_change_by_diagnosis=mean_pain_change(series, confidence=confidence),
        adverse_events=adverse_event_rate(series),
        opioids=opioid_change(series, confidence),
        parameters={
            "thresholds": th.to_dict(),
            "loss_percent": float(units.exact(loss_percent, field="loss_percent")),
            "confidence": confidence,
        },
    )


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
