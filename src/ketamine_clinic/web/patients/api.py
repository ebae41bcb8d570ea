from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.responses import Status

from ketamine_clinic.clinical import clock
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import Paging, found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.patients import selectors, services
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.schemas import (
    DiagnosisIn,
    DiagnosisOut,
    ErrorOut,
    InErrorIn,
    MeasurementIn,
    MeasurementOut,
    PatientAmendIn,
    PatientIn,
    PatientOut,
)

router = Router(tags=["patients"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _read(request: HttpRequest, patient_id: int, action: AuditAction) -> Patient:
    """The patient, the read recorded as ``action``."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.patient_get_for(user, patient_id, Actor.from_request(request),
                                                   read=action), "patient")


def _get_to_write(request: HttpRequest, patient_id: int) -> Patient:
    """The patient for a write, whose service records the entry."""
    user = require(request, Capability.VIEW_PATIENTS)
    return found(lambda: selectors.patient_get_unaudited(user, patient_id,
                                                         Actor.from_request(request)), "patient")


@router.get("/patients", response={200: list[PatientOut], **ERRORS})
@paginate(Paging, pass_parameter="page")
def list_patients(request: HttpRequest, q: str = Query("", max_length=200),
                  **kwargs: Any) -> Any:
    page: Paging.Input = kwargs["page"]
    user = require(request, Capability.VIEW_PATIENTS)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_PATIENT_SEARCH,
                 detail={"query": q, "offset": page.offset, "limit": page.limit})
    return selectors.patient_search(user, q)


@router.post("/patients", response={201: PatientOut, **ERRORS})
def create_patient(request: HttpRequest, payload: PatientIn) -> Any:
    user = require(request, Capability.REGISTER_PATIENT)
    data = payload.dict()
    site = user.sites.filter(code=data.pop("site")).first()
    if site is None:
        raise UsageError("site", "is not one of your sites")
    patient = services.patient_register(actor=Actor.from_request(request), site=site, **data)
    return Status(201, patient)


@router.get("/patients/{patient_id}", response={200: PatientOut, **ERRORS})
def get_patient(request: HttpRequest, patient_id: int) -> Any:
    return _read(request, patient_id, AuditAction.API_PATIENT_VIEW)


@router.patch("/patients/{patient_id}", response={200: PatientOut, **ERRORS})
def amend_patient(request: HttpRequest, patient_id: int, payload: PatientAmendIn) -> Any:
    require(request, Capability.AMEND_DEMOGRAPHICS)
    patient = _get_to_write(request, patient_id)
    data = payload.dict(exclude_unset=True)
    reason = data.pop("reason")
    services.patient_amend(actor=Actor.from_request(request), patient=patient,
                           changes={k: v for k, v in data.items() if v is not None},
                           reason=reason)
    return patient


@router.get("/patients/{patient_id}/diagnoses", response={200: list[DiagnosisOut], **ERRORS})
def list_diagnoses(request: HttpRequest, patient_id: int) -> Any:
    patient = _read(request, patient_id, AuditAction.API_DIAGNOSIS_LIST)
    return patient.diagnoses.select_related("recorded_by")


@router.post("/patients/{patient_id}/diagnoses", response={201: DiagnosisOut, **ERRORS})
def add_diagnosis(request: HttpRequest, patient_id: int, payload: DiagnosisIn) -> Any:
    require(request, Capability.RECORD_DIAGNOSIS)
    patient = _get_to_write(request, patient_id)
    d = services.diagnosis_record(actor=Actor.from_request(request), patient=patient,
                                  **payload.dict())
    return Status(201, d)


@router.get("/patients/{patient_id}/measurements",
            response={200: list[MeasurementOut], **ERRORS})
def list_measurements(request: HttpRequest, patient_id: int, kind: str = "") -> Any:
    patient = _read(request, patient_id, AuditAction.API_MEASUREMENT_LIST)
    qs = patient.measurements.select_related("recorded_by").order_by("-measured_at", "-id")
    if kind:
        qs = qs.filter(kind=kind)
    return qs


@router.post("/patients/{patient_id}/measurements",
             response={201: MeasurementOut, **ERRORS})
def add_measurement(request: HttpRequest, patient_id: int, payload: MeasurementIn) -> Any:
    require(request, Capability.RECORD_MEASUREMENT)
    patient = _get_to_write(request, patient_id)
    data = payload.dict()
    clock.aware("measured_at", data["measured_at"])
    m = services.measurement_record(actor=Actor.from_request(request), patient=patient, **data)
    return Status(201, m)


@router.post("/patients/{patient_id}/measurements/{measurement_id}/entered-in-error",
             response={200: MeasurementOut, **ERRORS})
def measurement_in_error(request: HttpRequest, patient_id: int, measurement_id: int,
                         payload: InErrorIn) -> Any:
    require(request, Capability.RECORD_MEASUREMENT)
    patient = _get_to_write(request, patient_id)
    m = patient.measurements.filter(pk=measurement_id).first()
    if m is None:
        raise HttpError(404, "no such measurement")
    updated = services.record_mark_in_error(actor=Actor.from_request(request), record=m,
                                            reason=payload.reason)
    return updated
