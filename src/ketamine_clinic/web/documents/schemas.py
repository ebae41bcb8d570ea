from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from ketamine_clinic.web.patients.schemas import ErrorOut

__all__ = ["ConsentDocumentOut", "ConsentIn", "ConsentOut", "DischargeSummaryOut",
           "ErrorOut", "WithdrawIn"]


class ConsentDocumentOut(Schema):
    protocol_version: int
    title: str
    text: str = Field(description="the document in the documents markup (# headings, - items)")
    sha256: str


class ConsentIn(Schema):
    protocol_version: int
    document_sha256: str = Field(min_length=64, max_length=64,
                                 description="sha256 of the text shown to the patient")
    method: Literal["signature", "paper"]
    explained_by: str = Field(description="username of the clinician who explained it")
    signed_at: datetime = Field(description="with a UTC offset")
    signature_strokes: str = Field(
        default="", description='JSON strokes from a signature pad: [[[x, y], ...], ...]')
    pad_width: int = 0
    pad_height: int = 0
    paper_attested: bool = False
    paper_reference: str = Field(default="", max_length=200)


class ConsentOut(Schema):
    id: int
    patient: int
    protocol_version: int
    protocol: str
    method: str
    document_sha256: str
    explained_by: str
    signed_at: datetime
    recorded_at: datetime
    paper_reference: str
    has_signature: bool
    in_force: bool
    withdrawn_at: datetime | None = None
    withdrawal_reason: str = ""


class WithdrawIn(Schema):
    reason: str = Field(min_length=1)
    withdrawn_at: datetime | None = None


class MedicineOut(Schema):
    kind: str
    drug: str
    dose: float
    unit: str
    route: str
    at: datetime


class DischargeSummaryOut(Schema):
    session: int
    patient: int
    drug: str
    infusion_started_at: datetime | None
    infusion_ended_at: datetime | None
    ketamine_total_mg: float | None
    ketamine_total_mg_exact: str | None
    medicines: list[MedicineOut]
    no_driving_until: datetime | None
    no_driving_hours: int | None
    no_driving_source: str | None
    next_session: int | None
    next_session_at: datetime | None
    problems: list[str]
