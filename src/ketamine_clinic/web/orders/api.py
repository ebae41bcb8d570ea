"""Orders under /api/v1/: a dose check, the order workflow, and limit events."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.responses import Status

from ketamine_clinic.clinical.dosing import (
    WeightMeasurement,
    check_dose,
    dosing_weight,
)
from ketamine_clinic.clinical.units import (
    parse_bag,
    parse_duration_h,
    parse_rate,
    parse_weight_kg,
    positive,
)
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import Paging, found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.orders import selectors, services
from ketamine_clinic.web.orders.dosing import rules_of
from ketamine_clinic.web.orders.models import LimitEvent, Order
from ketamine_clinic.web.orders.schemas import (
    DoseCheckIn,
    DoseCheckOut,
    LimitEventOut,
    LimitReportOut,
    OrderChangeIn,
    OrderIn,
    OrderOut,
    ReasonIn,
    SignIn,
    VerifyIn,
)
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.patients.selectors import patient_get_unaudited
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.protocols.services import protocol_current

router = Router(tags=["orders"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
          422: ErrorOut}


def _event_out(ev: LimitEvent, user: Any) -> dict[str, Any]:
    # An event of an order awaiting its double check carries the ordered numbers: hidden
    # from everyone but the prescribers until the check is done (value, bound, reason).
    visible = ev.order is None or selectors.can_see_numbers(user, ev.order)
    return {
        "id": ev.pk, "at": ev.at, "order_id": ev.order_id,
        "patient_id": ev.order.patient_id if ev.order else ev.patient_id,
        "session_id": ev.session_id_value,
        "protocol": f"{ev.protocol_version.name} v{ev.protocol_version.version}",
        "context": ev.context, "quantity": ev.quantity, "kind": ev.kind,
        "outcome": ev.outcome, "value": ev.value if visible else None,
        "bound": ev.bound if visible else None,
        "reason_code": ev.reason_code, "reason_text": ev.reason_text if visible else "",
        "numbers_hidden": not visible,
        "by": ev.by.get_username(), "prescriber": selectors.prescriber_of(ev),
    }


def _read(request: HttpRequest, order_id: int, action: AuditAction) -> Order:
    """The order, the read recorded as ``action``."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.order_get_for(user, order_id, Actor.from_request(request),
                                                 read=action), "order")


