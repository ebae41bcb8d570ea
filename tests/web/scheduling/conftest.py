"""A Denver site with two chairs open 07:00–19:00 every day; Ana and Bea each with a
verified order (five visits a day apart) and a consent; helpers to book as the desk does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.web.sessions.conftest import make_consent, make_order


@dataclass
class Sched:
    cast: Any
    pv: Any
    ana_order: Any
    bea: Any
    bea_order: Any
    tz: ZoneInfo
    day: date  # three days from now, in Denver

    def actor(self, user: Any = None) -> Any:
        from ketamine_clinic.web.audit.services import Actor

        return Actor(user=user or self.cast.carol, client_address="127.0.0.1")

    def at(self, hour: int, minute: int = 0, days: int = 0) -> datetime:
        return datetime.combine(self.day + timedelta(days=days), time(hour, minute), self.tz)

    def book(self, order: Any, *starts: tuple[int, datetime, str | None]) -> list[Any]:
        from ketamine_clinic.web.scheduling import services

        return services.visits_book(actor=self.actor(), order=order, requests=[
            services.VisitRequest(n, s, c) for n, s, c in starts])

    def series(self, order: Any, first: datetime, chair: str | None = None,
               visits: int | None = None) -> list[Any]:
        from ketamine_clinic.web.scheduling import services

        return services.visits_book(actor=self.actor(), order=order,
                                    requests=services.series_requests(
                                        order=order, first_start=first, chair=chair,
                                        visits=visits))

    def length_min(self, order: Any) -> int:
        """Infusion plus observation, from the order and its protocol (not restated)."""
        from ketamine_clinic.web.protocols.models import parsed_protocol

        protocol = parsed_protocol(order.protocol_version)
        return int(order.planned_duration_min) + int(
            protocol.recovery.min_observation_min.value)


def make_site_calendar(cast: Any, site: Any, chairs: int = 2,
                       hours: tuple[time, time] = (time(7), time(19))) -> None:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.scheduling import services

    admin = Actor(user=cast.dave)
    for n in range(1, chairs + 1):
        services.chair_add(actor=admin, site=site, code=str(n))
    services.opening_hours_set(actor=admin, site=site, week={d: [hours] for d in range(7)})


@pytest.fixture
def sched(cast: Any) -> Sched:
    return make_sched(cast)


def make_sched(cast: Any) -> Sched:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    ana_order = make_order(cast, cast.ana, pv)
    make_consent(cast, cast.ana, pv)
    bea = patients.patient_register(
        actor=Actor(user=cast.carol), site=cast.denver, mrn="DEN-2", given_name="Bea",
        family_name="Lund", date_of_birth=date.today() - timedelta(days=35 * 365),
        sex_at_birth="male", escort_name="Kim Lund", email="bea@example.org")
    bea_order = make_order(cast, bea, pv)
    make_consent(cast, bea, pv)
    make_site_calendar(cast, cast.denver)
    tz = ZoneInfo(cast.denver.time_zone)
    day = timezone.localtime(timezone.now(), tz).date() + timedelta(days=3)
    return Sched(cast, pv, ana_order, bea, bea_order, tz, day)


def make_clinic(cast: Any, *, started_hours_ago: float = 5) -> Any:
    """Ana's session at Denver opened without a booking (as tests/web/sessions builds it),
    for the areas that read sessions: billing, monitor devices."""
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
    from ketamine_clinic.web.sessions import services
    from tests.web.sessions.conftest import Clinic

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    order = make_order(cast, cast.ana, pv)
    consent = make_consent(cast, cast.ana, pv)
    session = services.session_schedule(
        actor=Actor(user=cast.bob), order=order,
        scheduled_for=timezone.now() - timedelta(hours=started_hours_ago), chair="3")
    return Clinic(cast, pv, order.series, order, session, consent)
