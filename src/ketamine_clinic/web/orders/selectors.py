"""Reads for series, orders and limit events, always scoped to the user's sites."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.orders.models import LimitEvent, Order, Series
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening
from ketamine_clinic.web.protocols.selectors import screening_current


def treatable_protocol_versions(patient: Patient) -> list[tuple[ProtocolVersion, Screening]]:
    """Protocol versions under which a new series may be ordered for the patient: those with
    a current screening (``protocols.selectors.screening_current``), with that screening."""
    out = []
    for pv in ProtocolVersion.objects.filter(screenings__patient=patient).distinct():
        screening = screening_current(patient, pv)
        if screening is not None:
            out.append((pv, screening))
    return sorted(out, key=lambda item: (item[0].name, -item[0].version))


def orders_visible_to(user: User) -> QuerySet[Order]:
    return (Order.objects.filter(patient__site__in=user.sites.all())
            .select_related("patient", "patient__site", "protocol_version", "series",
                            "written_by", "signed_by", "verified_by"))


def order_get_for(user: User, order_id: int, actor: Actor, *, read: AuditAction) -> Order:
    """The order if the user may see its patient, the read recorded as ``read`` (e.g.
    ``ORDER_VIEW`` or ``API_ORDER_VIEW``); otherwise not found, audited."""
    order = order_get_unaudited(user, order_id, actor)
    order_read_record(actor, order, read)
    return order


def order_get_unaudited(user: User, order_id: int, actor: Actor) -> Order:
    """The order as ``order_get_for`` finds it, with no read entry: for a write (its service
    records the entry) and for a page that records its read only on some paths (it calls
    ``order_read_record`` itself). A refused access is audited."""
    order = orders_visible_to(user).select_related("weight_measurement", "replaces").filter(
        pk=order_id).first()
    if order is None:
        audit_record(actor=actor, action=AuditAction.ORDER_ACCESS_DENIED, object_type="order",
                     object_id=order_id)
        raise Http404("No such order")
    return order


def order_read_record(actor: Actor, order: Order, action: AuditAction) -> None:
    """Record a read of the order, filed under its patient's site."""
    audit_read(actor=actor, action=action, object_type="order", object_id=order.pk,
               site_code=order.patient.site.code, patient_id=order.patient_id)


def orders_awaiting(user: User) -> dict[str, list[Order]]:
    """Drafts awaiting a signature, signed orders awaiting the second check, active orders."""
    qs = orders_visible_to(user).filter(
        status__in=[Order.Status.DRAFT, Order.Status.SIGNED, Order.Status.ACTIVE])
    groups: dict[str, list[Order]] = {"draft": [], "signed": [], "active": []}
    for order in qs.order_by("written_at", "id"):
        groups[order.status].append(order)
    return groups


def patient_series(patient: Patient) -> list[Series]:
    return list(patient.series.select_related("protocol_version").prefetch_related(
        "orders", "orders__written_by", "orders__signed_by").order_by("-created_at", "-id"))


def can_see_numbers(user: User, order: Order) -> bool:
    """Until the second check is done, only the physicians who wrote and signed an order see
    its concentration and rates, so that the check stays independent."""
    if order.status != Order.Status.SIGNED:
        return True
    return user.pk in (order.written_by_id, order.signed_by_id)


# --------------------------------------------------------------------------- quality report


def limit_events_visible_to(user: User) -> QuerySet[LimitEvent]:
    sites = user.sites.all()
    return (LimitEvent.objects
            .filter(Q(order__patient__site__in=sites) | Q(patient__site__in=sites))
            .select_related("protocol_version", "by", "order", "order__signed_by",
                            "order__written_by"))


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class LimitReport:
    """Limit events over a date range, counted the ways the medical director reviews them."""

    start: date
    end: date
    events: list[LimitEvent]
    by_protocol: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_prescriber: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_quantity: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)

    def table(self, counter: Counter[Any]) -> list[tuple[Any, int]]:
        return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))

    # Lists for templates (a template's lookup would read a Counter key, not a method).
    @property
    def outcome_rows(self) -> list[tuple[str, int]]:
        return self.table(self.by_outcome)

    @property
    def protocol_rows(self) -> list[tuple[tuple[str, str], int]]:
        return self.table(self.by_protocol)

    @property
    def prescriber_rows(self) -> list[tuple[tuple[str, str], int]]:
        return self.table(self.by_prescriber)

    @property
    def reason_rows(self) -> list[tuple[str, int]]:
        return self.table(self.by_reason)

    def to_dict(self) -> dict[str, Any]:
        def rows(counter: Counter[Any], *names: str) -> list[dict[str, Any]]:
            out = []
            for key, count in self.table(counter):
                values = key if isinstance(key, tuple) else (key,)
                out.append({**dict(zip(names, values, strict=True)), "count": count})
            return out

        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "total": len(self.events),
            "by_outcome": rows(self.by_outcome, "outcome"),
            "by_protocol": rows(self.by_protocol, "protocol", "outcome"),
            "by_prescriber": rows(self.by_prescriber, "prescriber", "outcome"),
            "by_reason": rows(self.by_reason, "reason_code"),
            "by_quantity": rows(self.by_quantity, "quantity", "outcome"),
        }


def prescriber_of(event: LimitEvent) -> str:
    """The physician responsible for the dose: the order's signer (or writer), else the
    person who entered it (a blocked write has no order)."""
    order = event.order
    user = None
    if order is not None:
        user = order.signed_by or order.written_by
    user = user or event.by
    return user.get_username()


def limit_report(user: User, start: date, end: date) -> LimitReport:
    """Every limit event at the user's sites from ``start`` to ``end`` (inclusive)."""
    events = list(limit_events_visible_to(user)
                  .filter(at__gte=_day_start(start), at__lt=_day_start(end + timedelta(days=1)))
                  .order_by("-at", "-id"))
    report = LimitReport(start, end, events)
    for ev in events:
        protocol = f"{ev.protocol_version.name} v{ev.protocol_version.version}"
        report.by_outcome[ev.outcome] += 1
        report.by_protocol[(protocol, ev.outcome)] += 1
        report.by_prescriber[(prescriber_of(ev), ev.outcome)] += 1
        report.by_quantity[(ev.quantity, ev.outcome)] += 1
        if ev.outcome == "overridden":
            report.by_reason[ev.reason_code or "(none)"] += 1
    return report
