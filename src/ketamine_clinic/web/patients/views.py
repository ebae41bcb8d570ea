"""Registry pages. Views validate and translate; services write; selectors read."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ketamine_clinic.clinical.allergies import AllergyRecord, allergy_matches
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.areas import patient_panels
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report
from ketamine_clinic.web.patients import selectors, services
from ketamine_clinic.web.patients.forms import (
    AllergyForm,
    AmendForm,
    DiagnosisForm,
    InErrorForm,
    MeasurementForm,
    MedicationForm,
    PatientForm,
)
from ketamine_clinic.web.patients.models import (
    Allergy,
    Diagnosis,
    Measurement,
    Medication,
    Patient,
    PatientRecord,
)


@capability_required(Capability.VIEW_PATIENTS)
def patient_list(request: AuthedHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    qs = selectors.patient_search(request.user, query)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    audit_record(actor=Actor.from_request(request),
                 action=AuditAction.PATIENT_SEARCH if query else AuditAction.PATIENT_LIST,
                 detail={"query": query, "results": page.paginator.count})
    context = {"page": page, "query": query}
    if request.htmx:
        return render(request, "patients/patient_list.html#results", context)
    return render(request, "patients/patient_list.html", context)


@capability_required(Capability.REGISTER_PATIENT)
def patient_create(request: AuthedHttpRequest) -> HttpResponse:
    sites = request.user.sites.all()
    form = PatientForm(request.POST or None, sites=sites,
                       initial={"site": sites.first()})
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_register(actor=Actor.from_request(request),
                                                **form.cleaned_data)
        except UsageError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Registered {patient.full_name}.")
            return redirect("patient_detail", patient_id=patient.pk)
    return render(request, "patients/patient_form.html", {"form": form})


def _patient(request: AuthedHttpRequest, patient_id: int) -> Patient:
    """The patient for a write (its service records the entry) or its form."""
    return selectors.patient_get_unaudited(request.user, patient_id, Actor.from_request(request))


@capability_required(Capability.VIEW_PATIENTS)
def patient_detail(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get_for(request.user, patient_id, Actor.from_request(request),
                                        read=AuditAction.PATIENT_VIEW)
    measurements = patient.measurements.select_related(
        "recorded_by", "entered_in_error_by").order_by("-measured_at", "-id")
    context: dict[str, Any] = {
        "patient": patient,
        "measurements": measurements,
        "latest_weight": selectors.latest_weight(patient),
        "diagnoses": patient.diagnoses.select_related("recorded_by"),
        "allergies": patient.allergies.select_related("recorded_by"),
        "ketamine_allergy": _ketamine_allergy(patient),
        "medications": patient.medications.select_related("recorded_by"),
        "amendments": patient.amendments.select_related("amended_by"),
        "measurement_form": MeasurementForm(),
        "diagnosis_form": DiagnosisForm(),
        "allergy_form": AllergyForm(),
        "medication_form": MedicationForm(),
        "panels": [html for panel in patient_panels() if (html := panel(request, patient))],
    }
    return render(request, "patients/patient_detail.html", context)


def _ketamine_allergy(patient: Patient) -> list[str]:
    """Sentences for each recorded allergy that forbids ketamine (``clinical.allergies``)."""
    records = [AllergyRecord(a.substance, reaction=a.reaction)
               for a in patient.allergies.filter(entered_in_error_at__isnull=True)]
    return [m.message for m in allergy_matches(records, "ketamine")]


@capability_required(Capability.AMEND_DEMOGRAPHICS)
def patient_amend(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = (_patient(request, patient_id) if request.method == "POST" else
               selectors.patient_get_for(request.user, patient_id, Actor.from_request(request),
                                         read=AuditAction.PATIENT_AMEND_FORM))
    initial = {f: getattr(patient, f) for f in Patient.AMENDABLE_FIELDS}
    form = AmendForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        reason = data.pop("reason")
        changes = {k: v for k, v in data.items() if v != initial[k]}
        try:
            services.patient_amend(actor=Actor.from_request(request), patient=patient,
                                   changes=changes, reason=reason)
        except UsageError as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Correction recorded; the previous values are kept.")
            return redirect("patient_detail", patient_id=patient.pk)
    return render(request, "patients/patient_amend.html", {"form": form, "patient": patient})


def _record_view(
    request: AuthedHttpRequest, patient_id: int, form_class: type[forms.Form], write: Any,
    section: str,
) -> HttpResponse:
    patient = _patient(request, patient_id)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            write(actor=Actor.from_request(request), patient=patient, **form.cleaned_data)
        except UsageError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{section.capitalize()} recorded.")
            return redirect(f"{patient.get_absolute_url()}#{section}")
    return render(request, "patients/record_form.html",
                  {"form": form, "patient": patient, "section": section}, status=400)


@require_POST
@capability_required(Capability.RECORD_MEASUREMENT)
def measurement_add(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    def write(*, kind: str, value_number: Any, value_code: str, **rest: Any) -> Any:
        return services.measurement_record(kind=kind, value_number=value_number,
                                           value_code=value_code, **rest)

    return _record_view(request, patient_id, MeasurementForm, write, "measurements")


@require_POST
@capability_required(Capability.RECORD_DIAGNOSIS)
def diagnosis_add(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    def write(*, code: str, **rest: Any) -> Any:
        system, _, value = code.partition(":")
        return services.diagnosis_record(system=system, code=value, **rest)

    return _record_view(request, patient_id, DiagnosisForm, write, "diagnoses")


@require_POST
@capability_required(Capability.RECORD_MEDICATION)
def allergy_add(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    return _record_view(request, patient_id, AllergyForm, services.allergy_record, "allergies")


@require_POST
@capability_required(Capability.RECORD_MEDICATION)
def medication_add(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    return _record_view(request, patient_id, MedicationForm, services.medication_record,
                        "medications")


RETRACTABLE: dict[str, tuple[type[PatientRecord], Capability, str]] = {
    "measurement": (Measurement, Capability.RECORD_MEASUREMENT, "measurements"),
    "diagnosis": (Diagnosis, Capability.RECORD_DIAGNOSIS, "diagnoses"),
    "allergy": (Allergy, Capability.RECORD_MEDICATION, "allergies"),
    "medication": (Medication, Capability.RECORD_MEDICATION, "medications"),
}


@require_POST
@capability_required(Capability.VIEW_PATIENTS)
def record_in_error(request: AuthedHttpRequest, patient_id: int, kind: str,
                    record_id: int) -> HttpResponse:
    if kind not in RETRACTABLE:
        raise Http404
    model, capability, section = RETRACTABLE[kind]
    if not request.user.can(capability):
        raise PermissionDenied
    patient = _patient(request, patient_id)
    record = model._default_manager.filter(patient=patient, pk=record_id).first()
    if record is None:
        raise Http404
    form = InErrorForm(request.POST)
    if form.is_valid():
        post_and_report(request, lambda: services.record_mark_in_error(
            actor=Actor.from_request(request), record=record,
            reason=form.cleaned_data["reason"]),
            done="Marked as entered in error; the entry stays visible.", refused="Not marked.")
    else:
        messages.error(request, "A reason is required to mark an entry as entered in error.")
    return redirect(f"{patient.get_absolute_url()}#{section}")
