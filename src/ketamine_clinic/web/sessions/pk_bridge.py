"""Predicted ketamine concentration now, from the session's actual rate history.

This is the one place the session pages ask the PK simulator (``ketamine_clinic.pk``): the
effective rate segments of the timeline (pauses included) become a ``Regimen`` from the
infusion start, and the model's plasma concentration is evaluated from the start to now.
The prediction is decision support: it says which model, version and patient it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ketamine_clinic.errors import UsageError

# Which published model the session page shows for each drug. The clinic infuses racemic
# ketamine: Domino's set (STANPUMP) is the racemic model in the catalogue most widely used
# in target-controlled infusion software (pk/models.toml). Esketamine gets the first
# S-ketamine model of the catalogue. A protocol setting may replace this choice.
MODEL_FOR_DRUG = {"racemic": "domino"}
GRID_STEP = timedelta(minutes=2)  # chart resolution, not a clinical number


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

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "reason": self.reason,
                "plasma_ng_per_ml_now": self.now_value, "model": self.model,
                "inputs": self.inputs}


def _model_for(drug: str) -> str:
    # The PK core (numpy, scipy) loads on the first prediction, not with every page.
    from ketamine_clinic.pk.parameter_sets import catalogue

    if drug in MODEL_FOR_DRUG:
        return MODEL_FOR_DRUG[drug]
    pk = catalogue().pk
    s_models = sorted(k for k, m in pk.items() if m.compound == "S-ketamine")
    if not s_models:
        raise UsageError("drug", f"no PK model for {drug!r}")
    return s_models[0]


def predicted_concentration(snap: Any, at: datetime | None = None) -> Prediction:
    """The plasma concentration predicted at ``at`` (default: the snapshot's now) and along
    the session, from the effective rate segments."""
    totals = snap.totals
    if totals is None or totals.started_at is None or not totals.segments:
        return Prediction(False, "the infusion has not started")
    try:
        # Late, and allowed to be missing: the PK core (numpy, scipy) is optional here.
        from ketamine_clinic.pk.regimen import Regimen, Segment
        from ketamine_clinic.pk.simulate import Patient, simulate
    except ImportError:
        return Prediction(False, "the PK simulator (ketamine_clinic.pk) is not installed")
    start = totals.started_at
    now = at or snap.now
    if totals.stopped_at is not None:
        # After the stop the curve is drawn for as long again as the infusion ran, not to
        # today: a session charted weeks ago carries a bounded prediction, not weeks of curve.
        now = min(now, totals.stopped_at + totals.infusing_time)
    minutes = (now - start) / timedelta(minutes=1)
    segments = tuple(Segment((s.start - start) / timedelta(minutes=1),
                             (s.end - start) / timedelta(minutes=1), float(s.rate_mg_per_h))
                     for s in totals.segments if s.end > s.start)
    order = snap.session.order
    drug = "esketamine" if "esk" in (order.drug or "").lower() else "racemic"
    patient = snap.session.patient
    model_id = _model_for(drug)
    steps = max(1, int(minutes // (GRID_STEP / timedelta(minutes=1))))
    grid = [i * GRID_STEP / timedelta(minutes=1) for i in range(steps + 1)]
    if grid[-1] < minutes:
        grid.append(minutes)
    try:
        result = simulate(model_id,
                          Patient(weight_kg=float(snap.weight_kg),
                                  age_years=patient.age_on(timezone.localdate(now))),
                          Regimen(segments, (), drug), grid)
    except UsageError as exc:
        return Prediction(False, f"no prediction: {exc}")
    values = [float(v) for v in result.plasma_ng_per_ml]
    info = result.model
    return Prediction(
        available=True, now_value=values[-1], model=f"{info.name} ({info.id} {info.version})",
        times=[start + timedelta(minutes=t) for t in grid], values=values,
        inputs={"model": info.to_dict(), "patient": result.patient.to_dict(), "drug": drug,
                "segments": [[s.start_min, s.end_min, s.rate_mg_per_h] for s in segments],
                "at_min": minutes, "warnings": list(result.warnings)})
