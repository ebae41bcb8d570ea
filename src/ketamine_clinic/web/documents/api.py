"""API: consent (list, document, record, withdraw) and the discharge summary of a session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.clinical import clock
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents import selectors, services
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.documents.schemas import (
    ConsentDocumentOut,
    ConsentIn,
    ConsentOut,
    DischargeSummaryOut,
    ErrorOut,
    WithdrawIn,
)
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patient_get_for, patient_get_unaudited
from ketamine_clinic.web.protocols import selectors as protocol_selectors
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion

router = Router(tags=["documents"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
          422: ErrorOut}


def _patient_to_write(request: HttpRequest, user: User, patient_id: int) -> Patient:
    """The patient for a write, whose service records the entry."""
    return found(lambda: patient_get_unaudited(user, patient_id, Actor.from_request(request)),
                 "patient")


def _consent_out(c: Consent) -> dict[str, Any]:
    withdrawal = getattr(c, "withdrawal", None)
    current = protocol_selectors.consent_current(c.patient_id, c.protocol_version_id)
    return {
        "id": c.pk, "patient": c.patient_id, "protocol_version": c.protocol_version_id,
        "protocol": str(c.protocol_version), "method": c.method,
        "document_sha256": c.document_sha256, "explained_by": c.explained_by.username,
        "signed_at": c.signed_at, "recorded_at": c.recorded_at,
        "paper_reference": c.paper_reference, "has_signature": bool(c.signature_svg),
        "in_force": current is not None and current.pk == c.pk,
        "withdrawn_at": withdrawal.withdrawn_at if withdrawal else None,
        "withdrawal_reason": withdrawal.reason if withdrawal else "",
    }


def _pv(protocol_version_id: int) -> ProtocolVersion:
    pv = ProtocolVersion.objects.filter(pk=protocol_version_id).first()
    if pv is None:
        raise UsageError("protocol_version", f"no protocol version {protocol_version_id}")
    return pv


@router.get("/protocol-versions/{protocol_version_id}/consent-document",
            response={200: ConsentDocumentOut, **ERRORS})
def consent_document(request: HttpRequest, protocol_version_id: int) -> Any:
    require(request, Capability.VIEW_PROTOCOLS)
    pv = ProtocolVersion.objects.filter(pk=protocol_version_id).first()
    if pv is None:
        raise HttpError(404, "no such protocol version")
    generated = consent_for(pv)
    return {"protocol_version": pv.pk, "title": generated.title, "text": generated.text,
            "sha256": generated.sha256}


@router.get("/patients/{patient_id}/consents", response={200: list[ConsentOut], **ERRORS})
def list_consents(request: HttpRequest, patient_id: int) -> Any:
    user = require(request, Capability.VIEW_PATIENTS)
    patient = found(lambda: patient_get_for(user, patient_id, Actor.from_request(request),
                                            read=AuditAction.API_CONSENT_LIST), "patient")
    return [_consent_out(c) for c in protocol_selectors.consents_of(patient)]


@router.post("/patients/{patient_id}/consents", response={201: ConsentOut, **ERRORS})
def record_consent(request: HttpRequest, patient_id: int, payload: ConsentIn) -> Any:
    user = require(request, Capability.RECORD_CONSENT)
    patient = _patient_to_write(request, user, patient_id)
    data = payload.dict()
    clock.aware("signed_at", data["signed_at"])
    explainer = User.objects.filter(username=data.pop("explained_by")).first()
    if explainer is None:
        raise UsageError("explained_by", "no such user")
    consent = services.consent_record(
        actor=Actor.from_request(request), patient=patient,
        protocol_version=_pv(data.pop("protocol_version")), explained_by=explainer, **data)
    return Status(201, _consent_out(consent))


@router.get("/consents/{consent_id}", response={200: ConsentOut, **ERRORS})
def get_consent(request: HttpRequest, consent_id: int) -> Any:
    user = require(request, Capability.VIEW_PATIENTS)
    consent = found(lambda: selectors.consent_get_for(user, consent_id, Actor.from_request(request),
                                                      read=AuditAction.API_CONSENT_VIEW),
                    "consent")
    return _consent_out(consent)


@router.post("/consents/{consent_id}/withdraw", response={200: ConsentOut, **ERRORS})
def withdraw_consent(request: HttpRequest, consent_id: int, payload: WithdrawIn) -> Any:
    user = require(request, Capability.RECORD_CONSENT)
    consent = found(lambda: selectors.consent_get_unaudited(user, consent_id,
                                                            Actor.from_request(request)),
                    "consent")
    clock.aware_or_none("withdrawn_at", payload.withdrawn_at)
    services.consent_withdraw(actor=Actor.from_request(request), consent=consent,
                              reason=payload.reason, withdrawn_at=payload.withdrawn_at)
    consent.refresh_from_db()
    return _consent_out(Consent.objects.select_related("withdrawal", "explained_by",
                                                       "protocol_version").get(pk=consent.pk))


@router.get("/sessions/{session_id}/discharge-instructions",
            response={200: DischargeSummaryOut, **ERRORS})
def discharge_summary(request: HttpRequest, session_id: int) -> Any:
    user = require(request, Capability.DISCHARGE_PATIENT)
    session = found(lambda: selectors.session_get_unaudited(user, session_id,
                                                            Actor.from_request(request)),
                    "session")
    s = selectors.session_summary(session)
    selectors.sheet_read_record(Actor.from_request(request), session,
                                AuditAction.API_DISCHARGE_INSTRUCTIONS_VIEW)
    total = s.ketamine_total_mg
    return {
        "session": session.pk, "patient": session.patient_id, "drug": s.drug,
        "infusion_started_at": s.infusion_started_at, "infusion_ended_at": s.infusion_ended_at,
        "ketamine_total_mg": float(total) if total is not None else None,
        "ketamine_total_mg_exact": str(total) if total is not None else None,
        "medicines": [{"kind": m.kind, "drug": m.drug, "dose": m.dose, "unit": m.unit,
                       "route": m.route, "at": m.at} for m in s.medicines],
        "no_driving_until": s.no_driving.until if s.no_driving else None,
        "no_driving_hours": s.no_driving.hours if s.no_driving else None,
        "no_driving_source": s.no_driving.source if s.no_driving else None,
        "next_session": s.next_session.pk if s.next_session else None,
        "next_session_at": s.next_session.scheduled_for if s.next_session else None,
        "problems": list(s.problems),
    }
