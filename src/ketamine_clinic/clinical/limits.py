"""Dose-error-reduction limits, as smart-pump drug libraries define them.

This module holds the *type* of a limit. Values always come from protocol data
(``protocols/*.toml``), never from code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
        Inclusive bounds in the quantity's unit; ``None`` where there is no bound.
    source
        Reference key (e.g. ``"S9"``) or ``"clinic policy (set by ...)"``.
    """

    quantity: str
    kind: LimitKind
    lower: float | None
    upper: float | None
    source: str
