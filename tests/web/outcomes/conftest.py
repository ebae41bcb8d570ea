"""Fixtures of the outcomes area: series written straight into the data model.

Sessions, pain entries and adverse events are TimelineEntry rows in the shape the sessions
area's payload contract (web/sessions/schemas.py) defines, so these tests read the data the
way the outcomes area does, independent of how the sessions pages write it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

DENVER = ZoneInfo("America/Denver")

PROTOCOL_TOML = """
name = "{name}"
version = {version}
title = "Test protocol {name}"
{extra}
"""


def make_pv(name: str = "test-standard", version: int = 1, extra: str = "") -> Any:
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    text = PROTOCOL_TOML.format(name=name, version=version, extra=extra)
    return ProtocolVersion.objects.create(name=name, version=version, title=f"Test {name}",
                                          toml_text=text,
                                          sha256=hashlib.sha256(text.encode()).hexdigest())


def make_patient(cast: Any, site: Any, mrn: str, given: str, family: str,
                 code: str = "G90.512") -> Any:
    from ketamine_clinic.clinical.codes import lookup_diagnosis
    from ketamine_clinic.web.patients.models import Diagnosis, Patient

    p = Patient.objects.create(site=site, mrn=mrn, given_name=given, family_name=family,
                               date_of_birth=date(1980, 1, 1), sex_at_birth="female",
                               created_by=cast.carol)
    entry = lookup_diagnosis("icd10cm", code)
    Diagnosis.objects.create(patient=p, system="icd10cm", code=entry.code,
                             display=entry.display, group=entry.group,
                             diagnosed_on=date(2020, 1, 1), recorded_by=cast.alice)
    return p


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), DENVER)


@dataclass
class Built:
    series: Any
    sessions: list[Any] = field(default_factory=list)


def make_series(cast: Any, pv: Any, patient: Any, start: date,
                pains: list[tuple[int | None, int | None]],
                adverse: dict[int, list[str]] | None = None, *, planned: int | None = None,
                kind: str = "loading") -> Built:
    """A series whose visits are on consecutive days from ``start``; ``pains`` holds
    (before, at the end) per visit; each visit has an infusion start and a stop."""
    from ketamine_clinic.web.orders.models import Order, Series
    from ketamine_clinic.web.patients.models import Measurement
    from ketamine_clinic.web.protocols.models import Screening
    from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

    weight = Measurement.objects.create(patient=patient, kind="weight_kg",
                                        value_number=Decimal("70.00"),
                                        measured_at=at(start, 7), recorded_by=cast.bob)
    screening = Screening.objects.create(
        patient=patient, protocol_version=pv, facts={}, facts_sha256="0" * 64,
        decision="eligible", reasons=[], result={}, screened_by=cast.alice,
        valid_until=start + timedelta(days=90))
    series = Series.objects.create(patient=patient, protocol_version=pv, screening=screening,
                                   planned_sessions=planned or len(pains), spacing_days=1,
                                   kind=kind, created_by=cast.alice)
    order = Order.objects.create(
        series=series, patient=patient, protocol_version=pv, status="active",
        drug="racemic_ketamine", vial_strength_mg_per_ml=Decimal("10"),
        bag_drug_mg=Decimal("250"), bag_volume_ml=Decimal("250"),
        dosing_basis="fixed_mg_per_h", dosing_weight_kg=Decimal("70"),
        weight_measurement=weight, weight_rule="actual", start_rate_text="20 mg/h",
        titration_step_text="5 mg/h", max_rate_text="40 mg/h", min_step_interval_min=30,
        planned_duration_min=240, computed={}, written_by=cast.alice,
        signed_at=timezone.now(), signed_by=cast.alice, verified_at=timezone.now(),
        verified_by=cast.bob)
    built = Built(series)
    for i, (before, after) in enumerate(pains):
        day = start + timedelta(days=i)
        s = InfusionSession.objects.create(order=order, series=series, patient=patient,
                                           site=patient.site, visit_number=i + 1,
                                           scheduled_for=at(day, 9), state="discharged",
                                           created_by=cast.bob)
        built.sessions.append(s)

        def entry(kind: str, when: datetime, payload: dict[str, Any], s: Any = s) -> Any:
            return TimelineEntry.objects.create(session=s, kind=kind, occurred_at=when,
                                                payload=payload, recorded_by=cast.bob)

        if before is not None:
            entry("pain", at(day, 9, 5), {"nrs": before, "phase": "pre"})
        entry("infusion_start", at(day, 9, 30),
              {"rate_mg_per_h": 20, "pump_rate_ml_per_h": 20})
        for kind in (adverse or {}).get(i + 1, []):
            entry("adverse_event", at(day, 10), {"type": kind, "severity": "mild"})
        entry("stop", at(day, 13, 30), {"reason": "planned end"})
        if after is not None:
            entry("pain", at(day, 13, 35), {"nrs": after, "phase": "end"})
    charted(built)
    return built


def charted(built: Built) -> None:
    """Work out the series' session summaries, as the sessions services do when they chart
    (these fixtures write the timeline rows themselves)."""
    from ketamine_clinic.web.sessions.summaries import outcome_summaries_refresh

    outcome_summaries_refresh([built.series.pk])


def answer(cast: Any, built: Built, point: str, pain: int, *, worst: int | None = None,
           mme: float | None = None, session: Any = "last", due: date | None = None,
           answered: bool = True) -> Any:
    """A follow-up at ``point`` (session-anchored for baseline/day1) with its answer."""
    from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse

    if session == "last":
        session = built.sessions[-1] if point in ("day1",) else (
            built.sessions[0] if point == "baseline" else None)
    series = built.series
    fu = FollowUp.objects.create(patient=series.patient, series=series, session=session,
                                 point=point, due_on=due or date(2025, 3, 1))
    if answered:
        FollowUpResponse.objects.create(
            follow_up=fu, answered_at=at(fu.due_on, 12), pain_average_nrs=pain,
            pain_worst_nrs=worst if worst is not None else min(10, pain + 1),
            opioid_mme_per_day=None if mme is None else Decimal(str(mme)),
            entered_by=cast.bob)
        answered_now(series)
    return fu


def answered_now(series: Any) -> None:
    """Work out the series' follow-up cells, as the services do when they record an
    answer (these fixtures write the answers themselves)."""
    from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh

    followup_summaries_refresh([series.pk])


@pytest.fixture
def pv(cast: Any) -> Any:
    return make_pv()


@dataclass
class HandCohort:
    """Four Denver series and one at Boulder, with the numbers written out in the test."""

    p1: Built
    p2: Built
    p3: Built
    p4: Built
    boulder: Built


@pytest.fixture
def hand_cohort(cast: Any, pv: Any) -> HandCohort:
    alt = make_pv("alt-protocol")
    d = cast.denver
    p1 = make_patient(cast, d, "DEN-11", "Uma", "Crane")                  # CRPS
    p2 = make_patient(cast, d, "DEN-12", "Vic", "Dorn")                   # CRPS
    p3 = make_patient(cast, d, "DEN-13", "Wes", "Ebb", code="M79.7")      # other
    p4 = make_patient(cast, d, "DEN-14", "Xia", "Fenn", code="G89.4")     # other
    z = make_patient(cast, cast.boulder, "BOU-11", "Yan", "Gale")

    s1 = make_series(cast, pv, p1, date(2025, 2, 3), [(8, 5), (6, 4), (5, 3)],
                     {2: ["nausea_vomiting"]})
    answer(cast, s1, "baseline", 8, mme=60)
    answer(cast, s1, "day1", 6, session=s1.sessions[0])  # after visit 1: not a series point
    answer(cast, s1, "day1", 4)
    answer(cast, s1, "week1", 4)
    answer(cast, s1, "week2", 6)
    answer(cast, s1, "week4", 7, mme=45)

    s2 = make_series(cast, pv, p2, date(2025, 2, 10), [(6, 3), (4, 2)])
    answer(cast, s2, "baseline", 6, mme=30)
    answer(cast, s2, "day1", 2)
    answer(cast, s2, "week1", 3)
    answer(cast, s2, "week2", 3, mme=30)

    s3 = make_series(cast, alt, p3, date(2025, 3, 3), [(9, 8), (8, 7)],
                     {1: ["hypertension"], 2: ["other"]})
    answer(cast, s3, "week1", 8)

    s4 = make_series(cast, pv, p4, date(2025, 4, 7), [(5, 2)])
    answer(cast, s4, "week1", 2)
    answer(cast, s4, "week2", 4)
    answer(cast, s4, "week4", 5)

    sb = make_series(cast, pv, z, date(2025, 2, 3), [(7, 1)])
    answer(cast, sb, "week1", 1)
    return HandCohort(s1, s2, s3, s4, sb)
