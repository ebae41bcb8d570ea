"""Writes to the registry. Each runs in one transaction and leaves an audit entry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ketamine_clinic.clinical import clock
from ketamine_clinic.clinical.codes import lookup_diagnosis
from ketamine_clinic.clinical.plausibility import check_plausible, plausible_ranges
from ketamine_clinic.clinical.weight_checks import weight_findings
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.inputs import required_text
from ketamine_clinic.web.patients.models import (
    TEST_KINDS,
    Allergy,
    DemographicAmendment,
    Diagnosis,
    Measurement,
    MeasurementKind,
    Medication,
    Patient,
    PatientRecord,
    PregnancyStatus,
    SexAtBirth,
    TestOutcome,
)


def _check_date_of_birth(value: date) -> date:
    today = timezone.localdate()
    if value > today:
        raise UsageError("date_of_birth", f"{value.isoformat()} is in the future")
    oldest_years = plausible_ranges()["age_years"].max
    age_years = (today - value).days / 365.2425
    if age_years > oldest_years:
        raise UsageError(
            "date_of_birth",
            f"{value.isoformat()} gives an age over {oldest_years:g} years",
        )
    return value


def patient_register(
    *,
    actor: Actor,
    site: Site,
    mrn: str,
    given_name: str,
    family_name: str,
    date_of_birth: date,
    sex_at_birth: str,
    phone: str = "",
    email: str = "",
    address: str = "",
    escort_name: str = "",
    escort_phone: str = "",
    escort_relationship: str = "",
) -> Patient:
    if sex_at_birth not in SexAtBirth.values:
        raise UsageError("sex_at_birth", f"must be one of {', '.join(SexAtBirth.values)}")
    fields = {
        "mrn": required_text("mrn", mrn),
        "given_name": required_text("given_name", given_name),
        "family_name": required_text("family_name", family_name),
        "date_of_birth": _check_date_of_birth(date_of_birth),
        "sex_at_birth": sex_at_birth,
        "phone": phone.strip(), "email": email.strip(), "address": address.strip(),
        "escort_name": escort_name.strip(), "escort_phone": escort_phone.strip(),
        "escort_relationship": escort_relationship.strip(),
    }
    try:
        with transaction.atomic():
            patient = Patient.objects.create(site=site, created_by=actor.require_user(), **fields)
            audit_record(actor=actor.at(patient.site.code), action=AuditAction.PATIENT_REGISTER,
                         object_type="patient", object_id=patient.pk,
                         detail={"mrn": patient.mrn})
    except IntegrityError as exc:
        if Patient.objects.filter(site=site, mrn=fields["mrn"]).exists():
            raise UsageError("mrn", f"{fields['mrn']} is already used at {site.name}") from exc
        raise
    return patient


def patient_amend(
    *, actor: Actor, patient: Patient, changes: dict[str, Any], reason: str
) -> list[DemographicAmendment]:
    """Correct demographic fields; each change keeps the old value, who, when and why."""
    reason = required_text("reason", reason)
    unknown = set(changes) - set(Patient.AMENDABLE_FIELDS)
    if unknown:
        raise UsageError(sorted(unknown)[0], "cannot be amended")
    if "date_of_birth" in changes:
        _check_date_of_birth(changes["date_of_birth"])
    if "sex_at_birth" in changes and changes["sex_at_birth"] not in SexAtBirth.values:
        raise UsageError("sex_at_birth", f"must be one of {', '.join(SexAtBirth.values)}")
    for required in ("mrn", "given_name", "family_name"):
        if required in changes:
            changes[required] = required_text(required, changes[required])
    amendments = []
    try:
        with transaction.atomic():
            locked = Patient.objects.select_for_update().get(pk=patient.pk)
            for field, new in changes.items():
                old = getattr(locked, field)
                if old == new:
                    continue
                setattr(locked, field, new)
                amendments.append(DemographicAmendment(
                    patient=locked, field=field, old_value=str(old), new_value=str(new),
                    reason=reason, amended_by=actor.user,
                ))
            if not amendments:
                raise UsageError("changes", "nothing differs from the current record")
            locked.save(update_fields=[a.field for a in amendments])
            DemographicAmendment.objects.bulk_create(amendments)
            audit_record(
                actor=actor.at(locked.site.code),
                action=AuditAction.PATIENT_AMEND, object_type="patient",
                object_id=locked.pk,
                detail={"fields": [a.field for a in amendments], "reason": reason},
            )
    except IntegrityError as exc:
        raise UsageError("mrn", f"{changes.get('mrn')} is already used at this site") from exc
    patient.refresh_from_db()
    return amendments


def _check_weight(patient: Patient, weight_kg: Decimal, measured_at: datetime,
                  confirmed: bool) -> None:
    last = (patient.measurements.filter(kind=MeasurementKind.WEIGHT_KG,
                                        entered_in_error_at__isnull=True,
                                        measured_at__lte=measured_at)
            .order_by("-measured_at", "-id").first())
    day = timezone.localdate(measured_at)
    findings = weight_findings(
        Fraction(weight_kg), age_years=patient.age_on(day),
        previous=None if last is None else (Fraction(last.number),
                                            timezone.localdate(last.measured_at)),
        on=day)
    for f in findings:
        if f.blocks or not confirmed:
            raise UsageError("value_number", f.message)


def measurement_record(
    *,
    actor: Actor,
    patient: Patient,
    kind: str,
    measured_at: datetime,
    value_number: Decimal | float | None = None,
    value_code: str = "",
    note: str = "",
    confirmed: bool = False,
) -> Measurement:
    """Record a measurement. A weight is checked as it is entered
    (``clinical.weight_checks``): an impossible adult weight is refused, and a large change
    from the last weight is recorded only with ``confirmed``."""
    if kind not in MeasurementKind.values:
        raise UsageError("kind", f"must be one of {', '.join(MeasurementKind.values)}")
    clock.not_future("measured_at", measured_at, timezone.now())
    if measured_at.date() < patient.date_of_birth:
        raise UsageError("measured_at", "is before the patient's date of birth")
    if kind == MeasurementKind.PREGNANCY_STATUS:
        if value_code not in PregnancyStatus.values:
            raise UsageError("value_code",
                             f"must be one of {', '.join(PregnancyStatus.values)}")
        number = None
    elif kind in TEST_KINDS:
        if value_code not in TestOutcome.values:
            raise UsageError("value_code", "say whether the result is in range or out of range")
        number = None
    else:
        if value_number is None:
            raise UsageError("value_number", "is required")
        try:
            number = Decimal(str(value_number)).quantize(Decimal("0.01"))
        except InvalidOperation as exc:  # e.g. 1e400: more digits than any column holds
            raise UsageError("value_number", f"{value_number} is too large a number") from exc
        check_plausible(kind, float(number), field="value_number")
        value_code = ""
        if kind == MeasurementKind.WEIGHT_KG:
            _check_weight(patient, number, measured_at, confirmed)
    with transaction.atomic():
        m = Measurement.objects.create(
            patient=patient, kind=kind, value_number=number, value_code=value_code,
            measured_at=measured_at, note=note.strip(), recorded_by=actor.require_user(),
        )
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.MEASUREMENT_RECORD,
                     object_type="measurement", object_id=m.pk,
                     detail={"patient": patient.pk, "kind": kind,
                             "value": str(number) if number is not None else value_code})
    return m


def diagnosis_record(
    *, actor: Actor, patient: Patient, system: str, code: str, diagnosed_on: date,
    note: str = "",
) -> Diagnosis:
    entry = lookup_diagnosis(system, code)
    if diagnosed_on > timezone.localdate():
        raise UsageError("diagnosed_on", "is in the future")
    if diagnosed_on < patient.date_of_birth:
        raise UsageError("diagnosed_on", "is before the patient's date of birth")
    with transaction.atomic():
        d = Diagnosis.objects.create(
            patient=patient, system=entry.system, code=entry.code, display=entry.display,
            group=entry.group, laterality=entry.laterality, limb=entry.limb,
            diagnosed_on=diagnosed_on, note=note.strip(), recorded_by=actor.require_user(),
        )
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.DIAGNOSIS_RECORD,
                     object_type="diagnosis", object_id=d.pk,
                     detail={"patient": patient.pk, "code": entry.code})
    return d


def allergy_record(
    *, actor: Actor, patient: Patient, substance: str, reaction: str = "", severity: str = ""
) -> Allergy:
    if severity and severity not in {"mild", "moderate", "severe"}:
        raise UsageError("severity", "must be mild, moderate or severe")
    with transaction.atomic():
        a = Allergy.objects.create(
            patient=patient, substance=required_text("substance", substance),
            reaction=reaction.strip(), severity=severity, recorded_by=actor.require_user(),
        )
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.ALLERGY_RECORD,
                     object_type="allergy", object_id=a.pk, detail={"patient": patient.pk})
    return a


def medication_record(
    *, actor: Actor, patient: Patient, name: str, dose: str = "", route: str = "",
    start_date: date | None = None,
) -> Medication:
    if start_date and start_date > timezone.localdate():
        raise UsageError("start_date", "is in the future")
    with transaction.atomic():
        m = Medication.objects.create(
            patient=patient, name=required_text("name", name).lower(), dose=dose.strip(),
            route=route.strip(), start_date=start_date, recorded_by=actor.require_user(),
        )
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.MEDICATION_RECORD,
                     object_type="medication", object_id=m.pk, detail={"patient": patient.pk})
    return m


def record_mark_in_error(*, actor: Actor, record: PatientRecord, reason: str) -> PatientRecord:
    """Mark a measurement, diagnosis, allergy or medication as entered in error."""
    reason = required_text("reason", reason)
    model = type(record)
    with transaction.atomic():
        locked = model._default_manager.select_for_update().get(pk=record.pk)
        if locked.in_error:
            raise UsageError("reason", "this record is already marked as entered in error")
        locked.entered_in_error_at = timezone.now()
        locked.entered_in_error_by = actor.user
        locked.entered_in_error_reason = reason
        locked.save(update_fields=["entered_in_error_at", "entered_in_error_by",
                                   "entered_in_error_reason"])
        patient = locked.patient
        audit_record(actor=actor.at(patient.site.code),
                     action=AuditAction(f"{model._meta.model_name}.entered_in_error"),
                     object_type=model._meta.model_name or "", object_id=locked.pk,
                     detail={"patient": patient.pk, "reason": reason})
    return locked
