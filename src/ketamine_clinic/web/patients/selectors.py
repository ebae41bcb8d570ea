"""Reads from the registry, always scoped to the sites a user works at."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.patients.models import Measurement, MeasurementKind, Patient


def patients_visible_to(user: User) -> QuerySet[Patient]:
    return Patient.objects.filter(site__in=user.sites.all()).select_related("site")


def patient_search(user: User, query: str) -> QuerySet[Patient]:
    """Search by name, MRN or date of birth (YYYY-MM-DD)."""
    qs = patients_visible_to(user)
    query = query.strip()
    if not query:
        return qs
    try:
        dob = date.fromisoformat(query)
    except ValueError:
        dob = None
    if dob is not None:
        return qs.filter(date_of_birth=dob)
    cond = Q(mrn__iexact=query)
    for term in query.split():
        cond |= Q(given_name__icontains=term) | Q(family_name__icontains=term)
    terms = query.split()
    if len(terms) > 1:  # "Ana Ruiz" must match both words
        both = Q()
        for term in terms:
            both &= Q(given_name__icontains=term) | Q(family_name__icontains=term)
        cond = Q(mrn__iexact=query) | both
    return qs.filter(cond)


def patient_get_for(user: User, patient_id: int, actor: Actor, *,
                    read: AuditAction) -> Patient:
    """The patient if the user may see them, the read recorded as ``read`` (the page's or
    the API's action, e.g. ``PATIENT_VIEW`` or ``API_PATIENT_VIEW``); otherwise not found,
    and the attempt is audited."""
    patient = patient_get_unaudited(user, patient_id, actor)
    patient_read_record(actor, patient, read)
    return patient


def patient_get_unaudited(user: User, patient_id: int, actor: Actor) -> Patient:
    """The patient as ``patient_get_for`` finds them, with no read entry: for a write (its
    service records the entry) and for a read whose entry carries what the view works out
    afterwards (it calls ``patient_read_record`` itself). A refused access is audited."""
    patient = patients_visible_to(user).filter(pk=patient_id).first()
    if patient is None:
        audit_record(actor=actor, action=AuditAction.PATIENT_ACCESS_DENIED, object_type="patient",
                     object_id=patient_id)
        raise Http404("No such patient")
    return patient


def patient_read_record(actor: Actor, patient: Patient, action: AuditAction,
                        detail: dict[str, Any] | None = None) -> None:
    """Record a read of the patient's record, filed under the patient's site."""
    audit_read(actor=actor, action=action, object_type="patient", object_id=patient.pk,
               site_code=patient.site.code, detail=detail)


def latest_weight(patient: Patient) -> Measurement | None:
    return (
        patient.measurements.filter(kind=MeasurementKind.WEIGHT_KG,
                                    entered_in_error_at__isnull=True)
        .order_by("-measured_at", "-id").first()
    )
