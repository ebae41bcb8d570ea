"""Timeline entry kinds and their payloads: the storage and API contract of a session.

Every ``TimelineEntry.payload`` is the JSON form of one of these models, validated on the
way in (pages, API, device feeds, the synthetic cohort loader). Units are in the names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ketamine_clinic.clinical.bedside import decisions as _decisions
from ketamine_clinic.clinical.bedside import view as _core_view
from ketamine_clinic.clinical.scales import BEDSIDE_DISSOCIATION_SCALE, scale_keys


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
    """Premedication or as-needed drug given from the signed order (the bedside core
    checks it against the order's line: drug, dose, route, count and interval)."""

    drug: str
    dose: float = Field(gt=0)
    unit: str
    route: str
    indication: str = ""
    ordered_dose: float | None = None
    order_line: int | None = None  # index into the order's premedications / rescue lines
    dose_number: int | None = None
    max_doses: int | None = None


class RateSet(Payload):
    """Infusion start, or a rate change, with the check that allowed it.

    ``rate_entered`` is the rate as typed (any form); the three forms are the core's
    exact conversions (rounded for JSON); ``rate_check`` is ``RateCheck.to_dict()`` and
    ``acceptance`` the ``Acceptance.to_dict()`` that let it through.
    """

    rate_mg_per_h: float = Field(gt=0)
    pump_rate_ml_per_h: float = Field(gt=0)
    rate_mg_per_kg_per_h: float | None = Field(default=None, gt=0)
    rate_mg_per_h_exact: str = ""
    rate_entered: str = ""
    physician: str = ""  # a physician who co-signed this rate at the bedside
    rate_check: dict[str, Any] = Field(default_factory=dict)
    acceptance: dict[str, Any] = Field(default_factory=dict)
    override_code: str = ""
    override_text: str = ""
    confirmed: list[str] = Field(default_factory=list)


class Pause(Payload):
    reason: str = ""


class Resume(Payload):
    rate_mg_per_h: float | None = Field(default=None, gt=0)


class Stop(Payload):
    """The end of the infusion; ``totals`` is ``InfusionTotals.to_dict()`` at the stop."""

    reason: str = ""
    totals: dict[str, Any] = Field(default_factory=dict)
    prediction: dict[str, Any] = Field(default_factory=dict)  # PK at the stop


class BeginRecovery(Payload):
    note: str = ""


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
    scale: str = Field(description="a sedation scale of reference/scales.toml")
    score: int
    result: dict[str, Any] = Field(default_factory=dict)  # ScaleScore.to_dict()

    @field_validator("scale")
    @classmethod
    def _a_sedation_scale(cls, value: str) -> str:
        known = scale_keys("sedation")
        if value not in known:
            raise ValueError(f"must be one of {', '.join(known)} (reference/scales.toml)")
        return value


class Dissociation(Payload):
    scale: str = Field(default=BEDSIDE_DISSOCIATION_SCALE,
                       description="the dissociation scale charted at the bedside")
    items: dict[str, int] = Field(default_factory=dict)
    total: int
    result: dict[str, Any] = Field(default_factory=dict)  # ScaleScore.to_dict()

    @field_validator("scale")
    @classmethod
    def _the_bedside_scale(cls, value: str) -> str:
        if value != BEDSIDE_DISSOCIATION_SCALE:
            raise ValueError(f"must be {BEDSIDE_DISSOCIATION_SCALE}")
        return value


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
    """A discharge score (modified Aldrete, PADSS, modified PADSS), item by item.

    ``items`` holds the points of every item (computed ones too); ``observed`` what the
    clinician chose; ``result`` the core's ``DischargeScore.to_dict()`` (with the baseline
    and current vital signs it was computed from); ``vitals_entry_id`` the set scored.
    """

    score_name: str
    items: dict[str, int]
    total: int
    observed: dict[str, int] = Field(default_factory=dict)
    vitals_entry_id: int | None = None
    baseline_entry_id: int | None = None
    result: dict[str, Any] = Field(default_factory=dict)


class Discharge(Payload):
    escort_name: str = Field(min_length=1)
    instructions_given: bool
    gate: dict[str, Any] = Field(default_factory=dict)
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    no_driving_until: dict[str, Any] = Field(default_factory=dict)


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
    "begin_recovery": BeginRecovery,
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


# The kinds are the bedside core's (state changes, correctable and retractable kinds).
STATE_KINDS: dict[str, str] = dict(_core_view.STATE_KINDS)
OBSERVATION_KINDS = (*_decisions.OBSERVATIONS, *_core_view.MEDICATION_KINDS)
CORRECTABLE_KINDS = _decisions.CORRECTABLE
RETRACTABLE_KINDS = _decisions.RETRACTABLE


# --------------------------------------------------------------------------- API schemas

from datetime import datetime as _datetime  # noqa: E402

from ninja import Schema  # noqa: E402


class VitalsIn(Vitals):
    """A vital-sign set from a bedside monitor or another system: the ``vitals`` payload
    plus when it was measured, the retry key and the device."""

    occurred_at: _datetime | None = Field(default=None, description="when measured (UTC offset)")
    idempotency_key: str = Field(min_length=1, max_length=80,
                                 description="the same key on a retry; never a duplicate")
    device_id: str = Field(default="", max_length=80)


class ObservationIn(Schema):
    kind: Literal["vitals", "sedation", "dissociation", "pain", "adverse_event", "note",
                  "premedication", "rescue_medication"]
    payload: dict[str, Any]
    occurred_at: _datetime | None = None
    idempotency_key: str = Field(min_length=1, max_length=80)


class EventIn(Schema):
    event: Literal["check_in", "pre_assessment", "pause", "resume", "stop", "begin_recovery",
                   "transfer", "abandon"]
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: _datetime | None = None
    expected_version: int | None = Field(default=None, description="the version you saw")
    idempotency_key: str = Field(min_length=1, max_length=80)


class GiveIn(Schema):
    """A drug given from the signed order's list (premedication or as needed)."""

    drug: str = Field(min_length=1, max_length=60)
    dose: float = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)
    route: str = Field(min_length=1, max_length=10)
    indication: str = ""
    occurred_at: _datetime | None = None
    idempotency_key: str = Field(min_length=1, max_length=80)


