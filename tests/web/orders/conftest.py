"""Ana (Denver) screened through the protocols services under the shipped clinic-standard
protocol (her registry holds a 70 kg weight from yesterday, a negative pregnancy test and a
CRPS diagnosis; every clinical question answered), and helpers to write orders with the
services as the pages do."""

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

    def screen(self, patient: Any = None) -> Any:
        return screen(self.cast, patient or self.cast.ana, self.pv)

    def write(self, user: Any = None, patient: Any = None, *, screen_first: bool = True,
              **changes: Any) -> Any:
        """Write an order, which starts a new series. A new series needs a screening no
        series has used: with ``screen_first``, when the patient's newest screening has
        already started a series, the patient is screened again first (as the nurse does
        before a new course)."""
        from ketamine_clinic.web.orders import services

        patient = patient or self.cast.ana
        if screen_first and changes.get("replaces") is None and screening_used(patient,
                                                                                self.pv):
            self.screen(patient)
        return services.order_write(actor=self.actor(user or self.cast.alice),
                                    patient=patient, protocol_version=self.pv,
                                    **{**ORDER, **changes})

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


def screen(cast: Any, patient: Any, pv: Any, **answers: Any) -> Any:
    """Screen ``patient`` through the protocols services, as the nurse does: the registry's
    facts plus the clinician's answers (by default every condition asked and absent, the
    medication list confirmed, the Budapest criteria met)."""
    from ketamine_clinic.web.protocols.services import screening_record
    from tests.web.protocols.conftest import answers_all_absent

    return screening_record(actor=Actor(user=cast.bob), patient=patient, protocol_version=pv,
                            answers=answers_all_absent(**answers))


def screening_used(patient: Any, pv: Any) -> bool:
    """Whether the patient's newest screening under ``pv`` has started a series."""
    from ketamine_clinic.web.protocols.selectors import screening_latest

    latest = screening_latest(patient, pv)
    return latest is not None and latest.series.exists()


def make_ready(cast: Any, patient: Any, kg: str = "70") -> Any:
    """What screening reads that registration does not record: a weight (returned), a
    negative pregnancy test and a coded CRPS diagnosis."""
    from ketamine_clinic.web.patients import services

    yesterday = timezone.now() - timedelta(days=1)
    services.measurement_record(actor=Actor(user=cast.bob), patient=patient,
                                kind="pregnancy_status", value_code="not_pregnant",
                                measured_at=yesterday)
    services.diagnosis_record(actor=Actor(user=cast.alice), patient=patient,
                              system="icd10cm", code="G90.512",
                              diagnosed_on=timezone.localdate() - timedelta(days=400))
    return make_weight(cast, patient, kg)


def make_weight(cast: Any, patient: Any, kg: str = "70", days_ago: int = 1) -> Any:
    from ketamine_clinic.web.patients import services

    return services.measurement_record(
        actor=Actor(user=cast.bob), patient=patient, kind="weight_kg", value_number=kg,
        measured_at=timezone.now() - timedelta(days=days_ago))


@pytest.fixture
def world(cast: Any) -> World:
    return make_world(cast)


def make_world(cast: Any) -> World:
    """What ``world`` builds, for a world built outside a test."""
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    weight = make_ready(cast, cast.ana)
    screening = screen(cast, cast.ana, pv)
    return World(cast, pv, screening, weight)


@dataclass
class Orders:
    """One order at each open step: a draft, a signed one and an active one (three series,
    each screened for), and a fresh screening left for a new series."""

    w: World
    draft: Any
    signed: Any
    active: Any


@pytest.fixture
def orders(world: World) -> Orders:
    return make_orders(world)


def make_orders(world: World) -> Orders:
    """What ``orders`` builds, for a world built outside a test."""
    built = Orders(world, world.write(), world.signed(), world.active())
    world.screen()
    return built
