"""The one place where PK units are converted.

Internal units of the PK core: time [min], amount [mg], volume [L], clearance [L/min],
rate constant [1/min], infusion rate [mg/min], concentration [ng/mL] (= µg/L).
At the boundary rates are in mg/h, doses in mg, times in min.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketamine_clinic.errors import UsageError

MIN_PER_H = 60.0
NG_PER_ML_PER_MG_PER_L = 1000.0  # 1 mg/L = 1 µg/mL = 1000 ng/mL

# Multiplier from a published unit to the internal unit of the same dimension. A "/kg"
# unit is per kg of body weight: its weight scaling is applied by the caller.
_FACTORS: dict[str, float] = {
    "L": 1.0,
    "L/kg": 1.0,
    "L/min": 1.0,
    "L/min/kg": 1.0,
    "L/h": 1.0 / MIN_PER_H,
    "L/h/kg": 1.0 / MIN_PER_H,
    "mL/min/kg": 1.0e-3,
    "1/min": 1.0,
    "1/h": 1.0 / MIN_PER_H,
    "s": 1.0 / 60.0,
    "min": 1.0,
    "h": MIN_PER_H,
    "d": 24.0 * MIN_PER_H,
    "1": 1.0,
    "ng/mL": 1.0,
}


def to_internal(value: float, unit: str) -> float:
    """``value`` [unit] in the internal unit of its dimension (L, L/min, 1/min, min, ng/mL)."""
    try:
        return value * _FACTORS[unit]
    except KeyError:
        raise UsageError("unit", f"unknown PK unit {unit!r}") from None


def is_per_kg(unit: str) -> bool:
    """Whether a published unit is per kg of body weight (scales linearly with weight)."""
    return unit.endswith("/kg")


def mg_per_min_from_mg_per_h(rate_mg_per_h: ArrayLike) -> NDArray[np.float64]:
    """Infusion rate [mg/h] -> [mg/min]."""
    return np.asarray(rate_mg_per_h, dtype=float) / MIN_PER_H


def rate_constant_from_half_life(t_half_min: float) -> float:
    """First-order rate constant [1/min] from a half-life [min]."""
    return float(np.log(2.0) / t_half_min)
