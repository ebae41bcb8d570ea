"""One series' measures: responder thresholds, percent reduction of pain, the immediate
response at the end of an infusion, and a proportion with its confidence interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from typing import Any

from ketamine_clinic.clinical import units
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

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
