"""Staff roles and what each may do. One table, read by views, API and tests."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    NURSE = "nurse", "Nurse"
    FRONT_DESK = "front_desk", "Front desk"
    CLINIC_ADMIN = "clinic_admin", "Clinic administrator"
    AUDITOR = "auditor", "Auditor (read-only)"


class Capability(models.TextChoices):
    VIEW_PATIENTS = "view_patients"
    REGISTER_PATIENT = "register_patient"
    AMEND_DEMOGRAPHICS = "amend_demographics"
    RECORD_MEASUREMENT = "record_measurement"
    RECORD_DIAGNOSIS = "record_diagnosis"
    RECORD_MEDICATION = "record_medication"
    VIEW_AUDIT = "view_audit"
    MANAGE_STAFF = "manage_staff"


_ALL_STAFF = frozenset(Role)
_CLINICAL = frozenset({Role.PHYSICIAN, Role.NURSE})

CAPABILITIES: dict[Capability, frozenset[Role]] = {
    Capability.VIEW_PATIENTS: _ALL_STAFF,
    Capability.REGISTER_PATIENT: frozenset({Role.FRONT_DESK, Role.PHYSICIAN, Role.NURSE,
                                           Role.CLINIC_ADMIN}),
    Capability.AMEND_DEMOGRAPHICS: frozenset({Role.FRONT_DESK, Role.PHYSICIAN, Role.NURSE,
                                             Role.CLINIC_ADMIN}),
    Capability.RECORD_MEASUREMENT: _CLINICAL,
    Capability.RECORD_DIAGNOSIS: frozenset({Role.PHYSICIAN}),
    Capability.RECORD_MEDICATION: _CLINICAL,
    Capability.VIEW_AUDIT: frozenset({Role.CLINIC_ADMIN, Role.AUDITOR}),
    Capability.MANAGE_STAFF: frozenset({Role.CLINIC_ADMIN}),
}


def role_can(role: str, capability: Capability) -> bool:
    return role in CAPABILITIES[capability]
