"""/api/v1/ endpoints of the protocols area: protocol versions, publishing, screening."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.clinical.protocol import protocol_diff, references
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.patients.selectors import patient_get_for, patient_get_unaudited
from ketamine_clinic.web.protocols import selectors, services
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening
from ketamine_clinic.web.protocols.schemas import (
    DiffOut,
    OverrideIn,
    ProtocolOut,
    ProtocolVersionDetailOut,
    ProtocolVersionOut,
    PublishIn,
    ReferenceOut,
    ScreenIn,
    ScreeningOut,
)

router = Router(tags=["protocols and screening"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _version_out(pv: ProtocolVersion) -> dict[str, Any]:
    return {"id": pv.pk, "name": pv.name, "version": pv.version, "title": pv.title,
            "status": pv.protocol().status.value, "sha256": pv.sha256,
            "published_at": pv.published_at,
            "published_by": pv.published_by.username if pv.published_by else None,
            "change_note": pv.change_note}


def _pv(name: str, version: int) -> ProtocolVersion:
    try:
        return selectors.protocol_version_get(name, version)
    except Http404 as exc:
        raise HttpError(404, f"no protocol {name} version {version}") from exc


@router.get("/protocols", response={200: list[ProtocolOut], **ERRORS})
def list_protocols(request: HttpRequest) -> Any:
    require(request, Capability.VIEW_PROTOCOLS)
    return [{"name": e.name, "title": e.title, "versions": [_version_out(pv) for pv in e.versions]}
            for e in selectors.protocol_entries()]


@router.get("/protocols/references", response={200: list[ReferenceOut], **ERRORS})
def list_references(request: HttpRequest) -> Any:
    require(request, Capability.VIEW_PROTOCOLS)
    return [{"key": r.key, "citation": r.citation, "urls": list(r.urls)}
            for r in references().values()]


@router.get("/protocols/{name}/versions/{version}",
            response={200: ProtocolVersionDetailOut, **ERRORS})
def get_protocol_version(request: HttpRequest, name: str, version: int) -> Any:
    require(request, Capability.VIEW_PROTOCOLS)
    pv = _pv(name, version)
    protocol = pv.protocol()
    return {**_version_out(pv), "rows": [r.to_dict() for r in protocol.rows],
            "toml_text": pv.toml_text}


@router.get("/protocols/{name}/diff", response={200: list[DiffOut], **ERRORS})
def diff_protocol_versions(request: HttpRequest, name: str, old: int, new: int,
                           include_unchanged: bool = False) -> Any:
    require(request, Capability.VIEW_PROTOCOLS)
    rows = protocol_diff(_pv(name, old).protocol(),
                         _pv(name, new).protocol(),
                         include_unchanged=include_unchanged)
    return [r.to_dict() for r in rows]


@router.post("/protocols", response={201: ProtocolVersionOut, **ERRORS})
def publish_protocol_version(request: HttpRequest, payload: PublishIn) -> Any:
    require(request, Capability.PUBLISH_PROTOCOL)
    pv = services.protocol_publish(actor=Actor.from_request(request),
                                   toml_text=payload.toml_text,
                                   change_note=payload.change_note)
    return Status(201, _version_out(pv))


# --------------------------------------------------------------------------- screening


def _patient_to_write(request: HttpRequest, patient_id: int) -> Patient:
    """The patient for a write, whose service records the entry."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: patient_get_unaudited(user, patient_id, Actor.from_request(request)),
                 "patient")


def _screening_to_write(request: HttpRequest, screening_id: int) -> Screening:
    """The screening for a write, whose service records the entry."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.screening_get_unaudited(user, screening_id,
                                                           Actor.from_request(request)),
                 "screening")


def screening_out(s: Screening) -> dict[str, Any]:
    """The CLI's JSON shape (decision, reasons, protocol) plus what the record adds."""
    status = selectors.screening_status(s)
    data = s.result or {}
    return {
        "screening_id": s.pk, "patient": s.patient_id, "decision": s.decision,
        "effective_decision": status.effective.value, "reasons": s.reasons,
        "protocol": data.get("protocol") or {"name": s.protocol_version.name,
                                             "version": s.protocol_version.version,
                                             "sha256": s.protocol_version.sha256},
        "validity_days": data.get("validity_days", 0), "facts": s.facts,
        "facts_sha256": s.facts_sha256, "screened_at": s.screened_at,
        "screened_by": s.screened_by.username, "valid_until": s.valid_until,
        "current": status.current, "out_of_date": status.out_of_date,
        "overrides": [{"id": o.pk, "rule": o.rule, "justification": o.justification,
                       "physician": o.physician.username, "at": o.at}
                      for o in s.overrides.select_related("physician")],
    }


def _protocol_for(payload: ScreenIn) -> ProtocolVersion:
    if payload.protocol_version_id is not None:
        pv = ProtocolVersion.objects.filter(pk=payload.protocol_version_id).first()
        if pv is None:
            raise UsageError("protocol_version_id", "no such protocol version")
        return pv
    name = payload.protocol or "clinic-standard"
    usable = [pv for pv in selectors.protocol_versions_for_screening() if pv.name == name]
    if not usable:
        raise UsageError("protocol", f"no active version of {name!r} is stored")
    return usable[0]


@router.post("/patients/{patient_id}/screenings", response={201: ScreeningOut, **ERRORS})
def screen_patient(request: HttpRequest, patient_id: int, payload: ScreenIn) -> Any:
    require(request, Capability.SCREEN_PATIENT)
    patient = _patient_to_write(request, patient_id)
    s = services.screening_record(
        actor=Actor.from_request(request), patient=patient, protocol_version=_protocol_for(payload),
        answers={"medications_complete": payload.medications_complete,
                 "conditions": payload.conditions,
                 "conditions_absent": payload.conditions_absent,
                 "budapest": payload.budapest})
    return Status(201, screening_out(s))


@router.get("/patients/{patient_id}/screenings", response={200: list[ScreeningOut], **ERRORS})
def list_screenings(request: HttpRequest, patient_id: int) -> Any:
    user = require(request, Capability.VIEW_PATIENTS)
    patient = found(lambda: patient_get_for(user, patient_id, Actor.from_request(request),
                                            read=AuditAction.API_SCREENING_LIST), "patient")
    return [screening_out(s) for s in selectors.screenings_of(patient).prefetch_related("series")]


@router.get("/screenings/{screening_id}", response={200: ScreeningOut, **ERRORS})
def get_screening(request: HttpRequest, screening_id: int) -> Any:
    user = require(request, Capability.VIEW_PATIENTS)
    s = found(lambda: selectors.screening_get_for(user, screening_id, Actor.from_request(request),
                                                  read=AuditAction.API_SCREENING_VIEW),
              "screening")
    return screening_out(s)


@router.post("/screenings/{screening_id}/overrides", response={201: ScreeningOut, **ERRORS})
def override_screening(request: HttpRequest, screening_id: int, payload: OverrideIn) -> Any:
    require(request, Capability.OVERRIDE_SCREENING)
    s = _screening_to_write(request, screening_id)
    services.screening_override(actor=Actor.from_request(request), screening=s,
                                rule=payload.rule, justification=payload.justification)
    return Status(201, screening_out(s))
