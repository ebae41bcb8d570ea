"""What was (or will be) given: infusion segments and boluses, validated.

Rates are in mg/h and doses in mg of the drug given (racemic ketamine or esketamine); times
in minutes from the start of the infusion. An S-ketamine model receives the S-ketamine part
of a racemic dose (``drugs`` in ``models.toml``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.engine import Schedule, make_schedule
from ketamine_clinic.pk.parameter_sets import catalogue
from ketamine_clinic.pk.units import mg_per_min_from_mg_per_h


@lru_cache(maxsize=256)
def _schedule(regimen: Regimen, fraction: float) -> Schedule:
    rates = mg_per_min_from_mg_per_h([s.rate_mg_per_h for s in regimen.segments]) * fraction
    segs = [(s.start_min, s.end_min, float(r))
            for s, r in zip(regimen.segments, rates, strict=True)]
    schedule = make_schedule(segs, [(b.t_min, b.mg * fraction) for b in regimen.boluses])
    for a in (schedule.event_min, schedule.rate_mg_per_min, schedule.bolus_mg,
              schedule.gap_min):
        a.setflags(write=False)
    return schedule


@dataclass(frozen=True, slots=True)
class Segment:
    """A constant-rate infusion from ``start_min`` to ``end_min`` [min] at ``rate_mg_per_h``."""

    start_min: float
    end_min: float
    rate_mg_per_h: float


@dataclass(frozen=True, slots=True)
class Bolus:
    """A bolus of ``mg`` given at ``t_min`` [min]."""

    t_min: float
    mg: float


def _finite(x: float, field: str, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise UsageError(field, f"{what} must be a finite number, got {x!r}")
    return float(x)


@dataclass(frozen=True, slots=True)
class Regimen:
    """Infusion segments (non-overlapping) and boluses of one drug.

    Raises :class:`UsageError` (field ``segment``, ``bolus`` or ``drug``) for negative times
    or rates, segments that end before they start or overlap, and unknown drugs.
    """

    segments: tuple[Segment, ...] = ()
    boluses: tuple[Bolus, ...] = ()
    drug: str = "racemic"

    def __post_init__(self) -> None:
        drugs = catalogue().drugs
        if self.drug not in drugs:
            raise UsageError("drug", f"unknown drug {self.drug!r}; known: {', '.join(drugs)}")
        if not self.segments and not self.boluses:
            raise UsageError("segment", "give at least one infusion segment or bolus")
        for i, s in enumerate(self.segments, start=1):
            label = f"segment {i} ({s.start_min:g}:{s.end_min:g}:{s.rate_mg_per_h:g})"
            start = _finite(s.start_min, "segment", f"{label}: start")
            end = _finite(s.end_min, "segment", f"{label}: end")
            rate = _finite(s.rate_mg_per_h, "segment", f"{label}: rate")
            if start < 0:
                raise UsageError("segment", f"{label} starts before time 0")
            if end <= start:
                raise UsageError("segment", f"{label} must end after it starts")
            if rate < 0:
                raise UsageError("segment", f"{label} has a negative rate")
        ordered = sorted(self.segments, key=lambda s: s.start_min)
        for a, b in pairwise(ordered):
            if b.start_min < a.end_min:
                raise UsageError(
                    "segment",
                    f"segments {a.start_min:g}-{a.end_min:g} and {b.start_min:g}-{b.end_min:g}"
                    " min overlap",
                )
        for bolus in self.boluses:
            t = _finite(bolus.t_min, "bolus", "bolus time")
            mg = _finite(bolus.mg, "bolus", "bolus dose")
            if t < 0:
                raise UsageError("bolus", f"bolus at {t:g} min is before time 0")
            if mg <= 0:
                raise UsageError("bolus", f"bolus of {mg:g} mg must be positive")

    @classmethod
    def from_rate_changes(
        cls, changes: Sequence[tuple[float, float]], stop_min: float, *,
        boluses: Sequence[tuple[float, float]] = (), drug: str = "racemic",
    ) -> Regimen:
        """A regimen from a rate history or a titration table.

        ``changes`` are (t_min, rate_mg_per_h) pairs: the rate runs from each time to the
        next change, the last one until ``stop_min``. This is the shape of a session's pump
        history and of an order's planned titration steps.
        """
        ordered = sorted(changes)
        segments: list[Segment] = []
        for (t, rate), nxt in zip(ordered, [*ordered[1:], (stop_min, 0.0)], strict=True):
            if nxt[0] > t and rate > 0:
                segments.append(Segment(float(t), float(nxt[0]), float(rate)))
            elif nxt[0] < t:
                raise UsageError("stop_min", f"the infusion stops ({stop_min:g} min) before "
                                             f"a rate change at {t:g} min")
        return cls(tuple(segments), tuple(Bolus(float(t), float(mg)) for t, mg in boluses),
                   drug)

    def what_if(self, from_min: float, rate_mg_per_h: float) -> Regimen:
        """The same regimen with every rate from ``from_min`` on replaced by ``rate_mg_per_h``
        (until the same stop time). Boluses are kept."""
        changes: list[tuple[float, float]] = []
        for s in sorted(self.segments, key=lambda s: s.start_min):
            if s.start_min < from_min:
                changes.append((s.start_min, s.rate_mg_per_h))
                if s.end_min < from_min:
                    changes.append((s.end_min, 0.0))
        changes.append((from_min, rate_mg_per_h))
        stop = max(self.end_min, from_min)
        return Regimen.from_rate_changes(changes, stop, drug=self.drug,
                                         boluses=[(b.t_min, b.mg) for b in self.boluses])

    @property
    def end_min(self) -> float:
        """The end of the last infusion or the last bolus [min]."""
        ends = [s.end_min for s in self.segments] + [b.t_min for b in self.boluses]
        return max(ends)

    @property
    def total_mg(self) -> float:
        """Drug given [mg of the drug given]."""
        return sum(s.rate_mg_per_h * (s.end_min - s.start_min) / 60.0 for s in self.segments) \
            + sum(b.mg for b in self.boluses)

    def schedule(self, fraction: float = 1.0) -> Schedule:
        """The engine's input in mg and mg/min, times ``fraction`` (the part of each mg that
        the model describes, e.g. 0.5 of racemic ketamine for an S-ketamine model).
        Built once per (regimen, fraction); the arrays are read-only."""
        return _schedule(self, fraction)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "segments": [{"start_min": s.start_min, "end_min": s.end_min,
                          "rate_mg_per_h": s.rate_mg_per_h} for s in self.segments],
            "boluses": [{"t_min": b.t_min, "mg": b.mg} for b in self.boluses],
        }
