"""Issue 11, through the services and the pages: each finding a clinic's staff reported at
the chair is refused (or raises its alarm) with a sentence, and nothing is charted."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.errors import Refusal, UsageError
from ketamine_clinic.web.sessions.models import Alarm, TimelineEntry
from tests.web.sessions.conftest import CADSS_NONE, VITALS, Walk, key


def _page(client: Client, walk: Walk) -> str:
    return html.unescape(client.get(reverse("session_detail", args=[walk.s.pk]))
                         .content.decode())


def _assessed(walk: Walk, vitals: dict[str, Any] | None = None,
              pregnancy: str = "not_pregnant") -> None:
    walk.event("check_in", 0)
    walk.observe("vitals", 5, **(vitals or VITALS))
    walk.observe("pain", 6, nrs=7)
    walk.scores(7)
    walk.event("pre_assessment", 10, iv_access_documented=True, escort_name="Luis Ruiz",
               pregnancy_status=pregnancy)


def _give_on_page(client: Client, walk: Walk, drug: str, dose: str) -> Any:
    from ketamine_clinic.web.sessions.selectors import snapshot

    lines = snapshot(walk.s).view.order.lines
    i = next(n for n, ln in enumerate(lines) if ln.drug == drug)
    line = lines[i]
    return client.post(reverse("session_give", args=[walk.s.pk]), {
        f"give{i}-drug": line.drug, f"give{i}-unit": line.unit, f"give{i}-route": line.route,
        f"give{i}-dose": dose, f"give{i}-idempotency_key": key()})


@pytest.mark.parametrize("status", ["pregnant", "unknown"])
def test_finding_1_pregnancy_on_the_day_stops_the_session_before_any_drug(
        walk: Walk, client: Client, status: str) -> None:
    _assessed(walk, pregnancy=status)
    client.force_login(walk.c.cast.bob)
    response = _give_on_page(client, walk, "glycopyrrolate", "0.2")
    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert "pregnan" in text
    assert "[clinic policy]" in text
    assert walk.state() == "pre_assessment_complete"
    with pytest.raises(Refusal):
        walk.rate("60 mg/h", 30)


def test_finding_2_a_high_baseline_pressure_stops_premedication_and_start(
        walk: Walk, client: Client) -> None:
    _assessed(walk, vitals={**VITALS, "systolic_bp_mmhg": 205, "diastolic_bp_mmhg": 125,
                            "heart_rate_per_min": 130})
    client.force_login(walk.c.cast.bob)
    page = _page(client, walk)
    assert 'data-code="start_limit:systolic_bp_mmhg"' in page
    response = _give_on_page(client, walk, "glycopyrrolate", "0.2")
    assert response.status_code == 400
    assert "Systolic blood pressure 205 mmHg" in html.unescape(response.content.decode())
    assert not walk.s.entries.filter(kind="premedication").exists()


def test_finding_3_deep_sedation_alarms_and_holds_the_rate(walk: Walk) -> None:
    walk.infusing()
    walk.observe("sedation", 44, score=1)
    walk.observe("dissociation", 44, items={k: 4 for k in CADSS_NONE})
    assert Alarm.objects.filter(session=walk.s, kind="sedation_deep").exists()
    with pytest.raises(Refusal) as err:
        walk.rate("70 mg/h", 45)
    text = " ".join(err.value.reasons)
    assert "MOAA/S 1" in text
    assert "titration target" in text
    assert not walk.s.entries.filter(kind="rate_change").exists()


def test_finding_4_a_ketamine_allergy_is_shown_and_stops_the_session(
        walk: Walk, client: Client) -> None:
    from ketamine_clinic.web.patients import services as patients

    patients.allergy_record(actor=walk.c.actor(walk.c.cast.bob), patient=walk.c.cast.ana,
                            substance="Ketalar", reaction="anaphylaxis", severity="severe")
    _assessed(walk)
    client.force_login(walk.c.cast.bob)
    page = _page(client, walk)
    assert "Ketalar (anaphylaxis)" in page
    with pytest.raises(Refusal) as err:
        walk.give("glycopyrrolate", 20, 0.2)
    # The allergy also makes the screening out of date (an exclusion since issue 12).
    assert "ketamine_allergy" in err.value.codes


def test_finding_5_the_signed_maximum_needs_a_physician_at_the_bedside(
        walk: Walk, client: Client) -> None:
    from ketamine_clinic.clinical.limit_checks import override_reasons

    walk.infusing()
    t = 45
    for rate in ("70 mg/h", "80 mg/h", "90 mg/h", "100 mg/h"):
        walk.scores(t - 1)
        walk.rate(rate, t)  # inside the signed titration: nothing more is asked
        t += 16
    walk.scores(t - 1)
    with pytest.raises(Refusal, match="signed order's limit of 100 mg/h"):
        walk.rate("110 mg/h", t, override_code=override_reasons()[0].code,
                  override_text="nurse decided")
    alice = walk.c.cast.alice
    alice.set_password("cosign-at-the-chair-2026")
    alice.save()
    client.force_login(walk.c.cast.bob)
    walk.s.refresh_from_db()
    data = {"rate": "110 mg/h", "idempotency_key": key(),
            "expected_version": walk.s.version,
            "occurred_at": timezone.localtime(walk.at(t)).strftime("%Y-%m-%dT%H:%M"),
            "physician_username": "alice", "physician_password": "wrong"}
    wrong = client.post(reverse("session_rate", args=[walk.s.pk]), data)
    assert wrong.status_code == 400
    text = html.unescape(wrong.content.decode())
    assert "user name or password is not right" in text
    data.update(physician_password="cosign-at-the-chair-2026", idempotency_key=key(),
                physician_reason="pain 9/10 at 100 mg/h; I am at the chair")
    ok = client.post(reverse("session_rate", args=[walk.s.pk]), data)
    assert ok.status_code == 302, re.findall(r"Not recorded[^<]*", ok.content.decode())
    entry = TimelineEntry.objects.filter(session=walk.s, kind="rate_change").latest("id")
    assert entry.payload["physician"]
    assert "co-signed at the bedside" in entry.payload["override_text"]


@pytest.mark.parametrize(("drug", "dose", "kind", "why"), [
    ("midazolam", 20, "rescue_medication", "above the ordered dose of 2 mg"),
    ("ketamine", 50, "rescue_medication", "given only as the ordered infusion"),
    ("lorazepam", 1, "rescue_medication", "is not on the signed order"),
])
def test_finding_6_drugs_are_given_from_the_order_only(walk: Walk, drug: str, dose: int,
                                                       kind: str, why: str) -> None:
    walk.infusing()
    before = TimelineEntry.objects.filter(session=walk.s).count()
    with pytest.raises(Refusal, match=why):
        walk.observe(kind, 40, drug=drug, dose=dose, unit="mg", route="IV")
    assert TimelineEntry.objects.filter(session=walk.s).count() == before


def test_finding_6_the_order_list_is_on_the_page_and_gives_the_ordered_dose(
        walk: Walk, client: Client) -> None:
    walk.infusing()
    client.force_login(walk.c.cast.bob)
    page = _page(client, walk)
    assert 'data-drug="midazolam"' in page
    assert "at most 2 doses, 5 min apart" in page
    response = _give_on_page(client, walk, "midazolam", "2")
    assert response.status_code == 302
    entry = TimelineEntry.objects.get(session=walk.s, kind="rescue_medication")
    assert entry.payload["dose_number"] == 1
    soon = _give_on_page(client, walk, "midazolam", "2")
    assert soon.status_code == 400
    assert "the order allows the next one 5 min later" in html.unescape(
        soon.content.decode())


@pytest.mark.parametrize(("change", "kind"), [({"spo2_percent": 45}, "vital_low"),
                                              ({"heart_rate_per_min": 18}, "vital_low"),
                                              ({"systolic_bp_mmhg": 38,
                                                "diastolic_bp_mmhg": 20}, "vital_low")])
def test_finding_7_critical_values_are_charted_and_alarm(walk: Walk, change: dict[str, int],
                                                         kind: str) -> None:
    walk.infusing()
    entry = walk.observe("vitals", 40, **{**VITALS, **change})
    assert entry.pk
    assert Alarm.objects.filter(session=walk.s, kind=kind, entry=entry).exists()


def test_finding_7_only_impossible_values_are_refused(walk: Walk) -> None:
    walk.infusing()
    with pytest.raises(UsageError) as err:
        walk.observe("vitals", 40, **{**VITALS, "systolic_bp_mmhg": 300,
                                      "diastolic_bp_mmhg": 20})
    assert err.value.field == "diastolic_bp_mmhg"


def test_finding_8_rises_against_the_baseline_and_capnography_alarm(walk: Walk) -> None:
    walk.infusing()
    walk.observe("vitals", 40, **{**VITALS, "systolic_bp_mmhg": 176,
                                  "diastolic_bp_mmhg": 104, "heart_rate_per_min": 112})
    kinds = set(Alarm.objects.filter(session=walk.s).values_list("detail__key", flat=True))
    assert kinds == {"vital_rise:systolic_bp_mmhg", "vital_rise:diastolic_bp_mmhg",
                     "vital_rise:heart_rate_per_min"}
    walk.observe("vitals", 42, **{k: v for k, v in VITALS.items() if k != "etco2_mmhg"})
    assert Alarm.objects.filter(session=walk.s, kind="etco2_missing").exists()


def test_finding_10_missing_liver_tests_stop_the_session(walk: Walk) -> None:
    from ketamine_clinic.web.patients import services as patients

    lft = walk.c.cast.ana.measurements.get(kind="liver_function_tests")
    patients.record_mark_in_error(actor=walk.c.actor(walk.c.cast.bob), record=lft,
                                  reason="belongs to another patient")
    with pytest.raises(Refusal) as err:
        walk.ready()
    assert err.value.codes == ("test:liver_function_tests",)


def test_finding_11_a_weight_in_pounds_or_impossible_is_not_taken_as_kilograms(
        walk: Walk) -> None:
    from ketamine_clinic.web.patients import services as patients

    nurse = walk.c.actor(walk.c.cast.bob)
    ana = walk.c.cast.ana
    with pytest.raises(UsageError, match=r"It looks like pounds: 154 lb is 69\.9 kg"):
        patients.measurement_record(actor=nurse, patient=ana, kind="weight_kg",
                                    value_number=154, measured_at=timezone.now())
    with pytest.raises(UsageError, match="7 kg is below 25 kg"):
        patients.measurement_record(actor=nurse, patient=ana, kind="weight_kg",
                                    value_number=7, measured_at=timezone.now(),
                                    confirmed=True)
    kept = patients.measurement_record(actor=nurse, patient=ana, kind="weight_kg",
                                       value_number=84, measured_at=timezone.now(),
                                       confirmed=True)
    assert kept.value_number == 84


def test_finding_5_the_order_form_suggests_a_maximum_inside_the_soft_limits(
        walk: Walk, client: Client) -> None:
    from tests.web.sessions.conftest import screen

    screen(walk.c.cast, walk.c.cast.ana, walk.c.protocol_version)  # for a new series
    client.force_login(walk.c.cast.alice)
    page = client.get(reverse("order_new", args=[walk.c.cast.ana.pk]),
                      {"protocol_version": walk.c.protocol_version.pk}).content.decode()
    # 70 kg: 70 mg/h is 1 mg/kg/h, the protocol's soft limit [S6].
    assert 'name="max_rate" value="70 mg/h"' in page


def test_a_refusal_leaves_a_trail(walk: Walk) -> None:
    from ketamine_clinic.web.audit.models import AuditEntry

    walk.infusing()
    with pytest.raises(Refusal):
        walk.give("ketamine", 40, 50)
    entry = AuditEntry.objects.filter(action="session.refused").latest("id")
    assert "ordered infusion" in entry.detail["reasons"][0]
    assert timezone.now() - entry.at < timedelta(minutes=5)


def test_the_prediction_of_a_session_long_past_is_bounded(walk: Walk) -> None:
    """A session stopped weeks ago predicts over the infusion and as long again after the
    stop, not a two-minute grid up to today (the page was 27 MB; issue 19)."""
    from ketamine_clinic.web.sessions.pk_bridge import GRID_STEP, predicted_concentration
    from ketamine_clinic.web.sessions.selectors import snapshot

    walk.infusing()  # 60 mg/h from minute 30
    walk.event("stop", 90)
    weeks_later = snapshot(walk.s, now=walk.at(90) + timedelta(days=30))
    prediction = predicted_concentration(weeks_later)
    assert prediction.available
    span = timedelta(minutes=60 + 60)  # 60 min infused, then as long again
    assert len(prediction.times) <= span / GRID_STEP + 2
    assert prediction.times[-1] == walk.at(30) + span
