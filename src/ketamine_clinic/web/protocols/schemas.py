from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class ProtocolVersionOut(Schema):
    id: int
    name: str
    version: int
    title: str
    status: str
    sha256: str
    published_at: datetime
    published_by: str | None = Field(description="username; null when shipped")
    change_note: str


class ProtocolOut(Schema):
    name: str
    title: str
    versions: list[ProtocolVersionOut]


class RowOut(Schema):
    path: str
    value: Any
    unit: str
    source: str
    note: str


class ProtocolVersionDetailOut(ProtocolVersionOut):
    rows: list[RowOut] = Field(description="every leaf of the protocol with unit and source")
    toml_text: str


class DiffOut(Schema):
    path: str
    change: str = Field(description="added, removed, changed or same")
    old: RowOut | None
    new: RowOut | None


class ReferenceOut(Schema):
    key: str
    citation: str
    urls: list[str]


class PublishIn(Schema):
    toml_text: str = Field(description="the whole protocol file (docs/protocol-format.md)")
    change_note: str = Field(min_length=1)


class ScreenIn(Schema):
    """The answers the registry does not hold. A condition id in neither list is unknown."""

    protocol_version_id: int | None = Field(
        None, description="a stored version; or give protocol (name) for its newest "
        "active version")
    protocol: str | None = None
    medications_complete: bool = Field(
        False, description="the registry's medication list was reviewed and is complete; "
        "otherwise medications are unknown")
    conditions: list[str] = Field(default_factory=list, description="condition ids present")
    conditions_absent: list[str] = Field(default_factory=list,
                                         description="condition ids asked and absent")
    budapest: dict[str, Any] | None = Field(
        None, description="disproportionate_pain, symptoms, signs, no_better_diagnosis "
        "(true, false or \"unknown\"; item ids from reference/budapest.toml)")


class OverrideIn(Schema):
    rule: str = Field(min_length=1)
    justification: str = Field(min_length=1)


class OverrideOut(Schema):
    id: int
    rule: str
    justification: str
    physician: str
    at: datetime


class ReasonOut(Schema):
    rule: str
    severity: str
    message: str
    source: str
    find_out: str = ""
    overridable: bool = False


class ProtocolRefOut(Schema):
    name: str
    version: int
    sha256: str = ""


class ScreeningOut(Schema):
    screening_id: int
    patient: int
    decision: str
    effective_decision: str = Field(description="after physicians' overrides")
    reasons: list[ReasonOut]
    protocol: ProtocolRefOut
    validity_days: int
    facts: dict[str, Any]
    facts_sha256: str
    screened_at: datetime
    screened_by: str
    valid_until: date
    current: bool = Field(description="allows treatment, not expired, facts unchanged")
    out_of_date: list[str]
    overrides: list[OverrideOut]
