"""Predicted ketamine concentration now, from the session's actual rate history.

This is the one place the session pages ask the PK simulator (``ketamine_clinic.pk``).
Until the simulator's public API is available, :func:`predicted_concentration` returns a
:class:`Prediction` with ``available=False`` and the reason, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Prediction:
    available: bool
    reason: str = ""
    now_value: float | None = None
    unit: str = "ng/mL"
    model: str = ""
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)


def predicted_concentration(snap: Any) -> Prediction:
    """The plasma concentration predicted now and along the session (PK simulator)."""
    if snap.totals is None:
        return Prediction(False, "the infusion has not started")
    return Prediction(False, "the PK simulator (ketamine_clinic.pk) is not available yet")
