"""Session API: bedside monitors post vital signs; other systems chart and read.

Every write takes an ``idempotency_key``: a retry returns the stored entry (200, with
``replayed: true``) instead of a duplicate (201 for a new one).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Header, Router
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.clinical import clock
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib import idempotency
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.sessions import selectors, services
from ketamine_clinic.web.sessions.models import Alarm, InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.schemas import (
    AckIn,
    AlarmOut,
    CorrectionIn,
    DischargeIn,
    EntryOut,
    EventIn,
    ObservationIn,
    PingOut,
    RateIn,
    RecoveryIn,
    SessionOut,
    VitalsIn,
)

router = Router(tags=["sessions"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _get(request: HttpRequest, session_id: int, capability: Capability) -> InfusionSession:
    """The session for a write, whose service records the entry."""
    user = require(request, capability)
    return found(lambda: selectors.session_get_for_write(user, session_id,
                                                         Actor.from_request(request)), "session")


def _read(request: HttpRequest, session_id: int, action: AuditAction) -> InfusionSession:
    """The session, the read recorded as ``action``."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.session_get_for(user, session_id, Actor.from_request(request),
                                                   read=action), "session")


def entry_out(e: TimelineEntry, status: str = "effective",
              replayed: bool = False) -> dict[str, Any]:
    return {"id": e.pk, "session": e.session_id, "kind": e.kind, "occurred_at": e.occurred_at,
            "recorded_at": e.recorded_at, "recorded_by": e.recorded_by.get_username(),
            "payload": e.payload, "corrects": e.corrects_id,
            "correction_reason": e.correction_reason, "device_id": e.device_id,
            "status": status, "replayed": replayed}


def written_out(w: services.Written) -> Any:
    """201 with a new entry; 200 with the stored one when the request was a retry."""
    return Status(200 if w.replayed else 201, entry_out(w.entry, replayed=w.replayed))


def alarm_out(a: Alarm) -> dict[str, Any]:
    ack = getattr(a, "ack", None) if selectors._acked(a) else None
    return {"id": a.pk, "kind": a.kind, "message": a.message, "raised_at": a.raised_at,
            "acknowledged": ack is not None,
            "acknowledged_by": ack.by.get_username() if ack else None,
            "response": ack.response if ack else None}


def session_out(snap: selectors.Snapshot) -> dict[str, Any]:
    s = snap.session
    return {
        "id": s.pk, "patient": s.patient_id, "chair": s.chair,
        "visit_number": s.visit_number, "state": snap.state.value, "version": s.version,
        "allowed_events": list(snap.allowed),
        "totals": snap.totals.to_dict() if snap.totals else None,
        "limits": [{**f.check.to_dict(), "reached_at": f.reached_at.isoformat()
                    if f.reached_at else None}
                   for f in (snap.limit_check.findings if snap.limit_check else ())],
        "overdue": snap.overdue.to_dict() if snap.overdue else None,
        "alarms": [alarm_out(a) for a in snap.alarms],
        "start_gate": snap.start_gate.to_dict() if snap.start_gate else None,
        "discharge_gate": snap.discharge_gate.to_dict() if snap.discharge_gate else None,
        "protocol": snap.rules.ref,
    }


@router.get("/sessions/ping", response={200: PingOut, **ERRORS})
def ping(request: HttpRequest) -> Any:
    """A trivial authenticated endpoint (no patient data): the benchmark's baseline."""
    user = require(request, Capability.VIEW_PATIENTS)
    return {"user": user.get_username(), "at": timezone.now()}


@router.get("/sessions/board", response={200: list[SessionOut], **ERRORS})
def board(request: HttpRequest) -> Any:
    user = require(request, Capability.VIEW_PATIENTS)
    rows = selectors.board_sessions(user)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_SESSION_BOARD,
                 detail={"sessions": [r.session.pk for r in rows]})
    return [session_out(r) for r in rows]


@router.get("/sessions/{session_id}", response={200: SessionOut, **ERRORS})
def get_session(request: HttpRequest, session_id: int) -> Any:
    session = _read(request, session_id, AuditAction.API_SESSION_VIEW)
    services.session_watch(session=session)
    return session_out(selectors.snapshot(session))


@router.get("/sessions/{session_id}/timeline", response={200: list[EntryOut], **ERRORS})
def timeline(request: HttpRequest, session_id: int) -> Any:
    session = _read(request, session_id, AuditAction.API_SESSION_TIMELINE)
    views = selectors.fold(selectors.entries_of(session))
    return [entry_out(v.entry, v.status) for v in views]


