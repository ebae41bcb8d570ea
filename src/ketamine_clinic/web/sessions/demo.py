"""Demo infusion sessions for the demo patients whose screening allows treatment: today's
chairs, one infusing, one in recovery, one just checked in, so that the board and the
bedside page have something to show.

Everything goes through the services (orders written, signed and double-checked, consent
recorded, the session charted at earlier clinical times), so the demo's records carry the
same checks and audit entries as real ones. Every name is invented.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.documents.services import consent_record
from ketamine_clinic.web.orders import services as orders
from ketamine_clinic.web.patients import services as patients
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import latest_weight
from ketamine_clinic.web.protocols.selectors import consent_current
from ketamine_clinic.web.protocols.services import protocol_current
from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

VITALS = {"systolic_bp_mmhg": 124, "diastolic_bp_mmhg": 78, "heart_rate_per_min": 74,
          "respiratory_rate_per_min": 14, "spo2_percent": 98, "etco2_mmhg": 38}
NO_DISSOCIATION = {1: 0, 2: 0, 6: 0, 7: 0, 15: 0, 22: 0}


def _order(patient: Patient, physician: Actor, nurse: Actor) -> Any:
    pv = protocol_current("clinic-standard")
    weight = latest_weight(patient)
    if weight is None:
        raise UsageError("weight", "no weight recorded")
    # The demo physician keeps every rate within the guideline's 1 mg/kg/h soft limit.
    kg = int(weight.number)
    order = orders.order_write(
        actor=physician, patient=patient, protocol_version=pv, vial_strength_mg_per_ml=50,
        bag="500 mg in 500 mL", start_rate=f"{min(60, kg - 20)} mg/h",
        max_rate=f"{min(100, kg)} mg/h",
        titration_step="10 mg/h", min_step_interval_min=15, planned_duration_min=240,
        planned_sessions=5, spacing_days=1,
        weight_kg=str(weight.value_number))
    orders.order_sign(actor=physician, order=order)
    orders.order_verify(actor=nurse, order=order, concentration_mg_per_ml="1",
                        pump_rate_ml_per_h=str(min(60, kg - 20)))
    if consent_current(patient, pv) is None:
        consent_record(actor=nurse, patient=patient, protocol_version=pv,
                       document_sha256=consent_for(pv).sha256, method="paper",
                       explained_by=physician.require_user(),
                       signed_at=timezone.now() - timedelta(days=1),
                       paper_attested=True, paper_reference="demo scan")
    # The screening's conditions ask for liver function tests: the demo has them in range.

    patients.measurement_record(actor=nurse, patient=patient, kind="liver_function_tests",
                                value_code="in_range",
                                measured_at=timezone.now() - timedelta(days=2))
    order.refresh_from_db()
    return order


def _walk(session: InfusionSession, nurse: Actor, t0: Any, upto: str) -> None:
    def at(minutes: float) -> Any:
        return t0 + timedelta(minutes=minutes)

    def key() -> str:
        return f"demo-{session.pk}-{TimelineEntry.objects.count()}"

    def event(name: str, minutes: float, **data: Any) -> None:
        services.session_event(actor=nurse, session=session, event=name, data=data,
                               occurred_at=at(minutes), idempotency_key=key())

    def observe(kind: str, minutes: float, **data: Any) -> None:
        services.session_observe(actor=nurse, session=session, kind=kind, data=data,
                                 occurred_at=at(minutes), idempotency_key=key())

    event("check_in", 0)
    if upto == "checked_in":
        return
    observe("vitals", 5, **VITALS)
    observe("pain", 6, nrs=7)
    observe("sedation", 7, score=5)
    observe("dissociation", 7, items=NO_DISSOCIATION)
    may_be_pregnant = session.patient.sex_at_birth in ("female", "intersex")
    event("pre_assessment", 10, iv_access_documented=True, iv_site="left forearm",
          escort_name=session.patient.escort_name,
          pregnancy_status="not_pregnant" if may_be_pregnant else "not_applicable")
    observe("premedication", 15, drug="glycopyrrolate", dose=0.2, unit="mg", route="IV")
    start = int(session.order.start_rate_text.split()[0])
    services.session_rate_set(actor=nurse, session=session, rate=f"{start} mg/h",
                              occurred_at=at(20), idempotency_key=key())
    for m, change in ((35, {}), (50, {"systolic_bp_mmhg": 138, "heart_rate_per_min": 88}),
                      (65, {"systolic_bp_mmhg": 146, "heart_rate_per_min": 92})):
        observe("vitals", m, **{**VITALS, **change})
    observe("sedation", 36, score=5)
    observe("dissociation", 37, items=NO_DISSOCIATION)
    services.session_rate_set(actor=nurse, session=session, rate=f"{start + 10} mg/h",
                              occurred_at=at(40), idempotency_key=key())
    observe("sedation", 56, score=4)
    observe("dissociation", 57, items={1: 1, 2: 1, 6: 0, 7: 1, 15: 0, 22: 0})
    observe("pain", 66, nrs=4)
    if upto == "infusing":
        return
    event("stop", 80)
    event("begin_recovery", 81)
    observe("vitals", 95, **VITALS)
    observe("pain", 95, nrs=4)
    observe("sedation", 95, score=5)
    observe("dissociation", 95, items=NO_DISSOCIATION)
    services.session_recovery_score(actor=nurse, session=session,
                                    score_name="aldrete_modified_1995",
                                    observed={"activity": 2, "respiration": 2,
                                              "consciousness": 2},
                                    occurred_at=at(96), idempotency_key=key())
    services.session_recovery_score(actor=nurse, session=session,
                                    score_name="padss_modified",
                                    observed={"ambulation": 2, "nausea_vomiting": 2},
                                    occurred_at=at(145), idempotency_key=key())


def demo_sessions() -> int:
    """Book and chart today's demo chairs once. Returns how many sessions were made."""
    if TimelineEntry.objects.filter(idempotency_key__startswith="demo-").exists():
        return 0  # made by an earlier demo run
    staff = {u.username: u for u in User.objects.filter(
        username__in=["dr.alvarez", "nurse.brooks", "nurse.chen"])}
    if len(staff) < 3:
        return 0
    physician = Actor(user=staff["dr.alvarez"], client_address="demo")
    nurses = {"denver": Actor(user=staff["nurse.brooks"], client_address="demo"),
              "boulder": Actor(user=staff["nurse.chen"], client_address="demo")}
    now = timezone.now()
    plans = [("1", now - timedelta(minutes=85), "infusing"),
             ("2", now - timedelta(minutes=160), "recovering"),
             ("4", now - timedelta(minutes=5), "checked_in")]
    made = 0
    screened = Patient.objects.filter(screenings__isnull=False).distinct()
    for patient in screened.select_related("site").order_by("mrn"):
        if made == len(plans):
            break
        chair, t0, upto = plans[made]
        nurse = nurses.get(patient.site.code)
        if nurse is None:
            continue
        try:
            with transaction.atomic():
                order = _order(patient, physician, nurse)
                session = services.session_schedule(actor=nurse, order=order,
                                                    scheduled_for=t0, chair=chair)
                _walk(session, nurse, t0, upto)
        except UsageError:  # also the orders' LimitRefusal
            continue  # not eligible under the protocol (the screening said why)
        made += 1
    return made
