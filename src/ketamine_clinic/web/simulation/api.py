"""PK/PD through the API: the model list, one patient, and a virtual population."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from ketamine_clinic.pk.parameter_sets import catalogue
from ketamine_clinic.pk.population import simulate_population
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import simulate
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import require
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.patients.schemas import ErrorOut

router = Router(tags=["pk"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
MAX_TIMES = 20_000
MAX_POPULATION = 100_000


class SegmentIn(Schema):
    start_min: float
    end_min: float
    rate_mg_per_h: float


class BolusIn(Schema):
    t_min: float
    mg: float


class SimulateIn(Schema):
    model: str
    weight_kg: float
    age_years: float | None = None
    height_cm: float | None = None
    sex: Literal["female", "male"] | None = None
    drug: Literal["racemic", "esketamine"] = "racemic"
    segments: list[SegmentIn] = Field(default_factory=list)
    boluses: list[BolusIn] = Field(default_factory=list)
    times_min: list[float] = Field(min_length=1, max_length=MAX_TIMES)
    ke0_per_min: float | None = None
    threshold_ng_per_ml: float | None = None


class PopulationIn(SimulateIn):
    n: int = Field(ge=1, le=MAX_POPULATION)
    seed: int
    percentiles: list[float] = Field(default=[5.0, 50.0, 95.0], min_length=1)
    omega2: dict[str, float] | None = None


def _inputs(payload: SimulateIn) -> tuple[Covariates, Regimen]:
    covariates = Covariates(weight_kg=payload.weight_kg, age_years=payload.age_years,
                            height_cm=payload.height_cm, sex=payload.sex)
    regimen = Regimen(
        tuple(Segment(s.start_min, s.end_min, s.rate_mg_per_h) for s in payload.segments),
        tuple(Bolus(b.t_min, b.mg) for b in payload.boluses), payload.drug)
    return covariates, regimen


@router.get("/pk/models", response={200: list[dict[str, Any]], **ERRORS})
def pk_models(request: HttpRequest) -> Any:
    require(request, Capability.RUN_SIMULATION)
    cat = catalogue()
    rows: list[dict[str, Any]] = []
    for m in cat.pk.values():
        rows.append({"id": m.id, "name": m.name, "kind": "pk", "compound": m.compound,
                     "sampling": m.sampling, "source": m.source, "version": m.version,
                     "has_effect_site": m.ke0 is not None,
                     "has_metabolite": m.metabolite is not None,
                     "validity": asdict(m.validity)})
    for d in cat.pd.values():
        rows.append({"id": d.id, "name": d.name, "kind": "pd", "compound": d.compound,
                     "research_model": d.research_model, "pk_model": d.pk_model,
                     "source": d.source, "version": d.version})
    return rows


@router.post("/pk/simulate", response={200: dict[str, Any], **ERRORS})
def pk_simulate(request: HttpRequest, payload: SimulateIn) -> Any:
    require(request, Capability.RUN_SIMULATION)
    covariates, regimen = _inputs(payload)
    result = simulate(payload.model, covariates, regimen, payload.times_min,
                      ke0_per_min=payload.ke0_per_min,
                      threshold_ng_per_ml=payload.threshold_ng_per_ml)
    audit_record(actor=Actor.from_request(request), action="api.pk.simulate",
                 detail={"model": payload.model})
    return result.to_dict()


@router.post("/pk/population", response={200: dict[str, Any], **ERRORS})
def pk_population(request: HttpRequest, payload: PopulationIn) -> Any:
    require(request, Capability.RUN_SIMULATION)
    covariates, regimen = _inputs(payload)
    result = simulate_population(
        payload.model, covariates, regimen, payload.times_min, n=payload.n, seed=payload.seed,
        percentiles=payload.percentiles, omega2=payload.omega2,
        ke0_per_min=payload.ke0_per_min, threshold_ng_per_ml=payload.threshold_ng_per_ml)
    audit_record(actor=Actor.from_request(request), action="api.pk.population",
                 detail={"model": payload.model, "n": payload.n, "seed": payload.seed})
    return result.to_dict()
