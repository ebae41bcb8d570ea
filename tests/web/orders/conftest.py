"""Ana (Denver) with a current screening that allows treatment under the shipped
clinic-standard protocol, a 70 kg weight from yesterday, and helpers to write orders with
the services as the pages do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.web.audit.services import Actor

# An order that passes every limit of clinic-standard at 70 kg: 60 → 70 mg/h (1 mg/kg/h,
# the soft limit's bound, which is allowed), 15-minute steps, 4-hour sessions.
ORDER = {
    "vial_strength_mg_per_ml": "50",
    "bag": "500 mg in 500 mL",
    "start_rate": "60 mg/h",
    "titration_step": "10 mg/h",
    "max_rate": "70 mg/h",
    "min_step_interval_min": "15",
    "planned_duration_min": "240",
    "planned_sessions": "5",
    "spacing_days": "1",
}


@dataclass
class World:
    cast: Any
    pv: Any
    screening: Any
    weight: Any

    def actor(self, user: Any) -> Actor:
        return Actor(user=user, client_address="127.0.0.1")

    def write(self, user: Any = None, patient: Any = None, **changes: Any) -> Any:
        from ketamine_clinic.web.orders import services

        return services.order_write(actor=self.actor(user or self.cast.alice),
                                    patient=patient or self.cast.ana,
                                    protocol_version=self.pv, **{**ORDER, **changes})

    def signed(self, **changes: Any) -> Any:
        from ketamine_clinic.web.orders import services

        return services.order_sign(actor=self.actor(self.cast.alice),
                                   order=self.write(**changes))

    def active(self, **changes: Any) -> Any:
        from ketamine_clinic.web.orders import services

        order = self.signed(**changes)
        pump = order.signed_computed["start"]["pump_rate_ml_per_h"]
        conc = order.signed_computed["concentration_mg_per_ml"]
        return services.order_verify(actor=self.actor(self.cast.bob), order=order,
                                     concentration_mg_per_ml=str(conc),
                                     pump_rate_ml_per_h=str(pump))


def make_screening(cast: Any, patient: Any, pv: Any, *, decision: str = "eligible",
                   reasons: list[dict[str, Any]] | None = None,
                   valid_days: int = 30, at: Any = None) -> Any:
    from ketamine_clinic.web.protocols.models import Screening

    s = Screening.objects.create(
        patient=patient, protocol_version=pv, facts={}, facts_sha256="0" * 64,
        decision=decision, reasons=reasons or [], result={}, screened_by=cast.alice,
        valid_until=timezone.localdate() + timedelta(days=valid_days))
    if at is not None:
        Screening.objects.filter(pk=s.pk).update(screened_at=at)
        s.refresh_from_db()
    return s


def make_weight(cast: Any, patient: Any, kg: str = "70", days_ago: int = 1) -> Any:
    from ketamine_clinic.web.patients import services

    return services.measurement_record(
        actor=Actor(user=cast.bob), patient=patient, kind="weight_kg", value_number=kg,
        measured_at=timezone.now() - timedelta(days=days_ago))


@pytest.fixture
def world(cast: Any) -> World:
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    screening = make_screening(cast, cast.ana, pv)
    weight = make_weight(cast, cast.ana)
    return World(cast, pv, screening, weight)


@dataclass
class Orders:
    """One order at each open step: a draft, a signed one and an active one."""

    w: World
    draft: Any
    signed: Any
    active: Any


@pytest.fixture
def orders(world: World) -> Orders:
    return Orders(world, world.write(), world.signed(), world.active())
