"""A charted record for Ana (Denver) through the real services, and FHIR helpers.

Ana gets a weight, a height, a CRPS diagnosis, an allergy, a consent, a verified order
(glycopyrrolate premedication, midazolam and ondansetron rescue lines) and one session
walked from check-in to discharge: rate 60 mg/h, a titration to 70 mg/h, a pause and a
resume, vital signs, MOAA/S, CADSS-6, pain scores, a rescue dose of ondansetron, a
recovery score and the discharge; then a follow-up answer. Zed (Boulder) has a weight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from tests.web.sessions.conftest import (  # noqa: F401  (fixtures used here too)
    VITALS,
    Clinic,
    Walk,
    clinic,
    key,
    make_consent,
    make_order,
    walk,
)

DENVER = ZoneInfo("America/Denver")


def local(at: datetime) -> str:
    """An instant as the API writes it: the site's offset, to the second."""
    return at.astimezone(DENVER).isoformat(timespec="seconds")


@dataclass
class Charted:
    clinic: Clinic
    walk: Walk
    entries: dict[str, Any]
    weight: Any
    height: Any
    diagnosis: Any
    allergy: Any
    response: Any

    @property
    def cast(self) -> Any:
        return self.clinic.cast

    @property
    def session(self) -> Any:
        return self.clinic.session

    @property
    def order(self) -> Any:
        return self.clinic.order


@pytest.fixture
def charted(cast: Any) -> Charted:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
    from ketamine_clinic.web.patients import services as patients
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
    from ketamine_clinic.web.sessions import services

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    order = make_order(cast, cast.ana, pv)
    order.rescue_medications = [
        {"drug": "midazolam", "dose": 2.0, "unit": "mg", "route": "IV",
         "indication": "distressing emergence reaction"},
        {"drug": "ondansetron", "dose": 4.0, "unit": "mg", "route": "IV",
         "indication": "nausea"}]
    order.save(update_fields=["rescue_medications"])
    consent = make_consent(cast, cast.ana, pv)
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=6)
    session = services.session_schedule(actor=Actor(user=cast.bob), order=order,
                                        scheduled_for=t0, chair="3")
    clin = Clinic(cast, pv, order.series, order, session, consent)
    w = Walk(clin, t0=t0)
    nurse = Actor(user=cast.bob)
    e: dict[str, Any] = {}
    w.event("check_in", 0)
    e["vitals_pre"] = w.observe("vitals", 5, **VITALS, temperature_c=36.8)
    e["pain_pre"] = w.observe("pain", 6, nrs=7, phase="pre")
    w.event("pre_assessment", 10, iv_access_documented=True, iv_site="left forearm",
               escort_name="Luis Ruiz", pregnancy_status="not_pregnant")
    e["premed"] = w.observe("premedication", 20, drug="glycopyrrolate", dose=0.2,
                               unit="mg", route="IV")
    e["start"] = w.rate("60 mg/h", 30)
    e["sedation"] = w.observe("sedation", 40, scale="moaas", score=4)
    e["vitals_during"] = w.observe("vitals", 45, **VITALS)
    # An increase needs fresh sedation and dissociation scores (the bedside rules).
    e["dissociation_before"] = w.observe("dissociation", 46, scale="cadss6",
                                         items={k: 0 for k in ("1", "2", "6", "7", "15", "22")})
    e["titrate"] = w.rate("70 mg/h", 60)
    e["dissociation"] = w.observe(
        "dissociation", 70, scale="cadss6",
        items={"1": 1, "2": 0, "6": 2, "7": 1, "15": 0, "22": 1}, total=5)
    e["rescue"] = w.observe("rescue_medication", 75, drug="ondansetron", dose=4,
                               unit="mg", route="IV", indication="nausea")
    e["pause"] = w.event("pause", 90, reason="patient asked for a break")
    e["resume"] = w.event("resume", 100)
    e["stop"] = w.event("stop", 150)
    e["pain_end"] = w.observe("pain", 152, nrs=3, phase="end")
    w.event("begin_recovery", 151)
    e["vitals_recovery"] = w.observe("vitals", 155, **VITALS)
    w.observe("sedation", 156, scale="moaas", score=5)
    w.observe("dissociation", 156, scale="cadss6",
              items={k: 0 for k in ("1", "2", "6", "7", "15", "22")})
    e["recovery"] = services.session_recovery_score(
        actor=nurse, session=session, score_name="aldrete_modified_1995",
        observed={"activity": 2, "respiration": 2, "consciousness": 2},
        occurred_at=w.at(200), idempotency_key=key()).entry
    e["home"] = services.session_recovery_score(
        actor=nurse, session=session, score_name="padss_modified",
        observed={"ambulation": 2, "nausea_vomiting": 2},
        occurred_at=w.at(212), idempotency_key=key()).entry
    e["discharge"] = services.session_discharge(
        actor=nurse, session=session, escort_name="Luis Ruiz", instructions_given=True,
        occurred_at=w.at(215), idempotency_key=key()).entry
    session.refresh_from_db()
    weight = cast.ana.measurements.get(kind="weight_kg")
    height = patients.measurement_record(actor=nurse, patient=cast.ana, kind="height_cm",
                                         value_number=165, measured_at=t0)
    diagnosis = cast.ana.diagnoses.get()
    allergy = patients.allergy_record(actor=nurse, patient=cast.ana, substance="latex",
                                      reaction="hives", severity="moderate")
    follow_up = FollowUp.objects.filter(session=session, point="day1").first() or \
        FollowUp.objects.create(patient=cast.ana, series=order.series, session=session,
                                point="day1", due_on=timezone.localdate())
    response = FollowUpResponse.objects.create(
        follow_up=follow_up, answered_at=t0 + timedelta(days=1), pain_average_nrs=3,
        pain_worst_nrs=5, global_impression=2, opioid_mme_per_day=None,
        entered_by=cast.carol)
    patients.measurement_record(actor=Actor(user=cast.oscar), patient=cast.zed,
                                kind="weight_kg", value_number=90, measured_at=t0)
    return Charted(clin, w, e, weight, height, diagnosis, allergy, response)


def get(client: Client, url: str, **headers: str) -> tuple[int, Any]:
    response = client.get(url, **{f"HTTP_{k.upper().replace('-', '_')}": v
                                  for k, v in headers.items()})
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, json.loads(body) if body else None


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def issue_token(user: Any, scope: str = "fhir_read", **fields: Any) -> str:
    from ketamine_clinic.web.accounts.models import ApiToken

    token, raw = ApiToken.issue(user, label="test")
    ApiToken.objects.filter(pk=token.pk).update(scope=scope, **fields)
    return raw
