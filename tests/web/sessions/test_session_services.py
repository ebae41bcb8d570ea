"""Session services: every transition and refusal, exact dose, limits at rate changes,
alarms and overdue vital signs, corrections, idempotent retries, bad input."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.errors import Refusal, UsageError
from ketamine_clinic.web.orders.models import LimitEvent
from ketamine_clinic.web.sessions import selectors, services
from ketamine_clinic.web.sessions.models import Alarm, TimelineEntry
from tests.web.sessions.conftest import VITALS, Walk, key, screen


def _count(walk: Walk) -> int:
    return TimelineEntry.objects.filter(session=walk.s).count()


# --------------------------------------------------------------------------- states


def test_the_ordinary_path_moves_through_every_state(walk: Walk) -> None:
    seen = []
    walk.event("check_in", 0)
    seen.append(walk.state())
    walk.observe("vitals", 5, **VITALS)
    walk.observe("pain", 6, nrs=7)
    walk.event("pre_assessment", 10, iv_access_documented=True, escort_name="Luis Ruiz",
               pregnancy_status="not_pregnant")
    seen.append(walk.state())
    walk.observe("premedication", 20, drug="glycopyrrolate", dose=0.2, unit="mg", route="IV")
    seen.append(walk.state())
    walk.rate("60 mg/h", 30)
    seen.append(walk.state())
    walk.event("pause", 40, reason="nausea")
    seen.append(walk.state())
    walk.event("resume", 45)
    seen.append(walk.state())
    walk.event("stop", 100)
    seen.append(walk.state())
    walk.event("begin_recovery", 101)
    seen.append(walk.state())
    assert seen == ["checked_in", "pre_assessment_complete", "premedication_given", "infusing",
                    "paused", "infusing", "stopped", "recovering"]
    walk.s.refresh_from_db()
    assert walk.s.version == 8
    # The cached state is the replay of the timeline.
    assert selectors.derived_state(selectors.entries_of(walk.s)).value == walk.s.state


@pytest.mark.parametrize(("event", "setup", "message"), [
    ("pause", "checked_in", "possible now: complete pre assessment"),
    ("resume", "infusing", "possible now: pause, stop"),
    ("stop", "checked_in", "possible now"),
    ("begin_recovery", "infusing", "possible now"),
    ("check_in", "infusing", "possible now"),
    ("pre_assessment", "scheduled", "possible now: check in"),
])
def test_a_transition_the_state_does_not_allow_is_refused_with_a_reason(
        walk: Walk, event: str, setup: str, message: str) -> None:
    if setup == "checked_in":
        walk.event("check_in", 0)
    elif setup == "infusing":
        walk.infusing()
    before = _count(walk)
    with pytest.raises(UsageError, match=message) as err:
        walk.event(event, 60)
    assert err.value.field == "event"
    assert _count(walk) == before


@pytest.mark.parametrize("event", ["transfer", "abandon"])
def test_transfer_and_abandon_need_a_written_reason(walk: Walk, event: str) -> None:
    walk.event("check_in", 0)
    with pytest.raises(UsageError, match="required") as err:
        walk.event(event, 5, reason="  ")
    assert err.value.field == "reason"
    extra = {"destination": "emergency department"} if event == "transfer" else {}
    walk.event(event, 5, reason="hypertensive urgency", **extra)
    assert walk.state() == ("transferred" if event == "transfer" else "abandoned")
    with pytest.raises(UsageError, match=r"closed|nothing more"):
        walk.event("pause", 6)
    with pytest.raises(UsageError, match="nothing more"):
        walk.observe("note", 6, text="late note")


@pytest.mark.parametrize(("missing", "code"), [
    ("consent", "consent_on_file"), ("vitals", "pre_infusion_vitals_recorded"),
    ("pain", "pre_infusion_pain_recorded"), ("escort", "escort_confirmed"),
    ("iv", "iv_access_documented"), ("pregnancy", "pregnancy_status_recorded"),
    ("verified", "order_verified"), ("screening", "screening_current"),
])
def test_the_infusion_does_not_start_until_the_start_gate_is_open(
        walk: Walk, missing: str, code: str) -> None:
    """The gate is judged before the premedication (and again at the start): the first
    drug is refused with the one item missing, and nothing is charted."""
    if missing == "consent":
        from ketamine_clinic.web.protocols.models import Consent
        Consent.objects.filter(pk=walk.c.consent.pk).update(patient=walk.c.cast.zed)
    if missing == "verified":
        type(walk.c.order).objects.filter(pk=walk.c.order.pk).update(status="signed",
                                                                    verified_by=None)
    if missing == "screening":
        # Screened one day longer ago than the protocol's validity period.
        s = walk.c.series.screening
        ago = s.valid_until - timezone.localdate(s.screened_at) + timedelta(days=1)
        type(s).objects.filter(pk=s.pk).update(screened_at=s.screened_at - ago,
                                               valid_until=s.valid_until - ago)
    walk.event("check_in", 0)
    if missing != "vitals":
        walk.observe("vitals", 5, **VITALS)
    if missing != "pain":
        walk.observe("pain", 6, nrs=7)
    walk.event("pre_assessment", 10, iv_access_documented=missing != "iv",
               escort_name="" if missing == "escort" else "Luis Ruiz",
               **({} if missing == "pregnancy" else {"pregnancy_status": "not_pregnant"}))
    with pytest.raises(Refusal) as err:
        walk.give("glycopyrrolate", 20, 0.2)
    assert err.value.codes == (code,)
    assert walk.state() == "pre_assessment_complete"
    assert not walk.s.entries.filter(kind="premedication").exists()
    if missing == "screening":
        assert "older than the protocol's validity" in err.value.reasons[0]


def _refused_start(walk: Walk) -> list[Any]:
    """Ready the patient; the premedication is refused by the start gate: its items."""
    with pytest.raises(Refusal) as err:
        walk.ready()
    assert walk.state() == "pre_assessment_complete"
    assert not walk.s.entries.filter(kind__in=["premedication", "infusion_start"]).exists()
    gate = selectors.snapshot(walk.s).start_gate
    assert gate is not None
    assert [m.code for m in gate.missing] == list(err.value.codes)
    return list(gate.missing)


def test_the_start_gate_refuses_when_the_facts_changed_since_the_screening(
        walk: Walk) -> None:
    from ketamine_clinic.web.patients import services as patients

    patients.medication_record(actor=walk.c.actor(walk.c.cast.alice), patient=walk.c.cast.ana,
                               name="tramadol", dose="50 mg as needed")
    missing = _refused_start(walk)
    assert [m.code for m in missing] == ["screening_current"]
    # The protocols area's screening_status says why: the medication list changed.
    assert "facts have changed" in missing[0].message
    assert "medications" in missing[0].message


def test_the_start_gate_refuses_when_the_consent_was_withdrawn(walk: Walk) -> None:
    from ketamine_clinic.web.documents.services import consent_withdraw

    consent_withdraw(actor=walk.c.actor(walk.c.cast.bob), consent=walk.c.consent,
                     reason="changed her mind")
    missing = _refused_start(walk)
    assert [m.code for m in missing] == ["consent_on_file"]


def test_a_new_screening_after_the_change_opens_the_start_gate_again(walk: Walk) -> None:
    from ketamine_clinic.web.patients import services as patients

    patients.medication_record(actor=walk.c.actor(walk.c.cast.alice), patient=walk.c.cast.ana,
                               name="tramadol", dose="50 mg as needed")
    assert [m.code for m in _refused_start(walk)] == ["screening_current"]
    screen(walk.c.cast, walk.c.cast.ana, walk.c.protocol_version)
    walk.give("glycopyrrolate", 25, 0.2)
    walk.rate("60 mg/h", 31)
    assert walk.state() == "infusing"


def test_the_protocol_requires_premedication_before_the_infusion(walk: Walk) -> None:
    walk.event("check_in", 0)
    walk.observe("vitals", 5, **VITALS)
    walk.observe("pain", 6, nrs=7)
    walk.event("pre_assessment", 10, iv_access_documented=True, escort_name="Luis Ruiz",
               pregnancy_status="not_pregnant")
    with pytest.raises(Refusal, match="requires premedication"):
        walk.rate("60 mg/h", 30)


def test_a_stale_page_loses_the_race_and_is_told_why(walk: Walk) -> None:
    walk.infusing()
    walk.s.refresh_from_db()
    seen = walk.s.version
    services.session_event(actor=walk.nurse, session=walk.s, event="pause",
                           expected_version=seen, idempotency_key=key())
    with pytest.raises(UsageError,
                       match=r"changed since you loaded it.*paused: Bob recorded pause") as err:
        services.session_event(actor=walk.c.actor(walk.c.cast.alice), session=walk.s,
                               event="stop", expected_version=seen, idempotency_key=key())
    assert err.value.field == "expected_version"
    assert walk.state() == "paused"


# --------------------------------------------------------------------------- dose


def test_the_dose_is_integrated_exactly_across_rate_changes_and_pauses(walk: Walk) -> None:
    walk.infusing()  # 60 mg/h from minute 30
    walk.scores(49)
    walk.rate("70 mg/h", 50)  # 60 mg/h × 20 min = 20 mg
    walk.event("pause", 60)  # 70 mg/h × 10 min = 35/3 mg
    walk.event("resume", 70)  # paused 10 min: nothing given
    walk.rate("50 mg/h", 100)  # 70 mg/h × 30 min = 35 mg
    walk.event("stop", 130)  # 50 mg/h × 30 min = 25 mg
    # By hand: 20 + 35/3 + 35 + 25 = 275/3 mg; bag 1 mg/mL; 70 kg.
    snap = selectors.snapshot(walk.s)
    assert snap.totals is not None
    assert snap.totals.total_mg == Fraction(275, 3)
    assert snap.totals.total_mg_per_kg == Fraction(275, 3) / 70
    assert snap.totals.volume_ml == Fraction(275, 3)
    assert snap.totals.paused_time == timedelta(minutes=10)
    assert snap.totals.infusing_time == timedelta(minutes=90)
    stop = TimelineEntry.objects.get(session=walk.s, kind="stop")
    assert stop.payload["totals"]["total_mg_exact"] == "275/3"


def test_a_running_infusion_is_integrated_up_to_now(walk: Walk) -> None:
    walk.infusing()  # 60 mg/h from t0 + 30 min
    now = walk.at(30) + timedelta(minutes=45)
    snap = selectors.snapshot(walk.s, now=now)
    assert snap.totals is not None
    assert snap.totals.total_mg == Fraction(45)


def test_each_rate_is_stored_in_all_three_forms_with_its_check(walk: Walk) -> None:
    entry = (walk.infusing(), TimelineEntry.objects.get(session=walk.s,
                                                        kind="infusion_start"))[1]
    p = entry.payload
    assert p["rate_mg_per_h"] == 60
    assert p["pump_rate_ml_per_h"] == 60
    assert p["rate_mg_per_kg_per_h"] == pytest.approx(60 / 70, rel=1e-12)
    assert p["rate_check"]["protocol"] == {"name": "clinic-standard",
                                           "version": str(walk.c.protocol_version.version)}
    assert p["acceptance"]["accepted"] is True


# --------------------------------------------------------------------------- limits


def test_a_rate_above_a_hard_limit_is_blocked_and_the_block_is_kept(walk: Walk) -> None:
    from ketamine_clinic.clinical.limit_checks import override_reasons

    walk.infusing()
    before = _count(walk)
    with pytest.raises(Refusal, match=r"the rate of 150 mg/h is above the hard limit of "
                                      r"140 mg/h \[clinic policy\].*cannot be overridden"):
        walk.rate("150 mg/h", 60, override_code=override_reasons()[0].code,
                  override_text="I insist")
    assert _count(walk) == before
    assert LimitEvent.objects.filter(session_id_value=walk.s.pk, outcome="blocked",
                                     quantity="rate_mg_per_h").exists()


def test_a_faster_step_than_the_order_needs_a_physician_not_a_nurses_text(
        walk: Walk) -> None:
    from ketamine_clinic.clinical.limit_checks import override_reasons

    walk.infusing()
    walk.scores(49)
    walk.rate("70 mg/h", 50)
    walk.scores(54)
    with pytest.raises(Refusal, match=r"time since the last change of 5 min is below "
                                      r"the signed order's limit of 15 min.*physician"):
        walk.rate("80 mg/h", 55, override_code=override_reasons()[0].code,
                  override_text="pain 9/10, calm")  # a nurse's reason is not enough
    assert LimitEvent.objects.filter(session_id_value=walk.s.pk, outcome="hit").exists()
    entry = walk.rate("80 mg/h", 55, physician=walk.c.cast.alice,
                      physician_reason="pain 9/10, calm; I am at the chair")
    assert entry.payload["physician"] == walk.c.cast.alice.get_full_name() or "alice"
    assert "co-signed at the bedside" in entry.payload["override_text"]
    assert LimitEvent.objects.filter(session_id_value=walk.s.pk, outcome="overridden",
                                     quantity="titration_interval_min").exists()


def test_a_decrease_is_never_held_back(walk: Walk) -> None:
    walk.infusing()
    walk.scores(49)
    walk.rate("70 mg/h", 50)
    entry = walk.rate("40 mg/h", 51)  # one minute later, 30 mg/h down
    assert entry.payload["rate_mg_per_h"] == 40


def test_a_rate_typed_in_ml_per_h_is_converted_with_the_bag(walk: Walk) -> None:
    walk.infusing()
    walk.scores(49)
    entry = walk.rate("70 mL/h", 50)  # 1 mg/mL bag
    assert entry.payload["rate_mg_per_h"] == 70


@pytest.mark.parametrize(("rate", "field"), [("-5 mg/h", "rate"), ("0 mg/h", "rate"),
                                        ("sixty", "rate"), ("60 mg", "rate")])
def test_an_impossible_rate_is_refused_and_nothing_recorded(walk: Walk, rate: str,
                                                            field: str) -> None:
    walk.infusing()
    before = _count(walk)
    with pytest.raises(UsageError) as err:
        walk.rate(rate, 50)
    assert err.value.field == field
    assert _count(walk) == before


def test_a_rate_change_on_a_stopped_infusion_is_refused(walk: Walk) -> None:
    walk.infusing()
    walk.event("stop", 60)
    with pytest.raises(Refusal, match="The session is stopped: the rate cannot be set"):
        walk.rate("60 mg/h", 61)


def test_a_rate_change_dated_before_the_last_pump_event_is_refused(walk: Walk) -> None:
    walk.infusing()
    walk.scores(49)
    walk.rate("70 mg/h", 50)
    with pytest.raises(Refusal, match=r"does not fit the pump record.*time order") as err:
        walk.rate("60 mg/h", 40)
    assert err.value.field == "occurred_at"


def test_the_session_total_limit_is_watched_on_the_exact_dose(walk: Walk) -> None:
    walk.infusing()  # 60 mg/h from minute 30; 400 mg soft upper bound
    # Seven hours later the exact total passes 400 mg: an alarm is raised, once.
    later = walk.at(30) + timedelta(hours=7)
    raised = services.session_watch(session=walk.s, now=later)
    kinds = [a.kind for a in raised]
    assert "dose_limit" in kinds
    assert not [a for a in services.session_watch(session=walk.s, now=later)
                if a.kind == "dose_limit"]


# --------------------------------------------------------------------------- alarms


def test_a_vital_sign_beyond_the_protocol_threshold_raises_one_alarm_until_acknowledged(
        walk: Walk) -> None:
    walk.infusing()
    walk.observe("vitals", 45, **{**VITALS, "systolic_bp_mmhg": 190})
    def highs() -> Any:
        return Alarm.objects.filter(session=walk.s, kind="vital_high")

    high = list(highs())
    assert [(a.detail["vital"], a.detail["threshold"]) for a in high] == [
        ("systolic_bp_mmhg", 180.0)]
    assert high[0].message.startswith("Systolic blood pressure 190 mmHg at ")
    assert "above the alarm limit of 180 mmHg [clinic policy]" in high[0].message
    walk.observe("vitals", 50, **{**VITALS, "systolic_bp_mmhg": 195})
    assert highs().count() == 1  # still the same open alarm
    services.alarm_acknowledge(actor=walk.nurse, alarm=high[0],
                               response="rate lowered, physician informed")
    walk.observe("vitals", 55, **{**VITALS, "systolic_bp_mmhg": 185})
    assert highs().count() == 2
    walk.observe("vitals", 60, **{**VITALS, "systolic_bp_mmhg": 180})  # at the bound: none
    assert highs().count() == 2


def test_an_acknowledgement_needs_a_response_and_is_kept(walk: Walk) -> None:
    walk.infusing()
    walk.observe("vitals", 45, **{**VITALS, "spo2_percent": 89})
    alarm = Alarm.objects.get(session=walk.s)
    with pytest.raises(UsageError) as err:
        services.alarm_acknowledge(actor=walk.nurse, alarm=alarm, response=" ")
    assert err.value.field == "response"
    first = services.alarm_acknowledge(actor=walk.nurse, alarm=alarm, response="O2 2 L/min")
    again = services.alarm_acknowledge(actor=walk.nurse, alarm=alarm, response="O2 2 L/min")
    assert again.pk == first.pk
    with pytest.raises(UsageError, match="already acknowledged by bob"):
        services.alarm_acknowledge(actor=walk.c.actor(walk.c.cast.alice), alarm=alarm,
                                   response="seen")


def test_vital_signs_become_overdue_after_the_monitoring_interval(walk: Walk) -> None:
    walk.infusing()  # infusion from minute 30; last vitals at minute 5 (before the start)
    at_due = walk.at(45)
    snap = selectors.snapshot(walk.s, now=at_due)
    assert snap.overdue is not None
    assert not snap.overdue.overdue
    late = walk.at(45) + timedelta(seconds=1)
    snap = selectors.snapshot(walk.s, now=late)
    assert snap.overdue is not None
    assert snap.overdue.overdue
    raised = services.session_watch(session=walk.s, now=late)
    assert [a.kind for a in raised] == ["overdue"]
    assert services.session_watch(session=walk.s, now=late + timedelta(minutes=1)) == []
    walk.observe("vitals", 46, **VITALS)
    assert not selectors.snapshot(walk.s, now=walk.at(50)).overdue.overdue  # type: ignore[union-attr]


# --------------------------------------------------------------------------- corrections


def test_a_correction_supersedes_the_original_which_stays_visible(walk: Walk) -> None:
    walk.infusing()
    wrong = walk.observe("vitals", 45, **{**VITALS, "heart_rate_per_min": 17 * 10})
    fixed = services.session_entry_correct(
        actor=walk.nurse, session=walk.s, entry=wrong, reason="typo: 71, not 170",
        data={"heart_rate_per_min": 71}, idempotency_key=key()).entry
    views = {v.entry.pk: v for v in selectors.snapshot(walk.s).views}
    assert views[wrong.pk].status == "superseded"
    assert views[wrong.pk].replaced_by == fixed.pk
    assert views[fixed.pk].status == "effective"
    assert fixed.payload["heart_rate_per_min"] == 71
    assert TimelineEntry.objects.get(pk=wrong.pk).payload["heart_rate_per_min"] == 170
    with pytest.raises(UsageError, match=r"superseded.*correct entry"):
        services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=wrong,
                                       reason="again", data={"heart_rate_per_min": 72},
                                       idempotency_key=key())


def test_a_correction_without_a_reason_records_nothing(walk: Walk) -> None:
    walk.infusing()
    note = walk.observe("note", 45, text="calm")
    before = _count(walk)
    with pytest.raises(UsageError) as err:
        services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=note,
                                       reason="", data={"text": "anxious"},
                                       idempotency_key=key())
    assert err.value.field == "reason"
    assert _count(walk) == before


def test_a_corrected_rate_changes_the_dose_and_a_retracted_one_drops_out(walk: Walk) -> None:
    walk.infusing()
    walk.scores(59)
    change = walk.rate("70 mg/h", 60)
    walk.event("stop", 90)
    # 60 × 0.5 + 70 × 0.5 = 65 mg; the pump actually ran 80 mg/h: 60 × 0.5 + 80 × 0.5 = 70.
    services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=change,
                                   reason="pump read 80", data={"rate_entered": "80 mg/h"},
                                   idempotency_key=key())
    snap = selectors.snapshot(walk.s)
    assert snap.totals is not None
    assert snap.totals.total_mg == 70


def test_a_state_change_cannot_be_corrected(walk: Walk) -> None:
    walk.infusing()
    pause = walk.event("pause", 40)
    with pytest.raises(UsageError, match="cannot be corrected") as err:
        services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=pause,
                                       reason="wrong", data={}, idempotency_key=key())
    assert err.value.field == "entry"


def test_an_entry_marked_in_error_stays_visible_but_leaves_the_derived_view(
        walk: Walk) -> None:
    walk.infusing()
    pain = walk.observe("pain", 45, nrs=9)
    retraction = services.session_entry_correct(
        actor=walk.nurse, session=walk.s, entry=pain, reason="wrong patient",
        entered_in_error=True, idempotency_key=key()).entry
    snap = selectors.snapshot(walk.s)
    views = {v.entry.pk: v.status for v in snap.views}
    assert views[pain.pk] == "entered_in_error"
    assert views[retraction.pk] == "retraction"
    assert pain.pk not in {e.pk for e in snap.effective}


# --------------------------------------------------------------------------- retries


def test_a_retried_write_with_the_same_key_creates_nothing_new(walk: Walk) -> None:
    walk.infusing()
    k = key()
    first = services.session_observe(actor=walk.nurse, session=walk.s, kind="vitals",
                                     data=VITALS, occurred_at=walk.at(45), idempotency_key=k)
    again = services.session_observe(actor=walk.nurse, session=walk.s, kind="vitals",
                                     data=VITALS, occurred_at=walk.at(45), idempotency_key=k)
    assert again.entry.pk == first.entry.pk
    assert again.replayed
    assert not first.replayed
    assert TimelineEntry.objects.filter(session=walk.s, kind="vitals").count() == 2
    k2 = key()
    walk.s.refresh_from_db()
    services.session_event(actor=walk.nurse, session=walk.s, event="pause",
                           expected_version=walk.s.version, idempotency_key=k2)
    # The retry carries the old version; it still gets the stored answer, not a conflict.
    retry = services.session_event(actor=walk.nurse, session=walk.s, event="pause",
                                   expected_version=walk.s.version, idempotency_key=k2)
    assert retry.replayed
    with pytest.raises(UsageError, match="another request") as err:
        services.session_observe(actor=walk.nurse, session=walk.s, kind="note",
                                 data={"text": "x"}, idempotency_key=k)
    assert err.value.field == "idempotency_key"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("change", "field"), [
    ({"spo2_percent": 140}, "spo2_percent"), ({"heart_rate_per_min": -3}, "heart_rate_per_min"),
    ({"diastolic_bp_mmhg": 130}, "diastolic_bp_mmhg"),
    ({"respiratory_rate_per_min": "fast"}, "respiratory_rate_per_min"),
])
def test_implausible_vital_signs_are_refused(walk: Walk, change: dict[str, Any],
                                             field: str) -> None:
    walk.infusing()
    before = _count(walk)
    with pytest.raises(UsageError) as err:
        walk.observe("vitals", 45, **{**VITALS, **change})
    assert err.value.field == field
    assert _count(walk) == before
    assert not Alarm.objects.filter(session=walk.s).exists()


def test_an_entry_in_the_future_is_refused(walk: Walk) -> None:
    walk.infusing()
    with pytest.raises(UsageError, match="in the future") as err:
        services.session_observe(actor=walk.nurse, session=walk.s, kind="note",
                                 data={"text": "later"},
                                 occurred_at=timezone.now() + timedelta(minutes=10),
                                 idempotency_key=key())
    assert err.value.field == "occurred_at"


def test_scores_must_be_on_the_protocols_scale(walk: Walk) -> None:
    walk.infusing()
    with pytest.raises(UsageError, match="MOAA/S"):
        walk.observe("sedation", 45, scale="rass", score=0)
    with pytest.raises(UsageError):
        walk.observe("sedation", 45, score=7)
    with pytest.raises(UsageError):
        walk.observe("pain", 45, nrs=11)
    with pytest.raises(UsageError, match="item 22 is not answered"):
        walk.observe("dissociation", 45, items={1: 0, 2: 1, 6: 0, 7: 2, 15: 0})
    e = walk.observe("dissociation", 46, items={1: 0, 2: 1, 6: 0, 7: 2, 15: 0, 22: 1})
    assert e.payload["total"] == 4


def test_a_retried_start_finds_the_infusion_started_and_answers_with_the_start(
        walk: Walk) -> None:
    walk.ready()
    k = key()
    first = services.session_rate_set(actor=walk.nurse, session=walk.s, rate="60 mg/h",
                                      occurred_at=walk.at(30), idempotency_key=k)
    again = services.session_rate_set(actor=walk.nurse, session=walk.s, rate="60 mg/h",
                                      occurred_at=walk.at(30), idempotency_key=k)
    assert again.entry.pk == first.entry.pk
    assert again.replayed
    assert first.entry.kind == "infusion_start"
    assert TimelineEntry.objects.filter(session=walk.s, kind__in=["infusion_start",
                                                                   "rate_change"]).count() == 1


def test_the_predicted_concentration_comes_from_the_actual_rate_history(walk: Walk) -> None:
    from ketamine_clinic.pk.regimen import Regimen, Segment
    from ketamine_clinic.pk.simulate import Patient, simulate
    from ketamine_clinic.web.sessions.pk_bridge import predicted_concentration

    walk.infusing()  # 60 mg/h from minute 30
    walk.event("pause", 60)
    walk.event("resume", 70)
    walk.rate("40 mg/h", 90)
    snap = selectors.snapshot(walk.s, now=walk.at(100))
    prediction = predicted_concentration(snap)
    assert prediction.available
    # Independently: the same model fed the pump history by hand (minutes from the start).
    regimen = Regimen((Segment(0, 30, 60), Segment(40, 60, 60), Segment(60, 70, 40)))
    expected = simulate("domino", Patient(70, walk.c.cast.ana.age_on(timezone.localdate())),
                        regimen, [70]).plasma_ng_per_ml[0]
    assert prediction.now_value == pytest.approx(float(expected), rel=1e-9)
    assert prediction.inputs["segments"] == [[0.0, 30.0, 60.0], [40.0, 60.0, 60.0],
                                             [60.0, 70.0, 40.0]]
    stop = walk.event("stop", 100)
    assert stop.payload["prediction"]["available"] is True
    assert stop.payload["prediction"]["plasma_ng_per_ml_now"] == pytest.approx(
        float(expected), rel=1e-9)
    assert stop.payload["prediction"]["inputs"]["model"]["id"] == "domino"


def test_a_vital_sign_set_is_judged_without_gathering_the_days_facts(
        walk: Walk, monkeypatch: pytest.MonkeyPatch) -> None:
    # The core reads no consent, screening or test of the day for an observation (issue
    # 17: a monitor's write should not ask for them each time); a state change still does.
    from ketamine_clinic.clinical.bedside import decisions

    walk.infusing()
    assert not decisions.needs_day_facts(decisions.Observe(walk.at(45), "vitals", {}))
    assert decisions.needs_day_facts(decisions.Pause(walk.at(45), "test"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the day's facts were gathered for an observation")

    monkeypatch.setattr(services, "day_facts", refuse)
    walk.observe("vitals", 45, **{**VITALS, "systolic_bp_mmhg": 190})
    assert Alarm.objects.filter(session=walk.s, kind="vital_high").count() == 1
