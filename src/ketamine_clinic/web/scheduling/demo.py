"""Demo chairs, opening hours and bookings: each demo site gets chairs and weekday hours;
today's demo sessions get their visits, and the rest of their series is booked through the
booking service (taking the first free slot offered where the asked one does not fit)."""

from __future__ import annotations

from datetime import time, timedelta

from django.db import transaction

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.scheduling import selectors, services
from ketamine_clinic.web.scheduling.models import Chair, Visit
from ketamine_clinic.web.sessions.models import InfusionSession

CHAIRS = {"denver": 6, "boulder": 4}
WEEKDAY_HOURS = [(time(7, 0), time(19, 0))]
SATURDAY_HOURS = [(time(8, 0), time(14, 0))]


def demo_scheduling() -> int:
    """Set up chairs and hours once and book the demo series. Returns visits booked."""
    if Chair.objects.exists():
        return 0
    desk = User.objects.filter(username="desk.diaz").first()
    if desk is None:
        return 0
    actor = Actor(user=desk, client_address="demo")
    for site in Site.objects.all():
        for n in range(1, CHAIRS.get(site.code, 4) + 1):
            services.chair_add(actor=actor, site=site, code=str(n))
        week = {d: list(WEEKDAY_HOURS) for d in range(5)}
        week[5] = list(SATURDAY_HOURS)
        services.opening_hours_set(actor=actor, site=site, week=week)
    booked = 0
    for session in InfusionSession.objects.filter(visit__isnull=True).select_related(
            "order", "order__series", "site", "patient"):
        booked += _book_rest(actor, session)
    return booked


def _book_rest(actor: Actor, session: InfusionSession) -> int:
    """The session's own visit (already in the chair), then its series' other visits."""
    order = session.order
    length = selectors.visit_length(order)
    chair = Chair.objects.filter(site=session.site, code=session.chair).first() or \
        Chair.objects.filter(site=session.site).first()
    if chair is None:
        return 0
    with transaction.atomic():
        Visit.objects.create(
            patient=session.patient, site=session.site, series=session.series, order=order,
            chair=chair, number=session.visit_number, starts_at=session.scheduled_for,
            infusion_ends_at=session.scheduled_for + timedelta(minutes=length.infusion_min),
            ends_at=session.scheduled_for + length.total, infusion_min=length.infusion_min,
            recovery_min=length.recovery_min, protocol_version=order.protocol_version,
            status=Visit.Status.STARTED, session=session, booked_by=actor.require_user())
    try:
        first = session.scheduled_for.replace(hour=15, minute=0) + timedelta(days=1)
        requests = services.series_requests(order=order, first_start=first)
        proposals = services.visits_propose(order=order, requests=requests)
        picks = []
        for p in proposals:
            if p.ok and p.chair:
                picks.append(services.VisitRequest(p.number, p.start, p.chair))
            elif p.alternatives:
                alt = p.alternatives[0]
                picks.append(services.VisitRequest(p.number, alt.start, alt.chair))
        return len(services.visits_book(actor=actor, order=order, requests=picks))
    except UsageError:
        return 1
