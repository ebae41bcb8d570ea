from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ninja import Schema
from pydantic import Field


class FollowUpOut(Schema):
    id: int
    patient_id: int
    series_id: int
    session_id: int | None
    point: str
    due_on: date
    overdue: bool


class AnswersIn(Schema):
    pain_average_nrs: int = Field(description="average pain, last 24 h, 0-10 NRS")
    pain_worst_nrs: int = Field(description="worst pain, last 24 h, 0-10 NRS")
    global_impression: int | None = Field(default=None, description="PGIC, 1-7")
    opioid_mme_per_day: Decimal | None = Field(default=None, description="oral MME per day")
    answered_at: datetime | None = Field(default=None, description="with a UTC offset")
    corrects: int | None = Field(default=None, description="id of the answer corrected")
    correction_reason: str = ""


class ResponseOut(Schema):
    id: int
    follow_up_id: int
    answered_at: datetime
    pain_average_nrs: int
    pain_worst_nrs: int
    global_impression: int | None
    opioid_mme_per_day: Decimal | None
    corrects_id: int | None
    via_patient_link: bool


class ReportOut(Schema):
    """The outcome report with named keys (``ReportData.to_dict()``)."""

    report: dict[str, Any]


class TrajectoryOut(Schema):
    session_pain: list[dict[str, Any]]
    follow_up_pain: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
