from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from ketamine_clinic.web.orders.selectors import can_see_numbers


class DoseCheckIn(Schema):
    protocol: str = Field(description="protocol name (its newest stored version) ...",
                          default="")
    protocol_version_id: int | None = Field(default=None,
                                            description="... or a stored version's id")
    weight_kg: str = Field(description='dosing weight, e.g. "72.5" or "160 lb"')
    rate: str = Field(description='"0.5 mg/kg/h", "60 mg/h" or "60 mL/h"')
    bag: str = Field(description='"500 mg in 500 mL" (final volume)')
    duration: str = Field(default="", description='hold the rate this long, e.g. "4 h"')
    height_cm: str = ""
    sex: Literal["", "female", "male"] = ""


class OverrideIn(Schema):
    quantity: str
    reason_code: str
    free_text: str


class OrderIn(Schema):
    protocol_version_id: int
    vial_strength_mg_per_ml: str
    bag: str = Field(description='"500 mg in 500 mL"')
    start_rate: str
    titration_step: str = ""
    max_rate: str
    min_step_interval_min: str
    planned_duration_min: str
    planned_sessions: str
    spacing_days: str
    bolus: str = ""
    weight_kg: str = Field(default="", description="record a new weight now and dose on it")
    premedications: list[str] | None = Field(default=None,
                                             description="protocol drugs to keep; null: all")
    rescue_medications: list[str] | None = None
    overrides: list[OverrideIn] = []
    confirmed: list[str] = Field(default=[], description="cross-check codes confirmed")


class OrderChangeIn(OrderIn):
    change_reason: str


class SignIn(Schema):
    overrides: list[OverrideIn] = []
    confirmed: list[str] = []


class VerifyIn(Schema):
    concentration_mg_per_ml: str
    pump_rate_ml_per_h: str


class ReasonIn(Schema):
    reason: str = ""


def _sees_numbers(order: Any, context: Any) -> bool:
    """The blind second check: ``orders.selectors.can_see_numbers`` for the asking user."""
    return can_see_numbers(context["request"].auth, order)


class OrderOut(Schema):
    """An order as the API shows it, read from the model; while the second check is
    pending the rates and the computed check are blank for all but its prescriber."""

    id: int
    patient_id: int
    series_id: int
    protocol: str
    status: str
    replaces_id: int | None
    start_rate_text: str
    titration_step_text: str
    max_rate_text: str
    min_step_interval_min: int
    planned_duration_min: int
    bolus_text: str
    planned_sessions: int
    spacing_days: int
    premedications: list[dict[str, Any]]
    rescue_medications: list[dict[str, Any]]
    overrides: list[dict[str, Any]]
    written_by: str
    written_at: datetime
    signed_by: str | None
    signed_at: datetime | None
    verified_by: str | None
    verified_at: datetime | None
    ended_reason: str
    numbers_hidden: bool
    computed: dict[str, Any] | None = Field(
        description="the core's order check (every rate form, table, totals, limits); "
        "null while the double check is pending, except for its prescriber")

    @staticmethod
    def resolve_protocol(obj: Any) -> str:
        return f"{obj.protocol_version.name} v{obj.protocol_version.version}"

    @staticmethod
    def resolve_planned_sessions(obj: Any) -> int:
        return int(obj.series.planned_sessions)

    @staticmethod
    def resolve_spacing_days(obj: Any) -> int:
        return int(obj.series.spacing_days)

    @staticmethod
    def resolve_written_by(obj: Any) -> str:
        return str(obj.written_by.get_username())

    @staticmethod
    def resolve_signed_by(obj: Any) -> str | None:
        return obj.signed_by.get_username() if obj.signed_by else None

    @staticmethod
    def resolve_verified_by(obj: Any) -> str | None:
        return obj.verified_by.get_username() if obj.verified_by else None

    @staticmethod
    def resolve_numbers_hidden(obj: Any, context: Any) -> bool:
        return not _sees_numbers(obj, context)

    @staticmethod
    def resolve_start_rate_text(obj: Any, context: Any) -> str:
        return str(obj.start_rate_text) if _sees_numbers(obj, context) else ""

    @staticmethod
    def resolve_titration_step_text(obj: Any, context: Any) -> str:
        return str(obj.titration_step_text) if _sees_numbers(obj, context) else ""

    @staticmethod
    def resolve_max_rate_text(obj: Any, context: Any) -> str:
        return str(obj.max_rate_text) if _sees_numbers(obj, context) else ""

    @staticmethod
    def resolve_bolus_text(obj: Any, context: Any) -> str:
        return str(obj.bolus_text) if _sees_numbers(obj, context) else ""

    @staticmethod
    def resolve_overrides(obj: Any, context: Any) -> list[dict[str, Any]]:
        return list(obj.overrides) if _sees_numbers(obj, context) else []

    @staticmethod
    def resolve_computed(obj: Any, context: Any) -> dict[str, Any] | None:
        if not _sees_numbers(obj, context):
            return None
        return obj.signed_computed or obj.computed


class LimitEventOut(Schema):
    id: int
    at: datetime
    order_id: int | None
    patient_id: int | None
    session_id: int | None
    protocol: str
    context: str
    quantity: str
    kind: str
    outcome: str
    value: float | None  # None while the order awaits its double check (numbers_hidden)
    bound: float | None
    reason_code: str
    reason_text: str
    numbers_hidden: bool
    by: str
    prescriber: str


class ReportIn(Schema):
    start: date
    end: date


class ProtocolRefOut(Schema):
    name: str
    version: str


class RateEnteredOut(Schema):
    value: float
    unit: str
    text: str


class DoseInputsOut(Schema):
    rate: RateEnteredOut
    weight_kg: float
    concentration_mg_per_ml: float
    previous_rate_mg_per_h: float | None
    minutes_since_last_change: float | None
    session_given_mg: float
    session_remaining_h: float | None
    series_given_mg: float | None


class WeightMeasurementOut(Schema):
    weight_kg: float
    measured_on: date
    height_cm: float | None
    sex: str | None


class DosingWeightOut(Schema):
    weight_kg: float
    basis: str
    actual_kg: float
    ideal_kg: float | None
    adjusted_kg: float | None
    measurement: WeightMeasurementOut
    age_days: int
    sources: list[str]


class DoseCheckOut(Schema):
    """The core's ``RateCheck.to_dict()`` with the dosing weight it was computed on."""

    protocol: ProtocolRefOut
    inputs: DoseInputsOut
    rate_mg_per_kg_per_h: float
    rate_mg_per_h: float
    pump_rate_ml_per_h: float
    concentration_mg_per_ml: float
    step_mg_per_h: float | None
    projected_session_total_mg: float | None
    projected_session_total_mg_per_kg: float | None
    projected_session_volume_ml: float | None
    projected_series_total_mg: float | None
    outcome: str
    limits: list[dict[str, Any]] = Field(description="each limit checked: bound, value, status")
    cross_checks: list[dict[str, Any]]
    dosing_weight: DosingWeightOut
    protocol_version_id: int


class LimitReportOut(Schema):
    """Limit events and overrides over a date range, counted several ways (each row: the
    key's fields and ``count``)."""

    start: date
    end: date
    total: int
    by_outcome: list[dict[str, Any]]
    by_protocol: list[dict[str, Any]]
    by_prescriber: list[dict[str, Any]]
    by_reason: list[dict[str, Any]]
    by_quantity: list[dict[str, Any]]
    events: list[LimitEventOut]