class RateIn(Schema):
    rate: str = Field(description='any form: "0.5 mg/kg/h", "60 mg/h", "60 mL/h"')
    occurred_at: _datetime | None = None
    override_code: str = ""
    override_text: str = ""
    confirmed: list[str] = Field(default_factory=list)
    expected_version: int | None = None
    idempotency_key: str = Field(min_length=1, max_length=80)


class CorrectionIn(Schema):
    reason: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: _datetime | None = None
    entered_in_error: bool = False
    idempotency_key: str = Field(min_length=1, max_length=80)


class AckIn(Schema):
    response: str = Field(min_length=1)


class RecoveryIn(Schema):
    score_name: str | None = None
    observed: dict[str, int]
    occurred_at: _datetime | None = None
    idempotency_key: str = Field(min_length=1, max_length=80)


class DischargeIn(Schema):
    escort_name: str = ""
    instructions_given: bool = False
    overrides: dict[str, str] = Field(default_factory=dict)
    occurred_at: _datetime | None = None
    expected_version: int | None = None
    idempotency_key: str = Field(min_length=1, max_length=80)


class EntryOut(Schema):
    id: int
    session: int
    kind: str
    occurred_at: _datetime
    recorded_at: _datetime
    recorded_by: str
    payload: dict[str, Any]
    corrects: int | None
    correction_reason: str
    device_id: str
    status: str = "effective"
    replayed: bool = False


class AlarmOut(Schema):
    id: int
    kind: str
    message: str
    raised_at: _datetime
    acknowledged: bool
    acknowledged_by: str | None
    response: str | None


class SessionOut(Schema):
    id: int
    patient: int
    chair: str
    visit_number: int
    state: str
    version: int
    allowed_events: list[str]
    totals: dict[str, Any] | None
    limits: list[dict[str, Any]]
    overdue: dict[str, Any] | None
    alarms: list[AlarmOut]
    start_gate: dict[str, Any] | None
    discharge_gate: dict[str, Any] | None
    protocol: dict[str, str]


class PingOut(Schema):
    user: str
    at: _datetime
