"""Plausibility ranges for entered values, read from ``reference/plausibility.toml``.

A value outside its range is a data-entry error (a decimal slip, a wrong unit), refused
with a message that names the field. Clinical alarm thresholds are a different thing and
live in each protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml


@dataclass(frozen=True, slots=True)
class PlausibleRange:
    name: str
    min: float
    max: float
    source: str

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


@cache
def plausible_ranges() -> dict[str, PlausibleRange]:
    """All ranges, keyed by quantity name with its unit (``"weight_kg"``)."""
    raw = read_toml("plausibility.toml")
    return {
        name: PlausibleRange(name, float(v["min"]), float(v["max"]), str(v["source"]))
        for name, v in raw.items()
    }


def check_plausible(quantity: str, value: float, *, field: str | None = None) -> float:
    """Return ``value`` unchanged, or raise :class:`UsageError` naming ``field``.

    ``quantity`` is a key of ``plausibility.toml``; ``field`` defaults to it.
    """
    rng = plausible_ranges()[quantity]
    if not rng.contains(value):
        raise UsageError(
            field or quantity,
            f"{value:g} is outside the plausible range {rng.min:g}–{rng.max:g}",
        )
    return value
