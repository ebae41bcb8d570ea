"""Dose-error-reduction limits, as smart-pump drug libraries define them.

This module holds the *type* of a limit. Values always come from protocol data
(``protocols/*.toml``), never from code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from ketamine_clinic.clinical.units import exact


class LimitKind(enum.Enum):
    HARD = "hard"  # blocks; cannot be overridden
    SOFT = "soft"  # may be overridden with a coded reason and free text


@dataclass(frozen=True, slots=True)
class Limit:
    """One bound on one dosing quantity.

    Attributes
    ----------
    quantity
        What is limited, with its unit in the name, e.g. ``"rate_mg_per_kg_per_h"``,
        ``"rate_mg_per_h"``, ``"titration_step_mg_per_h"``, ``"session_total_mg"``,
        ``"session_total_mg_per_kg"``, ``"series_total_mg"``, ``"bolus_mg_per_kg"``,
        ``"concentration_mg_per_ml"``.
    kind
        Hard or soft.
    lower, upper
        Inclusive bounds in the quantity's unit, exact; ``None`` where there is no bound.
        A bound given as an int, a decimal string or a float is read exactly (a float as the
        shortest decimal that round-trips, ``0.35`` → 7/20), so a value equal to the bound
        as written is inside it.
    source
        Reference key (e.g. ``"S9"``) or ``"clinic policy (set by ...)"``.
    """

    quantity: str
    kind: LimitKind
    lower: Fraction | None
    upper: Fraction | None
    source: str

    def __post_init__(self) -> None:
        for side in ("lower", "upper"):
            bound = getattr(self, side)
            if bound is not None and not isinstance(bound, Fraction):
                object.__setattr__(self, side,
                                   exact(bound, field=f"limits.{self.quantity}.{side}"))
