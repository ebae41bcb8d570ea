"""Timeline entry kinds and their payloads: the storage and API contract of a session.

Every ``TimelineEntry.payload`` is the JSON form of one of these models, validated on the
way in (pages, API, device feeds, the synthetic cohort loader). Units are in the names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckIn(Payload):
    chair: str = ""


class PreAssessment(Payload):
    iv_access_documented: bool
    iv_site: str = ""
    escort_name: str = Field(default="", description="adult escort confirmed by name")
    pregnancy_status: Literal["pregnant", "not_pregnant", "unknown", "not_applicable"] | None = None
    consent_id: int | None = None


class MedicationGiven(Payload):
    """Premedication or rescue medication actually given."""

    drug: str
    dose: float = Field(gt=0)
    unit: str
    route: str
    indication: str = ""


class RateSet(Payload):
    """Infusion start, or a rate change, with the check that allowed it."""

    rate_mg_per_h: float = Field(ge=0)
    pump_rate_ml_per_h: float = Field(ge=0)
    rate_check: dict = Field(default_factory=dict)  # type: ignore[type-arg]
    override_code: str = ""
    override_text: str = ""


class Pause(Payload):
    reason: str = ""


class Resume(Payload):
    rate_mg_per_h: float | None = Field(default=None, ge=0)


class Stop(Payload):
    reason: str = ""


class Vitals(Payload):
    systolic_bp_mmhg: float
    diastolic_bp_mmhg: float
    heart_rate_per_min: float
    respiratory_rate_per_min: float
    spo2_percent: float
    etco2_mmhg: float | None = None
    temperature_c: float | None = None
    on_oxygen: bool = False


class Sedation(Payload):
    scale: Literal["moaas", "moaas_6", "rass", "ramsay"]
    score: int


class Dissociation(Payload):
    scale: Literal["cadss6"] = "cadss6"
    items: dict[str, int] = Field(default_factory=dict)
    total: int


class Pain(Payload):
    nrs: int = Field(ge=0, le=10)
    phase: Literal["pre", "during", "end", "recovery"]


class AdverseEvent(Payload):
    type: Literal["hypertension", "tachycardia", "nausea_vomiting", "hallucination_emergence",
                  "desaturation", "other"]
    description: str = ""
    severity: Literal["mild", "moderate", "severe"]
    action_taken: str = ""
    outcome: str = ""


class Note(Payload):
    text: str = Field(min_length=1)


class RecoveryScore(Payload):
    score_name: str
    items: dict[str, int]
    total: int
    result: dict = Field(default_factory=dict)  # type: ignore[type-arg]


class Discharge(Payload):
    escort_name: str = Field(min_length=1)
    instructions_given: bool
    gate: dict = Field(default_factory=dict)  # type: ignore[type-arg]
    overrides: list[dict] = Field(default_factory=list)  # type: ignore[type-arg]


class Transfer(Payload):
    reason: str = Field(min_length=1)
    destination: str = ""


class Abandon(Payload):
    reason: str = Field(min_length=1)


class EnteredInError(Payload):
    """Retracts the entry it corrects, without a replacement."""


KINDS: dict[str, type[Payload]] = {
    "check_in": CheckIn,
    "pre_assessment": PreAssessment,
    "premedication": MedicationGiven,
    "rescue_medication": MedicationGiven,
    "infusion_start": RateSet,
    "rate_change": RateSet,
    "pause": Pause,
    "resume": Resume,
    "stop": Stop,
    "vitals": Vitals,
    "sedation": Sedation,
    "dissociation": Dissociation,
    "pain": Pain,
    "adverse_event": AdverseEvent,
    "note": Note,
    "recovery_score": RecoveryScore,
    "discharge": Discharge,
    "transfer": Transfer,
    "abandon": Abandon,
    "entered_in_error": EnteredInError,
}
