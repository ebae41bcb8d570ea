"""Running and storing PK/PD predictions for the planner, orders and live sessions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction

from ketamine_clinic.pk.parameter_sets import catalogue
from ketamine_clinic.pk.population import PopulationResult, simulate_population
from ketamine_clinic.pk.regimen import Regimen
from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import SimulationResult, simulate
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.simulation.models import Prediction

# Display choices (not clinical numbers): the chart runs 12 h past the last input, as the
# clinic asked, at 1-minute resolution; the band comes from a fixed-seed population so the
# same inputs always draw the same band.
TAIL_AFTER_LAST_INPUT_MIN = 12 * 60
GRID_STEP_MIN = 1.0
BAND_PATIENTS = 500
BAND_SEED = 2026
BAND_PERCENTILES = (5.0, 50.0, 95.0)
DEFAULT_MODEL = "kamp2020"
# The metabolite companion: an S-ketamine model with S-norketamine, fed the S-half of a
# racemic dose (the regimen's drug decides that fraction).
METABOLITE_MODEL = "fanta2015-otto2021"


SERIES_LABELS = {"plasma": "plasma", "effect_site": "effect site",
                 "norketamine": "norketamine"}


@dataclass(frozen=True)
class PredictionView:
    record: Prediction
    typical: SimulationResult
    population: PopulationResult | None
    metabolite: SimulationResult | None
    now_min: float | None


def time_grid(regimen: Regimen) -> np.ndarray:
    end = regimen.end_min + TAIL_AFTER_LAST_INPUT_MIN
    return np.arange(0.0, end + GRID_STEP_MIN / 2, GRID_STEP_MIN)


def _value_at(times: np.ndarray, values: np.ndarray | None, t: float) -> float | None:
    if values is None:
        return None
    return float(np.interp(t, times, values))


def summarise(typical: SimulationResult, population: PopulationResult | None,
              metabolite: SimulationResult | None, now_min: float | None) -> dict[str, Any]:
    times = typical.times_min
    end = typical.regimen.end_min
    summary: dict[str, Any] = {
        "model": typical.model.to_dict(),
        "end_of_infusion_min": end,
        "plasma_at_end_ng_per_ml": _value_at(times, typical.plasma_ng_per_ml, end),
        "effect_site_at_end_ng_per_ml": _value_at(times, typical.effect_site_ng_per_ml, end),
        "peak_plasma_ng_per_ml": float(np.max(typical.plasma_ng_per_ml)),
        "threshold_ng_per_ml": typical.threshold_ng_per_ml,
        "threshold_crossing_min": dict(typical.threshold_crossing_min),
        "threshold_crossings": [[SERIES_LABELS.get(k, k), v]
                                for k, v in typical.threshold_crossing_min.items()],
        "warnings": list(typical.warnings),
    }
    if now_min is not None:
        summary["now_min"] = now_min
        summary["plasma_now_ng_per_ml"] = _value_at(times, typical.plasma_ng_per_ml, now_min)
        summary["effect_site_now_ng_per_ml"] = _value_at(times, typical.effect_site_ng_per_ml,
                                                         now_min)
    if population is None:
        summary["population_note"] = (
            f"{typical.model.name} has no published inter-individual variability: no band")
    else:
        summary["population"] = {
            "n": population.n, "seed": population.seed, "iiv": population.iiv_label,
            "percentiles": list(population.percentiles),
            "threshold_crossing_percentiles_min": {
                s: [float(x) for x in v] for s, v in population.crossing_percentiles_min.items()},
        }
    if metabolite is not None:
        summary["metabolite_model"] = metabolite.model.to_dict()
        summary["norketamine_at_end_ng_per_ml"] = _value_at(
            metabolite.times_min, metabolite.norketamine_ng_per_ml, end)
        summary["metabolite_warnings"] = list(metabolite.warnings)
    return summary


def prediction_run(
    *,
    actor: Actor,
    purpose: str,
    model_id: str,
    covariates: Covariates,
    regimen: Regimen,
    threshold_ng_per_ml: float | None = None,
    with_population: bool = True,
    with_metabolite: bool = True,
    now_min: float | None = None,
    patient: Any = None,
    order: Any = None,
    session: Any = None,
) -> PredictionView:
    """Simulate, summarise and store one prediction (with its inputs and model version)."""
    times = time_grid(regimen)
    typical = simulate(model_id, covariates, regimen, times,
                       threshold_ng_per_ml=threshold_ng_per_ml)
    population = None
    if with_population and typical.model.id in catalogue().pk:
        model = catalogue().pk[typical.model.id]
        if model.iiv is not None:
            population = simulate_population(
                model_id, covariates, regimen, times, n=BAND_PATIENTS, seed=BAND_SEED,
                percentiles=BAND_PERCENTILES, threshold_ng_per_ml=threshold_ng_per_ml)
    metabolite = None
    if with_metabolite and typical.norketamine_ng_per_ml is None:
        metabolite = simulate(METABOLITE_MODEL, covariates, regimen, times)
    inputs = {
        "patient": covariates.to_dict(), "regimen": regimen.to_dict(),
        "threshold_ng_per_ml": threshold_ng_per_ml, "grid_step_min": GRID_STEP_MIN,
        "tail_after_last_input_min": TAIL_AFTER_LAST_INPUT_MIN,
        "population": ({"n": BAND_PATIENTS, "seed": BAND_SEED,
                        "percentiles": list(BAND_PERCENTILES)} if population else None),
        "metabolite_model": METABOLITE_MODEL if metabolite else None,
        "now_min": now_min,
    }
    digest = hashlib.sha256(json.dumps(
        [purpose, typical.model.id, typical.model.version, inputs], sort_keys=True,
        default=str).encode()).hexdigest()
    same = Prediction.objects.filter(inputs_sha256=digest, order=order, session=session,
                                     patient=patient).first()
    if same is not None:  # an unchanged order shown again: the stored record stands
        return PredictionView(same, typical, population, metabolite, now_min)
    with transaction.atomic():
        record = Prediction.objects.create(
            patient=patient, order=order, session=session, purpose=purpose,
            model_id=typical.model.id, model_version=typical.model.version, inputs=inputs,
            inputs_sha256=digest, summary=summarise(typical, population, metabolite, now_min),
            created_by=actor.require_user())
        audit_record(actor=actor, action=AuditAction.PREDICTION_RUN, object_type="prediction",
                     object_id=record.pk,
                     detail={"purpose": purpose, "model": typical.model.id,
                             "patient": getattr(patient, "pk", None),
                             "order": getattr(order, "pk", None),
                             "session": getattr(session, "pk", None)})
    return PredictionView(record, typical, population, metabolite, now_min)
