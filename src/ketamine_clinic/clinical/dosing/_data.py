"""Reference tables the dosing modules read (``ketamine_clinic/reference/*.toml``)."""

from __future__ import annotations

import tomllib
from fractions import Fraction
from importlib import resources
from typing import Any

from ketamine_clinic.clinical.units import exact


def read_reference(name: str) -> dict[str, Any]:
    """The parsed TOML of ``reference/<name>``."""
    text = resources.files("ketamine_clinic.reference").joinpath(name).read_text("utf-8")
    return tomllib.loads(text)


def frac(value: float | int | str | Fraction, name: str) -> Fraction:
    """``value`` as an exact fraction; ``name`` is the file named in an error."""
    return exact(value, field=name)