def _order(request: HttpRequest, order_id: int) -> Order:
    """The order for a write, whose service records the entry."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.order_get_unaudited(user, order_id,
                                                       Actor.from_request(request)), "order")


def _actor(request: HttpRequest, order: Order) -> Actor:
    return Actor.from_request(request, order.patient.site.code)


# --------------------------------------------------------------------------- dose check


@router.post("/dose-check", response={200: DoseCheckOut, **ERRORS})
def dose_check(request: HttpRequest, payload: DoseCheckIn) -> Any:
    """One rate in every form, checked against a stored protocol version's limits (no
    patient data; nothing stored). Same result as ``ketamine-clinic dose --json``."""
    require(request, Capability.VERIFY_ORDER)
    if payload.protocol_version_id is not None:
        pv = ProtocolVersion.objects.filter(pk=payload.protocol_version_id).first()
        if pv is None:
            raise UsageError("protocol_version_id", "no such protocol version")
    elif payload.protocol:
        pv = protocol_current(payload.protocol)
    else:
        raise UsageError("protocol", "give a protocol name or a protocol_version_id")
    rules = rules_of(pv)
    today = timezone.localdate()
    height = positive(payload.height_cm, field="height_cm") if payload.height_cm else None
    weight = dosing_weight(
        WeightMeasurement(parse_weight_kg(payload.weight_kg, field="weight_kg"), today,
                          height_cm=height, sex=payload.sex or None),
        basis=rules.weight_basis, max_age_days=rules.max_weight_age_days, on=today,
        obesity_threshold_ratio=rules.obesity_threshold_ratio)
    duration_h: Fraction | None
    if payload.duration:
        duration_h = parse_duration_h(payload.duration, field="duration")
    else:
        duration_h = None if rules.default_plan is None else rules.default_plan.planned_duration_h
    result = check_dose(rules=rules, weight_kg=weight.weight_kg,
                        bag=parse_bag(payload.bag, field="bag"),
                        rate=parse_rate(payload.rate, field="rate"), duration_h=duration_h)
    return {**result.to_dict(), "dosing_weight": weight.to_dict(),
            "protocol_version_id": pv.pk}


# --------------------------------------------------------------------------- orders


@router.get("/orders", response={200: list[OrderOut], **ERRORS})
@paginate(Paging, pass_parameter="page")
def list_orders(request: HttpRequest, status: str = "", patient_id: int | None = None,
                **kwargs: Any) -> Any:
    page: Paging.Input = kwargs["page"]
    user = require(request, Capability.VIEW_PATIENTS)
    qs = selectors.orders_visible_to(user).order_by("-written_at", "-id")
    if status:
        if status not in Order.Status.values:
            raise UsageError("status", f"must be one of {', '.join(Order.Status.values)}")
        qs = qs.filter(status=status)
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_ORDER_LIST,
                 detail={"status": status, "patient": patient_id, "offset": page.offset,
                         "limit": page.limit})
    return qs


@router.post("/patients/{patient_id}/orders", response={201: OrderOut, **ERRORS})
def write_order(request: HttpRequest, patient_id: int, payload: OrderIn) -> Any:
    user = require(request, Capability.WRITE_ORDER)
    patient = found(lambda: patient_get_unaudited(user, patient_id, Actor.from_request(request)),
                    "patient")
    data = payload.dict()
    pv = ProtocolVersion.objects.filter(pk=data.pop("protocol_version_id")).first()
    if pv is None:
        raise UsageError("protocol_version_id", "no such protocol version")
    order = services.order_write(actor=Actor.from_request(request, patient.site.code),
                                 patient=patient, protocol_version=pv, **data)
    return Status(201, order)


@router.get("/orders/{order_id}", response={200: OrderOut, **ERRORS})
def get_order(request: HttpRequest, order_id: int) -> Any:
    return _read(request, order_id, AuditAction.API_ORDER_VIEW)


@router.post("/orders/{order_id}/sign", response={200: OrderOut, **ERRORS})
def sign_order(request: HttpRequest, order_id: int, payload: SignIn) -> Any:
    require(request, Capability.SIGN_ORDER)
    order = _order(request, order_id)
    data = payload.dict()
    signed = services.order_sign(actor=_actor(request, order), order=order, **data)
    return signed


@router.post("/orders/{order_id}/verify", response={200: OrderOut, **ERRORS})
def verify_order(request: HttpRequest, order_id: int, payload: VerifyIn) -> Any:
    require(request, Capability.VERIFY_ORDER)
    order = _order(request, order_id)
    done = services.order_verify(actor=_actor(request, order), order=order, **payload.dict())
    return done


@router.post("/orders/{order_id}/discontinue", response={200: OrderOut, **ERRORS})
def discontinue_order(request: HttpRequest, order_id: int, payload: ReasonIn) -> Any:
    require(request, Capability.DISCONTINUE_ORDER)
    order = _order(request, order_id)
    done = services.order_discontinue(actor=_actor(request, order), order=order,
                                      reason=payload.reason)
    return done


@router.post("/orders/{order_id}/complete", response={200: OrderOut, **ERRORS})
def complete_order(request: HttpRequest, order_id: int, payload: ReasonIn) -> Any:
    require(request, Capability.DISCONTINUE_ORDER)
    order = _order(request, order_id)
    done = services.order_complete(actor=_actor(request, order), order=order,
                                   note=payload.reason)
    return done


@router.post("/orders/{order_id}/change", response={201: OrderOut, **ERRORS})
def change_order(request: HttpRequest, order_id: int, payload: OrderChangeIn) -> Any:
    """Discontinue the order and write a new draft that replaces it (one transaction)."""
    user = require(request, Capability.WRITE_ORDER)
    order = _order(request, order_id)
    if not selectors.can_see_numbers(user, order):
        raise HttpError(403, "only the prescriber may change an order awaiting its check")
    data = payload.dict()
    if data.pop("protocol_version_id") != order.protocol_version_id:
        raise UsageError("protocol_version_id", "a change stays under the order's protocol "
                                                "version")
    new = services.order_change(actor=_actor(request, order), order=order, **data)
    return Status(201, new)


@router.get("/orders/{order_id}/limit-events", response={200: list[LimitEventOut], **ERRORS})
def order_limit_events(request: HttpRequest, order_id: int) -> Any:
    order = _read(request, order_id, AuditAction.API_ORDER_LIMIT_EVENTS)
    rows = order.limit_events.select_related("protocol_version", "by", "order",
                                             "order__signed_by", "order__written_by")
    return [_event_out(ev, request.auth) for ev in rows]  # type: ignore[attr-defined]


@router.get("/limit-events", response={200: LimitReportOut, **ERRORS})
def limit_events_report(request: HttpRequest, start: date | None = Query(None),  # noqa: B008
                        end: date | None = Query(None)) -> Any:  # noqa: B008
    """The quality report: limit events and overrides at your sites over a date range
    (default the last 90 days), counted by protocol, prescriber, reason and limit."""
    user = require(request, Capability.VIEW_REPORTS)
    end = end or timezone.localdate()
    start = start or end - timedelta(days=90)
    if start > end:
        raise UsageError("end", "must not be before the start")
    report = selectors.limit_report(user, start, end)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_ORDER_LIMIT_REPORT,
                 detail={"start": start.isoformat(), "end": end.isoformat(),
                         "events": len(report.events)})
    return {**report.to_dict(), "events": [_event_out(ev, user) for ev in report.events]}
