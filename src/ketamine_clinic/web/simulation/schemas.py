"""What the PK/PD API answers: the core's result dictionaries, described for OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field


class PkModelOut(Schema):
    kind: Literal["pk"]
    id: str
    name: str
    compound: str
    sampling: str
    source: str
    version: str
    has_effect_site: bool
    has_metabolite: bool
    validity: dict[str, Any] = Field(description="weight and age range the model was built on")


class PdModelOut(Schema):
    kind: Literal["pd"]
    id: str
    name: str
    compound: str
    research_model: bool
    pk_model: str | None
    source: str
    version: str


ModelOut = Annotated[PkModelOut | PdModelOut, Field(discriminator="kind")]


class ModelInfoOut(Schema):
    id: str
    name: str
    version: str
    compound: str
    metabolite_compound: str | None
    sampling: str
    references: dict[str, str]
    ke0_per_min: float | None
    ke0_status: str | None
    ke0_source: str | None
    research_model: bool
    pd_readout: str | None


class CovariatesOut(Schema):
    weight_kg: float
    age_years: float | None
    height_cm: float | None
    sex: str | None


class RegimenOut(Schema):
    drug: str
    segments: list[dict[str, Any]]
    boluses: list[dict[str, Any]]


class SimulationOut(Schema):
    """One patient's concentrations [ng/mL] at ``times_min``; a series the model lacks is
    null."""

    model: str
    times_min: list[float]
    plasma_ng_per_ml: list[float]
    effect_site_ng_per_ml: list[float] | None
    norketamine_ng_per_ml: list[float] | None
    pd_effect: list[float] | None
    warnings: list[str]
    threshold_ng_per_ml: float | None
    threshold_crossing_min: dict[str, float | None]
    model_info: ModelInfoOut
    patient: CovariatesOut
    regimen: RegimenOut


class PopulationOut(Schema):
    """A virtual population's percentile bands [ng/mL] per series, and its typical patient."""

    model: str
    n: int
    seed: int
    iiv: dict[str, Any] = Field(description="label, variances (omega2) and covariance used")
    percentiles: list[float]
    times_min: list[float]
    bands_ng_per_ml: dict[str, list[list[float | None]]]
    typical: SimulationOut
    warnings: list[str]
    threshold_ng_per_ml: float | None
    threshold_crossing_percentiles_min: dict[str, list[float | None]]
    model_info: ModelInfoOut
    patient: CovariatesOut
    regimen: RegimenOut


class PopulationJobOut(Schema):
    """A background population run: its status and progress; ``result`` once done."""

    id: int
    status: str
    n: int
    patients_done: int
    progress_percent: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    status_url: str
    result: PopulationOut | None
