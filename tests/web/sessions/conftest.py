"""A verified order for Ana under the shipped clinic-standard protocol, and helpers to
walk a session through its states with the services (as the pages do)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.clinical.dosing import InfusionPlan, WeightMeasurement, check_order
from ketamine_clinic.clinical.protocol import condition_vocabulary
from ketamine_clinic.clinical.units import parse_bag, parse_rate


@dataclass
class Clinic:
    cast: Any
    protocol_version: Any
    series: Any
    order: Any
    session: Any
    consent: Any

    def actor(self, user: Any) -> Any:
        from ketamine_clinic.web.audit.services import Actor

        return Actor(user=user, client_address="127.0.0.1")


def screening_answers() -> dict[str, Any]:
    """What the nurse answers that the registry does not hold: the medication list
    reviewed, every condition asked and absent, the Budapest criteria met."""
    return {"medications_complete": True, "conditions": [],
            "conditions_absent": sorted(condition_vocabulary()),
            "budapest": {"disproportionate_pain": True, "no_better_diagnosis": True,
                         "symptoms": ["allodynia", "oedema", "temperature_asymmetry"],
                         "signs": ["hyperalgesia_pinprick", "skin_colour_asymmetry"]}}


def screen(cast: Any, patient: Any, pv: Any) -> Any:
    """Screen ``patient`` under ``pv`` through the protocols services, from registry facts:
    a CRPS diagnosis and, for a patient who could be pregnant, a negative test yesterday
    (not today: the start gate asks for today's pregnancy status itself)."""
    from ketamine_clinic.clinical.screening import Decision
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.protocols.selectors import ALLOWS_TREATMENT
    from ketamine_clinic.web.protocols.services import screening_record

    doctor, nurse = Actor(user=cast.alice), Actor(user=cast.bob)
    yesterday = timezone.now() - timedelta(days=1)
    if not patient.diagnoses.exists():
        patients.diagnosis_record(actor=doctor, patient=patient, system="icd10cm",
                                  code="G90.512", diagnosed_on=yesterday.date())
    if patient.sex_at_birth in ("female", "intersex"):
        patients.measurement_record(actor=nurse, patient=patient, kind="pregnancy_status",
                                    value_code="not_pregnant", measured_at=yesterday)
    screening = screening_record(actor=nurse, patient=patient, protocol_version=pv,
                                 answers=screening_answers())
    assert Decision(screening.decision) in ALLOWS_TREATMENT, screening.reasons
    return screening


def make_order(cast: Any, patient: Any, pv: Any, *, weight_kg: str = "70",
               planned_sessions: int = 5) -> Any:
    """An active order (signed by Alice, verified by Bob) for ``patient``, with the core's
    order check stored as the orders area will store it."""
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.orders.models import Order, Series
    from ketamine_clinic.web.orders.services import medication_lines
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.sessions.rules import rules_for_version

    nurse = Actor(user=cast.bob)
    weight = patients.measurement_record(
        actor=nurse, patient=patient, kind="weight_kg", value_number=float(weight_kg),
        measured_at=timezone.now() - timedelta(days=1))
    # The screening's conditions ask for liver function tests under clinic-standard.
    patients.measurement_record(actor=nurse, patient=patient, kind="liver_function_tests",
                                value_code="in_range",
                                measured_at=timezone.now() - timedelta(days=1))
    screening = screen(cast, patient, pv)
    series = Series.objects.create(patient=patient, protocol_version=pv, screening=screening,
                                   planned_sessions=planned_sessions, spacing_days=1,
                                   created_by=cast.alice)
    rules = rules_for_version(pv).dosing
    plan = InfusionPlan(start_rate=parse_rate("60 mg/h"), max_rate=parse_rate("100 mg/h"),
                        titration_step=parse_rate("10 mg/h"),
                        min_step_interval_min=Fraction(15), planned_duration_h=Fraction(4),
                        sessions=planned_sessions)
    check = check_order(rules=rules, weight=WeightMeasurement(Fraction(weight_kg),
                                                              timezone.localdate()),
                        bag=parse_bag("500 mg in 500 mL"), plan=plan, on=timezone.localdate())
    now = timezone.now()
    protocol = pv.protocol()
    signed = [{"quantity": c.limit.quantity, "reason_code": "titrated-to-effect",
               "free_text": "titrated under physician observation"}
              for c in check.needs_override]
    return Order.objects.create(
        series=series, patient=patient, protocol_version=pv, status="active",
        drug="racemic_ketamine", vial_strength_mg_per_ml=50, bag_drug_mg=500, bag_volume_ml=500,
        dosing_basis="fixed_mg_per_h", dosing_weight_kg=weight_kg, weight_measurement=weight,
        weight_rule="actual", start_rate_text="60 mg/h", titration_step_text="10 mg/h",
        max_rate_text="100 mg/h", min_step_interval_min=15, planned_duration_min=240,
        premedications=medication_lines(None, protocol.premedications, "premedications"),
        rescue_medications=medication_lines(None, protocol.rescue_medications,
                                            "rescue_medications"),
        overrides=signed, computed=check.to_dict(), written_by=cast.alice, signed_at=now,
        signed_by=cast.alice,
        verified_at=now, verified_by=cast.bob)


def make_consent(cast: Any, patient: Any, pv: Any) -> Any:
    from ketamine_clinic.web.protocols.models import Consent

    return Consent.objects.create(patient=patient, protocol_version=pv,
                                  document_sha256="c" * 64, method="paper",
                                  paper_reference="scan 1", explained_by=cast.alice,
                                  signed_at=timezone.now() - timedelta(days=1))


@pytest.fixture
def clinic(cast: Any) -> Clinic:
    return build_clinic(cast)


def build_clinic(cast: Any) -> Clinic:
    """Ana's verified order under clinic-standard, her consent, and a session booked a
    minute ago (the ``clinic`` fixture; other folders' tests call this)."""
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
    from ketamine_clinic.web.sessions import services

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    order = make_order(cast, cast.ana, pv)
    consent = make_consent(cast, cast.ana, pv)
    session = services.session_schedule(
        actor=Actor(user=cast.bob), order=order,
        scheduled_for=timezone.now() - timedelta(minutes=1), chair="3")
    return Clinic(cast, pv, order.series, order, session, consent)


def key() -> str:
    return uuid.uuid4().hex


VITALS = {"systolic_bp_mmhg": 122, "diastolic_bp_mmhg": 78, "heart_rate_per_min": 72,
          "respiratory_rate_per_min": 14, "spo2_percent": 98, "etco2_mmhg": 38}
# CADSS-6 with no dissociative symptom, and with one (the clinic-standard target).
CADSS_NONE = {str(i): 0 for i in (1, 2, 6, 7, 15, 22)}
CADSS_SOME = {**CADSS_NONE, "1": 1}


class Walk:
    """Drive one session with the services at chosen clinical times (``t0`` + minutes)."""

    def __init__(self, clinic: Clinic, t0: datetime | None = None) -> None:
        self.c = clinic
        self.s = clinic.session
        self.nurse = clinic.actor(clinic.cast.bob)
        self.t0 = t0 or timezone.now() - timedelta(hours=5)

    def at(self, minutes: float) -> datetime:
        return self.t0 + timedelta(minutes=minutes)

    def event(self, event: str, minutes: float, **data: Any) -> Any:
        from ketamine_clinic.web.sessions import services

        return services.session_event(actor=self.nurse, session=self.s, event=event,
                                      data=data, occurred_at=self.at(minutes),
                                      idempotency_key=key()).entry

    def observe(self, kind: str, minutes: float, **data: Any) -> Any:
        from ketamine_clinic.web.sessions import services

        return services.session_observe(actor=self.nurse, session=self.s, kind=kind,
                                        data=data, occurred_at=self.at(minutes),
                                        idempotency_key=key()).entry

    def rate(self, rate: str, minutes: float, **kw: Any) -> Any:
        from ketamine_clinic.web.sessions import services

        return services.session_rate_set(actor=self.nurse, session=self.s, rate=rate,
                                         occurred_at=self.at(minutes), idempotency_key=key(),
                                         **kw).entry

    def give(self, drug: str, minutes: float, dose: float, unit: str = "mg",
             route: str = "IV") -> Any:
        from ketamine_clinic.web.sessions import services

        return services.session_give(actor=self.nurse, session=self.s, drug=drug, dose=dose,
                                     unit=unit, route=route, occurred_at=self.at(minutes),
                                     idempotency_key=key()).entry

    def scores(self, minutes: float, moaas: int = 5,
               cadss: dict[str, int] | None = None) -> None:
        """Sedation and dissociation scored at ``minutes`` (an increase needs both)."""
        self.observe("sedation", minutes, score=moaas)
        self.observe("dissociation", minutes, items=cadss or CADSS_NONE)

    def ready(self) -> None:
        """Checked in, assessed, vitals, pain and scores taken, premedicated (t0 .. t0+20)."""
        self.event("check_in", 0)
        self.observe("vitals", 5, **VITALS)
        self.observe("pain", 6, nrs=7)
        self.scores(7)
        self.event("pre_assessment", 10, iv_access_documented=True, iv_site="left forearm",
                   escort_name="Luis Ruiz", pregnancy_status="not_pregnant")
        self.give("glycopyrrolate", 20, 0.2)

    def infusing(self) -> None:
        self.ready()
        self.rate("60 mg/h", 30)

    def state(self) -> str:
        self.s.refresh_from_db()
        return str(self.s.state)


@pytest.fixture
def walk(clinic: Clinic) -> Walk:
    return Walk(clinic)


def today() -> date:
    return timezone.localdate()
