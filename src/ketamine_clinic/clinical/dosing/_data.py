"""Reference tables the dosing modules read (``ketamine_clinic/reference/*.toml``)."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.units import exact
from ketamine_clinic.reference import read_toml


def read_reference(name: str) -> Mapping[str, Any]:
    """The parsed TOML of ``reference/<name>`` (read once: ``reference.read_toml``)."""
    return read_toml(name)


def frac(value: float | int | str | Fraction, name: str) -> Fraction:
    """``value`` as an exact fraction; ``name`` is the file named in an error."""
    return exact(value, field=name)