@router.post("/sessions/{session_id}/vitals", response={200: EntryOut, 201: EntryOut, **ERRORS})
@idempotency.own_transaction  # the service stores the key with the entry (lib/idempotency)
def post_vitals(request: HttpRequest, session_id: int, payload: VitalsIn,
                x_device_id: str = Header("", alias="X-Device-Id")) -> Any:
    """Record a vital-sign set (bedside monitor). Retried requests are safe."""
    session = _get(request, session_id, Capability.CHART_SESSION)
    data = payload.model_dump()
    at = clock.aware_or_none("occurred_at", data.pop("occurred_at"))
    key = data.pop("idempotency_key")
    device = data.pop("device_id") or x_device_id
    data = {k: v for k, v in data.items() if v is not None}
    written = services.session_observe(actor=Actor.from_request(request), session=session,
                                     kind="vitals", data=data, occurred_at=at,
                                     idempotency_key=key, device_id=device)
    return written_out(written)


@router.post("/sessions/{session_id}/observations",
             response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_observation(request: HttpRequest, session_id: int, payload: ObservationIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    written = services.session_observe(
        actor=Actor.from_request(request), session=session, kind=payload.kind,
        data=payload.payload, occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        idempotency_key=payload.idempotency_key)
    return written_out(written)


@router.post("/sessions/{session_id}/events", response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_event(request: HttpRequest, session_id: int, payload: EventIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    written = services.session_event(
        actor=Actor.from_request(request), session=session, event=payload.event,
        data=payload.payload, occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        expected_version=payload.expected_version, idempotency_key=payload.idempotency_key)
    return written_out(written)


@router.post("/sessions/{session_id}/rate", response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_rate(request: HttpRequest, session_id: int, payload: RateIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    written = services.session_rate_set(
        actor=Actor.from_request(request), session=session, rate=payload.rate,
        occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        override_code=payload.override_code, override_text=payload.override_text,
        confirmed=payload.confirmed, expected_version=payload.expected_version,
        idempotency_key=payload.idempotency_key)
    return written_out(written)


@router.post("/sessions/{session_id}/entries/{entry_id}/corrections",
             response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_correction(request: HttpRequest, session_id: int, entry_id: int,
                    payload: CorrectionIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    entry = TimelineEntry.objects.filter(session=session, pk=entry_id).first()
    if entry is None:
        raise HttpError(404, "no such entry")
    written = services.session_entry_correct(
        actor=Actor.from_request(request), session=session, entry=entry,
        reason=payload.reason, data=payload.payload,
        occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        entered_in_error=payload.entered_in_error, idempotency_key=payload.idempotency_key)
    return written_out(written)


@router.post("/sessions/{session_id}/alarms/{alarm_id}/ack", response={200: AlarmOut, **ERRORS})
def post_ack(request: HttpRequest, session_id: int, alarm_id: int, payload: AckIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    alarm = Alarm.objects.filter(session=session, pk=alarm_id).first()
    if alarm is None:
        raise HttpError(404, "no such alarm")
    services.alarm_acknowledge(actor=Actor.from_request(request), alarm=alarm,
                               response=payload.response)
    return alarm_out(Alarm.objects.select_related("ack", "ack__by").get(pk=alarm.pk))


@router.post("/sessions/{session_id}/recovery-scores",
             response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_recovery(request: HttpRequest, session_id: int, payload: RecoveryIn) -> Any:
    session = _get(request, session_id, Capability.CHART_SESSION)
    written = services.session_recovery_score(
        actor=Actor.from_request(request), session=session, observed=payload.observed,
        score_name=payload.score_name,
        occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        idempotency_key=payload.idempotency_key)
    return written_out(written)


@router.post("/sessions/{session_id}/discharge",
             response={200: EntryOut, 201: EntryOut, **ERRORS})
def post_discharge(request: HttpRequest, session_id: int, payload: DischargeIn) -> Any:
    session = _get(request, session_id, Capability.DISCHARGE_PATIENT)
    written = services.session_discharge(
        actor=Actor.from_request(request), session=session, escort_name=payload.escort_name,
        instructions_given=payload.instructions_given, overrides=payload.overrides,
        occurred_at=clock.aware_or_none("occurred_at", payload.occurred_at),
        expected_version=payload.expected_version, idempotency_key=payload.idempotency_key)
    return written_out(written)
