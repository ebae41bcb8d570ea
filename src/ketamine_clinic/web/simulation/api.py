"""PK/PD through the API: the model list, one patient, and a virtual population."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import Field

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.parameter_sets import catalogue
from ketamine_clinic.pk.population import simulate_population
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import simulate
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.simulation.models import PopulationJob
from ketamine_clinic.web.simulation.population_jobs import population_job_create, population_job_out
from ketamine_clinic.web.simulation.schemas import (
    ModelOut,
    PopulationJobOut,
    PopulationOut,
    SimulationOut,
)

router = Router(tags=["pk"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# Every request's work is bounded by settings (docs/api.md).
MAX_TIMES = settings.PK_MAX_TIMES
MAX_SEGMENTS = settings.PK_MAX_SEGMENTS
MAX_POPULATION = settings.PK_MAX_POPULATION


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
    segments: list[SegmentIn] = Field(default_factory=list, max_length=MAX_SEGMENTS)
    boluses: list[BolusIn] = Field(default_factory=list, max_length=MAX_SEGMENTS)
    times_min: list[float] = Field(min_length=1, max_length=MAX_TIMES)
    ke0_per_min: float | None = None
    threshold_ng_per_ml: float | None = None


class PopulationIn(SimulateIn):
    n: int = Field(ge=1, le=MAX_POPULATION)
    seed: int
    percentiles: list[float] = Field(default=[5.0, 50.0, 95.0], min_length=1,
                                     max_length=settings.PK_MAX_PERCENTILES)
    omega2: dict[str, float] | None = Field(None, max_length=MAX_SEGMENTS)


def _inputs(payload: SimulateIn) -> tuple[Covariates, Regimen]:
    covariates = Covariates(weight_kg=payload.weight_kg, age_years=payload.age_years,
                            height_cm=payload.height_cm, sex=payload.sex)
    regimen = Regimen(
        tuple(Segment(s.start_min, s.end_min, s.rate_mg_per_h) for s in payload.segments),
        tuple(Bolus(b.t_min, b.mg) for b in payload.boluses), payload.drug)
    return covariates, regimen


@router.get("/pk/models", response={200: list[ModelOut], **ERRORS})
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


@router.post("/pk/simulate", response={200: SimulationOut, **ERRORS})
def pk_simulate(request: HttpRequest, payload: SimulateIn) -> Any:
    require(request, Capability.RUN_SIMULATION)
    covariates, regimen = _inputs(payload)
    result = simulate(payload.model, covariates, regimen, payload.times_min,
                      ke0_per_min=payload.ke0_per_min,
                      threshold_ng_per_ml=payload.threshold_ng_per_ml)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_PK_SIMULATE,
                 detail={"model": payload.model})
    return result.to_dict()


def run_population(payload: PopulationIn,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    covariates, regimen = _inputs(payload)
    result = simulate_population(
        payload.model, covariates, regimen, payload.times_min, n=payload.n, seed=payload.seed,
        percentiles=payload.percentiles, omega2=payload.omega2,
        ke0_per_min=payload.ke0_per_min, threshold_ng_per_ml=payload.threshold_ng_per_ml,
        progress=progress)
    out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), cls=DjangoJSONEncoder))
    return out


@router.post("/pk/population", response={200: PopulationOut, 202: PopulationJobOut,
                                           **ERRORS})
def pk_population(request: HttpRequest, payload: PopulationIn) -> Any:
    """A virtual population's bands. Up to ``PK_SYNC_MAX_WORK`` patients × times the answer
    comes at once (200); above it, up to ``PK_JOB_MAX_WORK``, the run becomes a background
    job (202 with its ``status_url``: progress, then the result); above that it is refused."""
    user = require(request, Capability.RUN_SIMULATION)
    work = payload.n * len(payload.times_min)
    if work > settings.PK_JOB_MAX_WORK:
        raise UsageError("n", f"{payload.n:,} patients × {len(payload.times_min):,} times = "
                              f"{work:,} values, more than the {settings.PK_JOB_MAX_WORK:,} "
                              "one run may compute: ask for fewer patients or times")
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_PK_POPULATION,
                 detail={"model": payload.model, "n": payload.n, "seed": payload.seed,
                         "background": work > settings.PK_SYNC_MAX_WORK})
    if work > settings.PK_SYNC_MAX_WORK:
        job = population_job_create(user=user, inputs=payload.dict())
        return Status(202, population_job_out(job))
    return run_population(payload)


@router.get("/pk/population/jobs/{job_id}", response={200: PopulationJobOut, **ERRORS})
def pk_population_job(request: HttpRequest, job_id: int) -> Any:
    """A background population run: status, progress and, once done, the result."""
    user = require(request, Capability.RUN_SIMULATION)
    job = PopulationJob.objects.filter(pk=job_id, requested_by=user).first()
    if job is None:
        raise HttpError(404, "no such population job of yours")
    return population_job_out(job)
