from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field


class PatientIn(Schema):
    site: str = Field(description="site code")
    mrn: str = Field(min_length=1, max_length=32)
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    sex_at_birth: Literal["female", "male", "intersex", "unknown"]
    phone: str = ""
    email: str = ""
    address: str = ""
    escort_name: str = ""
    escort_phone: str = ""
    escort_relationship: str = ""


class PatientAmendIn(Schema):
    reason: str = Field(min_length=1)
    mrn: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    sex_at_birth: Literal["female", "male", "intersex", "unknown"] | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    escort_name: str | None = None
    escort_phone: str | None = None
    escort_relationship: str | None = None


class PatientOut(Schema):
    id: int
    site: str
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex_at_birth: str
    phone: str
    email: str
    address: str
    escort_name: str
    escort_phone: str
    escort_relationship: str

    @staticmethod
    def resolve_site(obj: Any) -> str:
        return str(obj.site.code)


class DiagnosisIn(Schema):
    system: Literal["icd10cm", "snomed"] = "icd10cm"
    code: str
    diagnosed_on: date
    note: str = ""


class _RecordOut(Schema):
    """What every retractable record shows: who recorded it, and whether it was entered in
    error."""

    @staticmethod
    def resolve_recorded_by(obj: Any) -> str:
        return str(obj.recorded_by.username)

    @staticmethod
    def resolve_entered_in_error(obj: Any) -> bool:
        return bool(obj.in_error)


class DiagnosisOut(_RecordOut):
    id: int
    system: str
    code: str
    display: str
    group: str
    laterality: str
    limb: str
    diagnosed_on: date
    recorded_by: str
    recorded_at: datetime
    entered_in_error: bool


class MeasurementIn(Schema):
    kind: Literal["weight_kg", "height_cm", "pregnancy_status", "ecg", "liver_function_tests"]
    value_number: Decimal | None = None
    value_code: str = ""
    measured_at: datetime
    note: str = ""
    confirmed: bool = False


class MeasurementOut(_RecordOut):
    id: int
    kind: str
    value_number: Decimal | None
    value_code: str
    measured_at: datetime
    recorded_by: str
    recorded_at: datetime
    entered_in_error: bool
    entered_in_error_reason: str


class InErrorIn(Schema):
    reason: str = Field(min_length=1)


class ErrorOut(Schema):
    errors: list[dict[str, str]]
