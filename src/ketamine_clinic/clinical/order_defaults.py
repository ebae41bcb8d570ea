"""The maximum rate an order form suggests: the protocol's maximum, lowered to the highest
step of the titration that stays inside every soft limit for this patient's weight, so that
an order written with the defaults needs no override.

A suggestion for the physician, who may write a higher maximum with a documented
override; the order check (``clinical.dosing.check_order``) stays the authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ketamine_clinic.clinical.limits import LimitKind
from ketamine_clinic.clinical.protocol import DosingBasis, Protocol
from ketamine_clinic.clinical.units import exact


@dataclass(frozen=True, slots=True)
class DefaultMaximum:
    """``rate`` in the protocol's rate unit; ``lowered_by`` names the soft limit that
    lowered it from the protocol's maximum (empty when it did not)."""

    rate: Fraction
    unit: str
    lowered_by: str = ""


def default_maximum(protocol: Protocol, weight_kg: Fraction | float | None) -> DefaultMaximum:
    d = protocol.dosing
    unit = d.rate_unit
    top = d.max_rate.value
    if weight_kg is None or d.titration_step is None:
        return DefaultMaximum(top, unit)
    weight = exact(weight_kg, field="weight_kg")
    fixed = d.dosing_basis is DosingBasis.FIXED
    bounds: list[tuple[str, Fraction]] = []
    for lim in protocol.limits:
        if lim.kind is not LimitKind.SOFT or lim.upper is None:
            continue
        if lim.quantity == "rate_mg_per_h":
            per = Fraction(1) if fixed else weight
        elif lim.quantity == "rate_mg_per_kg_per_h":
            per = 1 / weight if fixed else Fraction(1)
        else:
            continue
        bounds.append((lim.quantity, lim.upper / per))
    rate, step = d.start_rate.value, d.titration_step.value
    best, lowered = top, ""
    steps: list[Fraction] = []
    while rate <= top:
        steps.append(rate)
        rate += step
    for candidate in reversed(steps):
        hit = next((q for q, bound in bounds if candidate > bound), "")
        if not hit:
            best = candidate
            break
        lowered = lowered or hit
    else:
        best = steps[0] if steps else top
    return DefaultMaximum(best, unit, lowered if best < top else "")
