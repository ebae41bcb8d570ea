"""Builders for the documents tests (web and browser): protocol versions and sessions.

Sessions are built directly from the data model (TimelineEntry rows as the sessions area's
payload contract defines them), so these tests read sessions the way the documents area
does, independent of how the sessions pages write them.
"""

from __future__ import annotations

import hashlib
import tomllib
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

DENVER = ZoneInfo("America/Denver")

PROTOCOL_TOML = """
format = 1
name = "{name}"
version = {version}
title = "Low-dose outpatient ketamine (test)"
status = "active"

[drug]
form = {{ value = "racemic_ketamine", source = "S9" }}
bag_concentrations_mg_per_ml = {{ values = [1], unit = "mg/mL", source = "clinic policy (test)" }}
vial_strengths_mg_per_ml = {{ values = [10], unit = "mg/mL", source = "clinic policy (test)" }}

[[premedication]]
drug = "midazolam"
dose = {{ value = 2, unit = "mg", source = "S9" }}
route = "IV"
timing = "before the infusion"

[dosing]
basis = {{ value = "fixed_mg_per_h", source = "S9" }}
start_rate = {{ value = 20, unit = "mg/h", source = "S10" }}
max_rate = {{ value = 40, unit = "mg/h", source = "S13" }}
usual_rate = {{ value = 20, unit = "mg/h", source = "S10" }}
titration_step = {{ value = 5, unit = "mg/h", source = "clinic policy (test)" }}
min_step_interval_min = {{ value = 30, unit = "min", source = "clinic policy (test)" }}
planned_duration_min = {{ value = 240, unit = "min", source = "S9" }}
weight_rule = {{ value = "actual", source = "clinic policy (test)" }}
max_weight_age_days = {{ value = 30, unit = "d", source = "clinic policy (test)" }}

[series]
sessions = {{ value = 5, unit = "sessions", source = "S9" }}
spacing_days = {{ value = 1, unit = "d", source = "S9" }}

[[discharge_instruction]]
text = "Drink plenty of fluids today."
source = "clinic policy (test)"

[[discharge_instruction]]
text = "Take your usual medicines unless told otherwise."
source = "clinic policy (test)"
"""


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


def install_protocol_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the test protocol with the core's loader when it accepts it.

    While ``clinical/protocol.py`` is missing or its format still moves (it was being
    written alongside this area), the test TOML is read as plain attributes in the shape
    of the core's ``Protocol`` (``.value`` on quantities and choices), which is what
    ``protocol_facts.facts_from_protocol`` reads.
    """
    from ketamine_clinic.errors import UsageError

    try:
        from ketamine_clinic.clinical.protocol import load_protocol_text

        load_protocol_text(PROTOCOL_TOML.format(name="probe", version=1), "test")
    except (ImportError, UsageError):
        import sys

        import ketamine_clinic.clinical as clinical_pkg

        fallback = SimpleNamespace(
            load_protocol_text=lambda text, origin: _namespace(tomllib.loads(text)))
        monkeypatch.setitem(sys.modules, "ketamine_clinic.clinical.protocol", fallback)
        monkeypatch.setattr(clinical_pkg, "protocol", fallback, raising=False)


def make_protocol_version(name: str = "test-low-dose", version: int = 1) -> Any:
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    text = PROTOCOL_TOML.format(name=name, version=version)
    return ProtocolVersion.objects.create(
        name=name, version=version, title="Low-dose outpatient ketamine (test)",
        toml_text=text, sha256=hashlib.sha256(text.encode()).hexdigest())


def at(hour: int, minute: int = 0, day: int = 3) -> datetime:
    """A clinic-local time on 3 March 2025 (before the US daylight-saving change)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=DENVER)


def make_session(cast: Any, pv: Any, patient: Any = None, *, visit: int = 1,
                 scheduled_for: datetime | None = None, series: Any = None) -> Any:
    from ketamine_clinic.web.orders.models import Order, Series
    from ketamine_clinic.web.patients.models import Measurement
    from ketamine_clinic.web.protocols.models import Screening
    from ketamine_clinic.web.sessions.models import InfusionSession

    patient = patient or cast.ana
    site = patient.site
    if series is None:
        weight = Measurement.objects.create(patient=patient, kind="weight_kg",
                                            value_number=Decimal("70.00"),
                                            measured_at=at(8, 0), recorded_by=cast.bob)
        screening = Screening.objects.create(
            patient=patient, protocol_version=pv, facts={}, facts_sha256="0" * 64,
            decision="eligible", reasons=[], result={}, screened_by=cast.alice,
            valid_until=at(8).date() + timedelta(days=90))
        series = Series.objects.create(patient=patient, protocol_version=pv,
                                       screening=screening, planned_sessions=5,
                                       spacing_days=1, created_by=cast.alice)
        Order.objects.create(
            series=series, patient=patient, protocol_version=pv, status="active",
            drug="racemic", vial_strength_mg_per_ml=Decimal("10"),
            bag_drug_mg=Decimal("250"), bag_volume_ml=Decimal("250"),
            dosing_basis="mg/h", dosing_weight_kg=Decimal("70"), weight_measurement=weight,
            weight_rule="actual", start_rate_text="20 mg/h", titration_step_text="5 mg/h",
            max_rate_text="40 mg/h", min_step_interval_min=30, planned_duration_min=240,
            computed={}, written_by=cast.alice)
    order = series.orders.first()
    return InfusionSession.objects.create(
        order=order, series=series, patient=patient, site=site, visit_number=visit,
        scheduled_for=scheduled_for or at(9, 0), created_by=cast.bob, state="scheduled")


def add_entry(session: Any, kind: str, when: datetime, payload: dict[str, Any] | None = None,
              *, by: Any, corrects: Any = None, reason: str = "") -> Any:
    from ketamine_clinic.web.sessions.models import TimelineEntry

    return TimelineEntry.objects.create(session=session, kind=kind, occurred_at=when,
                                        payload=payload or {}, recorded_by=by,
                                        corrects=corrects, correction_reason=reason)


def rate(mg_per_h: float) -> dict[str, Any]:
    return {"rate_mg_per_h": mg_per_h, "pump_rate_ml_per_h": mg_per_h}


def build_finished_session(cast: Any, pv1: Any) -> Any:
    """Ana's first infusion: midazolam at 9:20, ketamine 20 mg/h from 9:30, 30 mg/h
    from 10:30, stopped at 1:30 PM; her second infusion is booked the next morning.

    Dose by hand: 1 h × 20 mg/h + 3 h × 30 mg/h = 110 mg.
    """
    bob = cast.bob
    session = make_session(cast, pv1)
    session.state = "discharged"
    session.save()
    add_entry(session, "premedication", at(9, 20),
              {"drug": "midazolam", "dose": 2, "unit": "mg", "route": "IV"}, by=bob)
    add_entry(session, "infusion_start", at(9, 30), rate(20), by=bob)
    add_entry(session, "rate_change", at(10, 30), rate(30), by=bob)
    add_entry(session, "stop", at(13, 30), {"reason": "planned end"}, by=bob)
    make_session(cast, pv1, visit=2, scheduled_for=at(9, 0, day=4), series=session.series)
    return session

