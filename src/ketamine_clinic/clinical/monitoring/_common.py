"""Helpers every monitoring module uses: exact number inputs, aware times, display rounding."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from ketamine_clinic.clinical import clock, units

Number = units.ExactInput

def _aware(at: datetime, field_name: str) -> datetime:
    return clock.aware(field_name, at)


def as_number(value: Fraction, places: int = 6) -> float:
    """A Fraction rounded for display and JSON (the exact value is kept beside it)."""
    return round(float(value), places)
