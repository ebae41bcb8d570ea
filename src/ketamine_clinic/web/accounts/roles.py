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
    VIEW_PROTOCOLS = "view_protocols"
    PUBLISH_PROTOCOL = "publish_protocol"
    SCREEN_PATIENT = "screen_patient"
    OVERRIDE_SCREENING = "override_screening"
    RECORD_CONSENT = "record_consent"
    WRITE_ORDER = "write_order"
    SIGN_ORDER = "sign_order"
    VERIFY_ORDER = "verify_order"
    DISCONTINUE_ORDER = "discontinue_order"
    RUN_SIMULATION = "run_simulation"
    CHART_SESSION = "chart_session"
    DISCHARGE_PATIENT = "discharge_patient"
    OVERRIDE_DISCHARGE = "override_discharge"
    RECORD_FOLLOW_UP = "record_follow_up"
    VIEW_REPORTS = "view_reports"
    BOOK_VISIT = "book_visit"
    ANSWER_CHECKLIST = "answer_checklist"
    MANAGE_SITES = "manage_sites"
    VIEW_BILLING = "view_billing"
    # The controlled-substance record; what each role may do there (receive, draw, witness,
    # count, destroy, resolve) is set by administrators in the stock area (web/stock).
    VIEW_STOCK = "view_stock"


_ALL_STAFF = frozenset(Role)
_CLINICAL = frozenset({Role.PHYSICIAN, Role.NURSE})
_PHYSICIAN = frozenset({Role.PHYSICIAN})

CAPABILITIES: dict[Capability, frozenset[Role]] = {
    Capability.VIEW_PATIENTS: _ALL_STAFF,
    Capability.REGISTER_PATIENT: frozenset({Role.FRONT_DESK, Role.PHYSICIAN, Role.NURSE,
                                           Role.CLINIC_ADMIN}),
    Capability.AMEND_DEMOGRAPHICS: frozenset({Role.FRONT_DESK, Role.PHYSICIAN, Role.NURSE,
                                             Role.CLINIC_ADMIN}),
    Capability.RECORD_MEASUREMENT: _CLINICAL,
    Capability.RECORD_DIAGNOSIS: _PHYSICIAN,
    Capability.RECORD_MEDICATION: _CLINICAL,
    Capability.VIEW_AUDIT: frozenset({Role.CLINIC_ADMIN, Role.AUDITOR}),
    Capability.MANAGE_STAFF: frozenset({Role.CLINIC_ADMIN}),
    Capability.VIEW_PROTOCOLS: _ALL_STAFF,
    # Publishing a protocol version is the medical director's act: a clinic administrator.
    Capability.PUBLISH_PROTOCOL: frozenset({Role.CLINIC_ADMIN}),
    Capability.SCREEN_PATIENT: _CLINICAL,
    Capability.OVERRIDE_SCREENING: _PHYSICIAN,
    Capability.RECORD_CONSENT: _CLINICAL,
    Capability.WRITE_ORDER: _PHYSICIAN,
    Capability.SIGN_ORDER: _PHYSICIAN,
    # The independent double check of a high-alert infusion: a second clinician.
    Capability.VERIFY_ORDER: _CLINICAL,
    Capability.DISCONTINUE_ORDER: _PHYSICIAN,
    Capability.RUN_SIMULATION: _CLINICAL,
    Capability.CHART_SESSION: _CLINICAL,
    Capability.DISCHARGE_PATIENT: _CLINICAL,
    Capability.OVERRIDE_DISCHARGE: _PHYSICIAN,
    Capability.RECORD_FOLLOW_UP: frozenset({Role.PHYSICIAN, Role.NURSE, Role.FRONT_DESK}),
    Capability.VIEW_REPORTS: frozenset({Role.PHYSICIAN, Role.CLINIC_ADMIN, Role.AUDITOR}),
    # The front desk books, reschedules and cancels; clinicians see the calendar.
    Capability.BOOK_VISIT: frozenset({Role.FRONT_DESK, Role.CLINIC_ADMIN}),
    # The pre-visit checklist is asked by phone (front desk) or at the chair (clinicians).
    Capability.ANSWER_CHECKLIST: frozenset({Role.FRONT_DESK, Role.NURSE, Role.PHYSICIAN}),
    # Chairs, opening hours and closures of a site.
    Capability.MANAGE_SITES: frozenset({Role.CLINIC_ADMIN}),
    # The visit's billing summary: the desk bills, the physician signs off the codes.
    Capability.VIEW_BILLING: frozenset({Role.FRONT_DESK, Role.CLINIC_ADMIN, Role.PHYSICIAN}),
    Capability.VIEW_STOCK: frozenset({Role.PHYSICIAN, Role.NURSE, Role.CLINIC_ADMIN,
                                      Role.AUDITOR}),
}


def role_can(role: str, capability: Capability) -> bool:
    return role in CAPABILITIES[capability]
