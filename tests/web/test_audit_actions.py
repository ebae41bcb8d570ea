"""Audit actions are one enumeration: audit_record refuses any other string, and every
action a service builds from a kind or an event has its member."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.clinical.stock import DiscrepancyEvent
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.sessions.schemas import KINDS


def test_a_free_text_action_is_refused(cast: Any) -> None:
    with pytest.raises(ValueError, match="not a valid AuditAction"):
        audit_record(actor=Actor(user=cast.bob), action="patient.looked_at")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    *(f"session.{kind}" for kind in KINDS),
    *(f"stock.discrepancy_{event.value}" for event in DiscrepancyEvent),
    "order.completed", "order.discontinued",
    *(f"{m}.entered_in_error" for m in ("measurement", "diagnosis", "allergy", "medication")),
])
def test_every_built_action_has_its_member(value: str) -> None:
    assert AuditAction(value) == value
