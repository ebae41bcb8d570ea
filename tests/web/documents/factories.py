"""Builders for the documents tests (web and browser): protocol versions and sessions.

Sessions are built directly from the data model (TimelineEntry rows as the sessions area's
payload contract defines them), so these tests read sessions the way the documents area
does, independent of how the sessions pages write them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

DENVER = ZoneInfo("America/Denver")


def protocol_text(name: str = "test-clinic", version: int = 1) -> str:
    """The shipped clinic-standard protocol under another name and version number."""
    from ketamine_clinic.web.protocols.services import shipped_protocol_texts

    text = dict(shipped_protocol_texts())["clinic-standard.toml"]
    text = re.sub(r'(?m)^name = "clinic-standard"$', f'name = "{name}"', text)
    return re.sub(r"(?m)^version = \d+$", f"version = {version}", text)


def make_protocol_version(name: str = "test-clinic", version: int = 1) -> Any:
    """A stored protocol version (the clinic-standard text, renamed), as publishing makes."""
    from ketamine_clinic.clinical.protocol import load_protocol_text
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    text = protocol_text(name, version)
    protocol = load_protocol_text(text, f"test:{name}")
    return ProtocolVersion.objects.create(
        name=name, version=version, title=protocol.title, toml_text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest())


def loaded(pv: Any) -> Any:
    """The protocol core's reading of a stored version (expected values come from here)."""
    from ketamine_clinic.clinical.protocol import load_protocol_text

    return load_protocol_text(pv.toml_text, "test")


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
            drug="racemic_ketamine", vial_strength_mg_per_ml=Decimal("10"),
            bag_drug_mg=Decimal("250"), bag_volume_ml=Decimal("250"),
            dosing_basis="fixed_mg_per_h", dosing_weight_kg=Decimal("70"),
            weight_measurement=weight, weight_rule="actual", start_rate_text="20 mg/h",
            titration_step_text="5 mg/h", max_rate_text="40 mg/h", min_step_interval_min=30,
            planned_duration_min=240, computed={}, written_by=cast.alice,
            signed_at=at(7, 0), signed_by=cast.alice, verified_at=at(7, 30),
            verified_by=cast.bob)
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

