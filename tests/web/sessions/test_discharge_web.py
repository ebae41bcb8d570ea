"""Recovery scores item by item through the web, and the discharge gate: each condition
refuses discharge on its own; a physician may discharge against a failed item with a
written reason; a transfer to emergency care is the other way out."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.models import TimelineEntry
from tests.web.sessions.conftest import VITALS, Walk, key


def recovering(walk: Walk, *, recovery_vitals: dict[str, Any] | None = None,
               stop_minutes: float = 150, settled: bool = True, pain: int = 6) -> Walk:
    """Infused, stopped and in recovery, with a set of vital signs taken; ``settled``: the
    pain, sedation and dissociation scored in recovery, back to the pre-infusion level."""
    walk.infusing()  # baseline at minute 5: BP 122/78, HR 72, RR 14, SpO2 98; NRS 7; MOAA/S 5
    walk.observe("vitals", 45, **VITALS)
    walk.event("stop", stop_minutes)
    walk.event("begin_recovery", stop_minutes + 1)
    walk.observe("vitals", stop_minutes + 5, **{**VITALS, **(recovery_vitals or {})})
    if settled:
        walk.observe("pain", stop_minutes + 6, nrs=pain)
        walk.scores(stop_minutes + 6)
    return walk


def score(client: Client, walk: Walk, **observed: int) -> Any:
    """The phase-I score (modified Aldrete: leaving the chair), through the page."""
    data = {"score_name": "aldrete_modified_1995", "idempotency_key": key()}
    data.update({f"obs_{k}": v for k, v in observed.items()})
    return client.post(reverse("session_recovery", args=[walk.s.pk]), data)


def home(client: Client, walk: Walk, *, ambulation: int = 2, nausea_vomiting: int = 2) -> Any:
    """The home-readiness score (modified PADSS), through the page."""
    return client.post(reverse("session_recovery", args=[walk.s.pk]), {
        "alt-score_name": "padss_modified", "alt-idempotency_key": key(),
        "alt-obs_ambulation": ambulation, "alt-obs_nausea_vomiting": nausea_vomiting})


def ready_to_go(client: Client, walk: Walk) -> None:
    assert score(client, walk, activity=2, respiration=2, consciousness=2).status_code == 302
    assert home(client, walk).status_code == 302


def discharge(client: Client, walk: Walk, **fields: Any) -> Any:
    data = {"escort_name": "Luis Ruiz", "instructions_given": "on", "idempotency_key": key()}
    data.update(fields)
    return client.post(reverse("session_discharge", args=[walk.s.pk]),
                       {k: v for k, v in data.items() if v is not None})


def latest_score(walk: Walk) -> dict[str, Any]:
    return TimelineEntry.objects.filter(session=walk.s, kind="recovery_score").latest(
        "id").payload


def test_the_modified_aldrete_is_scored_item_by_item_against_the_baseline(
        walk: Walk, client: Client) -> None:
    recovering(walk, recovery_vitals={"systolic_bp_mmhg": 150})
    client.force_login(walk.c.cast.bob)
    response = score(client, walk, activity=2, respiration=2, consciousness=1)
    assert response.status_code == 302
    p = latest_score(walk)
    items = {i["key"]: i for i in p["result"]["items"]}
    # Circulation: |150 - 122| / 122 = 22.95% of the pre-infusion systolic: band 20-49% -> 1.
    assert items["circulation"]["points"] == 1
    assert items["circulation"]["basis"] == "computed"
    assert items["circulation"]["detail"]["deviation_percent"]["systolic_bp_mmhg"] == 22.95
    # SpO2 98% on room air -> 2 (computed); the rest as chosen.
    assert items["oxygen_saturation"]["points"] == 2
    assert [items[k]["points"] for k in ("activity", "respiration", "consciousness")] == [2, 2, 1]
    assert p["total"] == 8
    assert p["result"]["name"] == "Modified Aldrete score (1995)"
    assert p["result"]["inputs"]["baseline"]["systolic_bp_mmhg"] == 122


def test_the_modified_padss_scores_pulse_and_pain_against_the_patients_own_baseline(
        walk: Walk, client: Client) -> None:
    recovering(walk, recovery_vitals={"heart_rate_per_min": 100}, pain=9)
    client.force_login(walk.c.cast.bob)
    response = home(client, walk)
    assert response.status_code == 302, response.content[-2000:]
    p = latest_score(walk)
    assert p["score_name"] == "padss_modified"
    items = {i["key"]: i for i in p["result"]["items"]}
    # Pulse |100 - 72| / 72 = 38.9% (blood pressure unchanged): band 20-40% -> 1 [S33].
    assert items["vital_signs"]["points"] == 1
    assert items["vital_signs"]["detail"]["worst_measure"] == "heart_rate_per_min"
    assert set(items["vital_signs"]["detail"]["deviation_percent"]) == {
        "systolic_bp_mmhg", "heart_rate_per_min"}
    # Pain 9 against the pre-infusion 7: two points above -> 1.
    assert items["pain"]["points"] == 1
    assert items["pain"]["detail"] == {"baseline_nrs": 7, "current_nrs": 9}
    assert items["surgical_bleeding"]["basis"] == "default"
    assert p["total"] == 1 + 2 + 2 + 1 + 2


def test_a_crps_patient_in_pain_at_baseline_can_reach_the_home_threshold(
        walk: Walk, client: Client) -> None:
    """Finding 9: pain is judged against the patient's own pre-infusion pain (NRS 7
    here), so pain at that level scores 2, not 0."""
    recovering(walk, pain=7)
    client.force_login(walk.c.cast.bob)
    home(client, walk)
    p = latest_score(walk)
    assert p["total"] == 10
    assert p["result"]["passed"] is True


def test_a_score_needs_every_observed_item(walk: Walk, client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.bob)
    response = score(client, walk, activity=2, respiration=2)
    assert response.status_code == 400
    assert not TimelineEntry.objects.filter(session=walk.s, kind="recovery_score").exists()


def test_recovery_is_scored_only_while_recovering(walk: Walk, client: Client) -> None:
    walk.infusing()
    client.force_login(walk.c.cast.bob)
    response = score(client, walk, activity=2, respiration=2, consciousness=2)
    assert response.status_code == 400
    assert b"Recovery is scored in recovery; the session is infusing." in response.content


def test_discharge_with_every_condition_met(walk: Walk, client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    response = discharge(client, walk)
    assert response.status_code == 302
    assert walk.state() == "discharged"
    entry = TimelineEntry.objects.get(session=walk.s, kind="discharge")
    assert entry.payload["gate"]["allowed"] is True
    assert entry.payload["no_driving_until"]["hours"] == 24


@pytest.mark.parametrize(("failing", "codes", "message"), [
    ("score", ("phase_one_score",), "Modified Aldrete 8/10: the patient leaves the chair at 9"),
    ("no_score", ("phase_one_score",), "No Modified Aldrete assessment recorded yet"),
    ("home", ("discharge_score",), "Modified PADSS 8/10, needs 9 or more"),
    ("no_home", ("discharge_score",), "No Modified PADSS assessment recorded yet"),
    ("observation", ("minimum_observation", "home_score_early"), "60 min required"),
    ("stale", ("home_score_stale",), "accepts a score at most 30 min old"),
    ("sedation", ("sedation_baseline",), "MOAA/S 4 is below the patient's pre-infusion 5"),
    ("dissociation", ("dissociation_baseline",), "CADSS-6 1 is above the patient's "
                                                 "pre-infusion 0"),
    ("alarm", ("alarms_acknowledged",), "1 alarm(s) not acknowledged"),
    ("escort", ("escort_confirmed",), "No escort confirmed by name"),
    ("instructions", ("instructions_given",), "Written discharge instructions not given"),
])
def test_each_gate_condition_alone_refuses_discharge(walk: Walk, client: Client,
                                                     failing: str, codes: tuple[str, ...],
                                                     message: str) -> None:
    from tests.web.sessions.conftest import CADSS_SOME

    if failing == "observation":
        walk.t0 = timezone.now() - timedelta(minutes=80)
        recovering(walk, stop_minutes=70)  # stopped 10 minutes ago
    else:
        recovering(walk)
    if failing == "alarm":  # a low saturation in recovery, nobody acknowledged; now normal
        walk.observe("vitals", 160, **{**VITALS, "spo2_percent": 90})
        walk.observe("vitals", 165, **VITALS)
    if failing == "sedation":
        walk.observe("sedation", 166, score=4)
    if failing == "dissociation":
        walk.observe("dissociation", 166, items=CADSS_SOME)
    client.force_login(walk.c.cast.bob)
    if failing != "no_score":
        score(client, walk, activity=0 if failing == "score" else 2, respiration=2,
              consciousness=2)
    if failing == "stale":
        services.session_recovery_score(
            actor=walk.nurse, session=walk.s, score_name="padss_modified",
            observed={"ambulation": 2, "nausea_vomiting": 2},
            occurred_at=timezone.now() - timedelta(minutes=40), idempotency_key=key())
    elif failing != "no_home":
        home(client, walk, ambulation=0 if failing == "home" else 2)
    page = client.get(reverse("session_detail", args=[walk.s.pk])).content.decode()
    assert "Cannot discharge yet" in page  # the button lists what is missing
    if failing != "escort":  # the page starts from the escort named at the pre-assessment
        assert f'data-code="{codes[0]}"' in page
    response = discharge(client, walk,
                         escort_name="" if failing == "escort" else "Luis Ruiz",
                         instructions_given=None if failing == "instructions" else "on")
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert walk.state() == "recovering"
    gate = services.selectors.discharge_gate_for(
        services.selectors.snapshot(walk.s), escort_name="" if failing == "escort"
        else "Luis Ruiz", instructions_given=failing != "instructions")
    assert gate.missing_codes == codes


def test_a_home_score_taken_minutes_after_the_stop_never_opens_the_gate_later(
        walk: Walk, client: Client) -> None:
    """Finding 9: a score taken minutes after the stop stays too early later on."""
    recovering(walk, stop_minutes=170)  # stopped 130 min before now
    services.session_recovery_score(
        actor=walk.nurse, session=walk.s, score_name="padss_modified",
        observed={"ambulation": 2, "nausea_vomiting": 2},
        occurred_at=walk.at(176), idempotency_key=key())
    client.force_login(walk.c.cast.bob)
    score(client, walk, activity=2, respiration=2, consciousness=2)
    gate = services.selectors.discharge_gate_for(
        services.selectors.snapshot(walk.s, now=walk.at(176 + 25)), escort_name="Luis Ruiz",
        instructions_given=True)
    assert "home_score_early" in gate.missing_codes
    assert discharge(client, walk).status_code == 400
    assert walk.state() == "recovering"


def test_the_gate_preview_says_what_is_missing_as_the_form_is_filled(
        walk: Walk, client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    url = reverse("session_discharge_check", args=[walk.s.pk])
    unticked = client.post(url, {"escort_name": "Luis Ruiz"}).content.decode()
    assert "Cannot discharge yet: instructions given" in unticked
    ticked = client.post(url, {"escort_name": "Luis Ruiz", "instructions_given": "on"})
    assert ">Discharge</button>" in ticked.content.decode()
    assert walk.state() == "recovering"


def test_a_physician_may_discharge_against_a_failed_item_with_a_written_reason(
        walk: Walk, client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.alice)
    score(client, walk, activity=2, respiration=1, consciousness=1)  # 8/10
    home(client, walk)
    refused = discharge(client, walk, override_phase_one_score="   ")
    assert refused.status_code == 400
    response = discharge(client, walk, override_phase_one_score=(
        "chronic dyspnoea at baseline, unchanged; reviewed at the bedside"))
    assert response.status_code == 302
    entry = TimelineEntry.objects.get(session=walk.s, kind="discharge")
    assert entry.payload["gate"]["overridden"][0]["code"] == "phase_one_score"
    assert entry.payload["overrides"][0]["physician"] == "Alice"
    assert walk.state() == "discharged"


def test_a_nurse_cannot_override_and_nobody_overrides_the_escort(walk: Walk,
                                                                 client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.bob)
    score(client, walk, activity=2, respiration=1, consciousness=1)
    home(client, walk)
    # The nurse's form has no override fields: the reason is ignored and the gate holds.
    response = discharge(client, walk, override_phase_one_score="I think it is fine")
    assert response.status_code == 400
    with pytest.raises(UsageError, match="only a physician"):
        services.session_discharge(actor=walk.nurse, session=walk.s, escort_name="Luis",
                                   instructions_given=True,
                                   overrides={"phase_one_score": "fine"},
                                   idempotency_key=key())
    with pytest.raises(UsageError, match="cannot be overridden"):
        services.session_discharge(actor=walk.c.actor(walk.c.cast.alice), session=walk.s,
                                   escort_name="", instructions_given=True,
                                   overrides={"escort_confirmed": "taxi"},
                                   idempotency_key=key())
    assert walk.state() == "recovering"


def test_a_transfer_to_emergency_care_ends_the_session_with_its_reason(
        walk: Walk, client: Client) -> None:
    recovering(walk)
    client.force_login(walk.c.cast.alice)
    response = client.post(reverse("session_event", args=[walk.s.pk, "transfer"]), {
        "reason": "persistent hypertension 200/110", "destination": "emergency department",
        "idempotency_key": key()})
    assert response.status_code == 302
    assert walk.state() == "transferred"
    entry = TimelineEntry.objects.get(session=walk.s, kind="transfer")
    assert entry.payload == {"reason": "persistent hypertension 200/110",
                             "destination": "emergency department"}


# --------------------------------------------------------------------------- follow-ups


def discharged(walk: Walk, idempotency_key: str | None = None) -> Any:
    recovering(walk)
    services.session_recovery_score(actor=walk.nurse, session=walk.s,
                                    score_name="aldrete_modified_1995",
                                    observed={"activity": 2, "respiration": 2,
                                              "consciousness": 2},
                                    idempotency_key=key())
    services.session_recovery_score(actor=walk.nurse, session=walk.s,
                                    score_name="padss_modified",
                                    observed={"ambulation": 2, "nausea_vomiting": 2},
                                    idempotency_key=key())
    return services.session_discharge(actor=walk.nurse, session=walk.s,
                                      escort_name="Luis Ruiz", instructions_given=True,
                                      idempotency_key=idempotency_key or key())


def points(series: Any) -> list[tuple[str, Any, Any]]:
    from ketamine_clinic.web.outcomes.models import FollowUp

    return sorted((f.point, f.session_id, f.due_on)
                  for f in FollowUp.objects.filter(series=series))


def test_discharge_schedules_the_follow_ups_due_after_the_session(walk: Walk,
                                                                  client: Client) -> None:
    from ketamine_clinic.web.audit.models import AuditEntry
    from ketamine_clinic.web.outcomes import policy

    recovering(walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    assert points(walk.c.series) == []
    response = discharge(client, walk)
    assert response.status_code == 302
    # Visit 1 of 5: the baseline (on the day of the first visit) and day 1 after it; the
    # series-end points wait for the end of the series.
    visit_day = timezone.localdate(walk.s.scheduled_for)
    day1 = visit_day + timedelta(days=policy.point("day1").offset_days)
    assert points(walk.c.series) == [("baseline", walk.s.pk, visit_day),
                                     ("day1", walk.s.pk, day1)]
    assert AuditEntry.objects.filter(action="follow_up.schedule", username="bob",
                                     object_id=str(walk.c.series.pk)).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert f"Follow-ups scheduled: Before the series (due {visit_day.isoformat()}), " \
           f"Day 1 (due {day1.isoformat()})." in page


def test_scheduling_again_after_a_discharge_adds_no_second_row(walk: Walk) -> None:
    from ketamine_clinic.web.outcomes.services import followups_schedule

    same = key()
    done = discharged(walk, idempotency_key=same)
    assert [f.point for f in done.follow_ups] == ["baseline", "day1"]
    after = points(walk.c.series)
    # The outcomes page's button, and a retried discharge, find nothing new to add.
    assert followups_schedule(actor=walk.nurse, series=walk.c.series) == []
    again = services.session_discharge(actor=walk.nurse, session=walk.s,
                                       escort_name="Luis Ruiz", instructions_given=True,
                                       idempotency_key=same)
    assert again.entry.pk == done.entry.pk
    assert again.replayed
    assert again.follow_ups == ()
    assert points(walk.c.series) == after


def test_discharging_the_last_visit_schedules_the_series_end_points(walk: Walk) -> None:
    from ketamine_clinic.web.outcomes import policy
    from ketamine_clinic.web.patients import services as patients
    from tests.web.sessions.conftest import Clinic, make_consent, make_order

    patient = patients.patient_register(
        actor=walk.nurse, site=walk.c.cast.denver, mrn="DEN-F1", given_name="Fay",
        family_name="Single", date_of_birth=timezone.localdate() - timedelta(days=15000),
        sex_at_birth="male", escort_name="Escort Single")
    order = make_order(walk.c.cast, patient, walk.c.protocol_version, planned_sessions=1)
    make_consent(walk.c.cast, patient, walk.c.protocol_version)
    session = services.session_schedule(actor=walk.nurse, order=order,
                                        scheduled_for=walk.s.scheduled_for)
    single = Walk(Clinic(walk.c.cast, walk.c.protocol_version, order.series, order, session,
                         None))
    done = discharged(single)
    end = timezone.localdate(session.scheduled_for)
    expected = {(p.key, end + timedelta(days=p.offset_days)) for p in policy.points()
                if p.anchor == "series_end"}
    assert expected  # the policy has series-end points to schedule
    assert {(f.point, f.due_on) for f in done.follow_ups if f.session_id is None} == expected
    assert len(points(order.series)) == len(done.follow_ups) == len(expected) + 2


def test_a_failed_schedule_leaves_the_session_undischarged(walk: Walk,
                                                           monkeypatch: Any) -> None:
    from ketamine_clinic.web.outcomes import services as outcomes

    def broken(**_: Any) -> Any:
        raise UsageError("series", "schedule unavailable")

    monkeypatch.setattr(outcomes, "followups_schedule", broken)
    with pytest.raises(UsageError, match="schedule unavailable"):
        discharged(walk)
    assert walk.state() == "recovering"
    assert not TimelineEntry.objects.filter(session=walk.s, kind="discharge").exists()


def test_the_discharge_and_its_follow_ups_commit_or_fail_together(walk: Walk,
                                                                  monkeypatch: Any) -> None:
    """The follow-ups are booked through the at-discharge hook, inside the discharge's
    transaction: a failure after they were written takes them back with the discharge."""
    from ketamine_clinic.web.sessions import hooks

    assert hooks._at_discharge  # the outcomes area registered its hook (apps.py)

    def fails_after_booking(actor: Any, session: Any) -> Any:
        assert points(session.series)  # the follow-ups are written by now...
        raise UsageError("series", "a later record failed")

    monkeypatch.setattr(hooks, "_at_discharge", [*hooks._at_discharge, fails_after_booking])
    with pytest.raises(UsageError, match="a later record failed"):
        discharged(walk)
    assert points(walk.c.series) == []  # ... and gone with the discharge
    assert walk.state() == "recovering"
    assert not TimelineEntry.objects.filter(session=walk.s, kind="discharge").exists()
    monkeypatch.undo()
    done = services.session_discharge(actor=walk.nurse, session=walk.s,
                                      escort_name="Luis Ruiz", instructions_given=True,
                                      idempotency_key=key())
    assert [f.point for f in done.follow_ups] == ["baseline", "day1"]
    assert [(f.point, f.session_id, f.due_on) for f in done.follow_ups] == points(walk.c.series)
    assert walk.state() == "discharged"
