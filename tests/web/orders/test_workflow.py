"""The order workflow through the services: each transition, its refusals, the blind double
check, limits and the wrong-unit cross-check. Numbers are worked out by hand from the
clinic-standard protocol (hard 140 mg/h and 2 mg/kg/h, soft 100 mg/h and 1 mg/kg/h, session
total soft 80-400 mg) and Ana's 70 kg."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from fractions import Fraction
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.clinical.dosing import check_rate
from ketamine_clinic.clinical.limit_checks import Override
from ketamine_clinic.clinical.units import parse_rate
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.orders import services
from ketamine_clinic.web.orders.dosing import order_rate_rules
from ketamine_clinic.web.orders.models import LimitEvent, Order, OrderEvent, Series
from ketamine_clinic.web.patients.models import Measurement

from .conftest import World


def _counts() -> tuple[int, int, int]:
    return Order.objects.count(), Series.objects.count(), Measurement.objects.count()


# --------------------------------------------------------------------------- writing


def test_a_written_order_shows_every_dose_form_the_table_and_totals(world: World) -> None:
    order = world.write()
    c = order.computed
    assert order.status == Order.Status.DRAFT
    assert c["start"]["rate_mg_per_kg_per_h"] == pytest.approx(60 / 70, rel=1e-12)
    assert c["start"]["rate_mg_per_h"] == 60
    assert c["start"]["pump_rate_ml_per_h"] == 60  # 1 mg/mL
    assert [row["rate_mg_per_h"] for row in c["titration_table"]] == [60, 70]
    # 60 mg/h for 15 min, then 70 mg/h for the remaining 225 min: 15 + 262.5 mg
    assert c["totals"]["session_total_mg"] == pytest.approx(277.5)
    assert c["totals"]["series_total_mg"] == pytest.approx(5 * 277.5)
    assert c["totals"]["volume_needed_ml"] == pytest.approx(277.5)
    assert c["outcome"] == "ok"
    assert order.series.planned_sessions == 5
    assert order.series.screening == world.screening
    assert order.dosing_weight_kg == 70
    assert OrderEvent.objects.filter(order=order, kind="written").count() == 1
    assert AuditEntry.objects.filter(action="order.write", object_id=str(order.pk)).exists()


def test_the_protocols_premedication_is_copied_with_its_dose_and_route(world: World) -> None:
    order = world.write()
    glyco = order.premedications[0]
    assert (glyco["drug"], glyco["dose"], glyco["unit"], glyco["route"]) == (
        "glycopyrrolate", 0.2, "mg", "IV")
    assert {m["drug"] for m in order.rescue_medications} == {"midazolam", "ondansetron"}
    fewer = world.write(rescue_medications=["ondansetron"])
    assert [m["drug"] for m in fewer.rescue_medications] == ["ondansetron"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weight_kg": "0"}, "weight_kg"),
        ({"weight_kg": "-70"}, "weight_kg"),
        ({"weight_kg": "seventy"}, "weight_kg"),
        ({"start_rate": "0 mg/h"}, "start_rate"),
        ({"start_rate": "-60 mg/h"}, "start_rate"),
        ({"start_rate": "sixty"}, "start_rate"),
        ({"start_rate": "60 zorks/h"}, "start_rate"),
        ({"start_rate": "60 mg"}, "start_rate"),
        ({"max_rate": "70 mg/min/kg/L"}, "max_rate"),
        ({"titration_step": "0 mg/h"}, "titration_step"),
        ({"bag": "500 mg in 0 mL"}, "bag"),
        ({"bag": "500 mg in -5 mL"}, "bag"),
        ({"bag": "500 mg"}, "bag"),
        ({"bag": "500 mg in 250 mL"}, "bag"),  # 2 mg/mL is not a strength the protocol allows
        ({"vial_strength_mg_per_ml": "25"}, "vial_strength_mg_per_ml"),
        ({"min_step_interval_min": "0"}, "min_step_interval_min"),
        ({"planned_duration_min": "-240"}, "planned_duration_min"),
        ({"planned_sessions": "2.5"}, "planned_sessions"),
        ({"premedications": ["aspirin"]}, "premedications"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    world: World, change: dict[str, Any], field: str
) -> None:
    before = _counts()
    with pytest.raises(UsageError) as err:
        world.write(**change)
    assert err.value.field == field
    assert _counts() == before


def test_an_outdated_weight_is_refused_naming_the_weight(world: World) -> None:
    # The protocol accepts 30 days, counted in the clinic's calendar days: noon 31 days
    # ago (31 × 24 h back may be only 30 calendar days across a daylight-saving change).
    noon = datetime.combine(timezone.localdate() - timedelta(days=31), time(12),
                            tzinfo=timezone.get_current_timezone())
    Measurement.objects.filter(pk=world.weight.pk).update(measured_at=noon)
    with pytest.raises(UsageError) as err:
        world.write()
    assert err.value.field == "weight"
    assert "30 days" in err.value.problem
    assert Order.objects.count() == 0


def test_a_new_weight_given_with_a_refused_order_is_not_kept(world: World) -> None:
    before = _counts()
    with pytest.raises(UsageError):
        world.write(weight_kg="72", bag="500 mg in 250 mL")
    assert _counts() == before


def test_a_new_weight_given_with_the_order_is_recorded_and_dosed_on(world: World) -> None:
    order = world.write(weight_kg="80")
    assert order.weight_measurement.value_number == 80
    assert order.computed["start"]["rate_mg_per_kg_per_h"] == pytest.approx(60 / 80)
    # A new weight is a new fact: the screening must be repeated before signing.
    with pytest.raises(UsageError, match=r"facts have changed since the screening \(weight\)"):
        services.order_sign(actor=world.actor(world.cast.alice), order=order)
    world.screen()
    assert services.order_sign(actor=world.actor(world.cast.alice),
                               order=order).status == Order.Status.SIGNED


def test_a_nurse_may_not_write_an_order(world: World) -> None:
    with pytest.raises(UsageError) as err:
        world.write(user=world.cast.bob)
    assert err.value.field == "written_by"


# --------------------------------------------------------------------------- screening


def _refused_for_screening(world: World, **write: Any) -> str:
    """The refusal's message (after the part that names patient and version), checking
    that nothing was written."""
    patient = write.get("patient") or world.cast.ana
    before = Order.objects.count(), Series.objects.count()
    with pytest.raises(UsageError) as err:
        world.write(**write)
    assert err.value.field == "screening"
    assert (Order.objects.count(), Series.objects.count()) == before
    head = f"{patient.full_name} has no current screening for clinic-standard v2 that " \
           "allows treatment: "
    assert err.value.problem.startswith(head)
    return err.value.problem[len(head):]


def test_without_a_screening_that_allows_treatment_no_order_is_written(
    world: World, cast: Any
) -> None:
    from ketamine_clinic.web.patients import services as patients

    patients.measurement_record(actor=world.actor(cast.bob), patient=cast.ana,
                                kind="pregnancy_status", value_code="pregnant",
                                measured_at=timezone.now())
    newer = world.screen()  # replaces the screening that allowed treatment
    assert newer.decision == "ineligible"
    assert "the decision is ineligible" in _refused_for_screening(world)


def test_a_patient_never_screened_under_the_version_gets_no_order(world: World,
                                                                 cast: Any) -> None:
    assert "not screened under this version" in _refused_for_screening(world,
                                                                       patient=cast.zed)


def test_an_expired_screening_does_not_allow_an_order(world: World, cast: Any) -> None:
    from ketamine_clinic.web.protocols.models import Screening

    # Screened 31 days ago under a protocol whose screenings are valid for 30 days.
    screened = timezone.now() - timedelta(days=31)
    Screening.objects.filter(pk=world.screening.pk).update(
        screened_at=screened,
        valid_until=timezone.localdate(screened) + timedelta(days=30))
    problem = _refused_for_screening(world)
    assert "older than the protocol's validity of 30 days" in problem
    fresh = world.screen()
    assert world.write().series.screening == fresh


def test_a_change_in_the_patients_facts_after_the_screening_refuses_the_order(
    world: World, cast: Any
) -> None:
    from ketamine_clinic.web.patients import services as patients

    patients.medication_record(actor=world.actor(cast.alice), patient=cast.ana,
                               name="gabapentin")
    problem = _refused_for_screening(world)
    assert "the patient's facts have changed since the screening (medications)" in problem
    fresh = world.screen()
    assert fresh.facts["medications"] == ["gabapentin"]
    assert world.write().series.screening == fresh


def test_a_screening_that_started_a_series_does_not_start_another(world: World) -> None:
    first = world.write()
    assert first.series.screening == world.screening
    problem = _refused_for_screening(world, screen_first=False)
    assert "a new series needs a new screening" in problem
    fresh = world.screen()
    second = world.write(screen_first=False)
    assert second.series != first.series
    assert second.series.screening == fresh


def test_a_change_within_a_series_keeps_using_the_series_screening(world: World) -> None:
    from .conftest import ORDER

    old = world.active()
    new = services.order_change(actor=world.actor(world.cast.alice), order=old,
                                change_reason="lower maximum",
                                **{**ORDER, "max_rate": "60 mg/h", "titration_step": ""})
    assert new.series == old.series
    assert new.computed["screening_id"] == world.screening.pk


def test_signing_rechecks_the_screening(world: World, cast: Any) -> None:
    from ketamine_clinic.web.patients import services as patients

    draft = world.write()
    patients.medication_record(actor=world.actor(cast.alice), patient=cast.ana,
                               name="gabapentin")
    with pytest.raises(UsageError) as err:
        services.order_sign(actor=world.actor(cast.alice), order=draft)
    assert err.value.field == "screening"
    assert "facts have changed since the screening (medications)" in err.value.problem
    draft.refresh_from_db()
    assert draft.status == Order.Status.DRAFT
    world.screen()  # the nurse screens again with the new medication
    signed = services.order_sign(actor=world.actor(cast.alice), order=draft)
    assert signed.status == Order.Status.SIGNED


def test_a_screening_needing_review_allows_an_order_once_every_reason_is_overridden(
    world: World, cast: Any
) -> None:
    from ketamine_clinic.clinical.protocol import condition_vocabulary
    from ketamine_clinic.web.protocols.services import screening_override

    s = screen_with(world, medications_complete=False, conditions=["history_of_psychosis"],
                    conditions_absent=[c for c in condition_vocabulary()
                                       if c != "history_of_psychosis"])
    assert s.decision == "needs-physician-review"
    review = sorted(r["rule"] for r in s.reasons if r["severity"] == "review")
    assert review == ["interactions", "psychosis_history"]
    doctor = world.actor(cast.alice)
    screening_override(actor=doctor, screening=s, rule="psychosis_history",
                       justification="single episode in 2001, stable since")
    assert "awaiting a physician's review of interactions" in _refused_for_screening(world)
    screening_override(actor=doctor, screening=s, rule="interactions",
                       justification="list checked by phone with the pharmacy")
    assert world.write().series.screening == s


def screen_with(world: World, **answers: Any) -> Any:
    from .conftest import screen

    return screen(world.cast, world.cast.ana, world.pv, **answers)


# --------------------------------------------------------------------------- limits


def test_a_soft_limit_needs_a_coded_reason_and_text_and_every_event_is_kept(
    world: World,
) -> None:
    # 100 mg/h at 70 kg is 1.43 mg/kg/h: above the soft 1 mg/kg/h, below the hard 2.
    with pytest.raises(services.LimitRefusal) as err:
        world.write(max_rate="100 mg/h")
    assert err.value.field == "override.rate_mg_per_kg_per_h"
    hit = LimitEvent.objects.get()
    assert (hit.outcome, hit.kind, hit.quantity, hit.context) == (
        "hit", "soft", "rate_mg_per_kg_per_h", "write")
    assert hit.order is None
    assert hit.patient == world.cast.ana
    assert hit.value == pytest.approx(100 / 70)
    assert hit.bound == 1
    assert hit.by == world.cast.alice
    assert hit.protocol_version == world.pv
    assert Order.objects.count() == 0

    override = Override("rate_mg_per_kg_per_h", "titrated-to-effect", "watched at bedside")
    order = world.write(max_rate="100 mg/h", overrides=[override])
    event = LimitEvent.objects.get(order=order)
    assert (event.outcome, event.reason_code, event.reason_text) == (
        "overridden", "titrated-to-effect", "watched at bedside")
    signed = services.order_sign(actor=world.actor(world.cast.alice), order=order)
    assert signed.status == Order.Status.SIGNED
    assert LimitEvent.objects.filter(order=order, context="sign", outcome="overridden").exists()


def test_an_override_without_text_or_with_an_unknown_code_is_refused(world: World) -> None:
    for override, field in (
        (Override("rate_mg_per_kg_per_h", "other", "  "), "free_text"),
        (Override("rate_mg_per_kg_per_h", "because", "text"), "reason_code"),
    ):
        with pytest.raises(UsageError) as err:
            world.write(max_rate="100 mg/h", overrides=[override])
        assert err.value.field.endswith(field)
    assert Order.objects.count() == 0


def test_a_hard_limit_blocks_even_with_an_override(world: World) -> None:
    override = Override("rate_mg_per_h", "other", "I insist")
    with pytest.raises(services.LimitRefusal) as err:
        world.write(max_rate="150 mg/h", titration_step="10 mg/h", overrides=[override])
    # 150 mg/h > 140 mg/h, and at 70 kg 2.14 mg/kg/h > 2 mg/kg/h: both hard limits
    assert err.value.field in ("limits.rate_mg_per_h", "limits.rate_mg_per_kg_per_h")
    assert "blocked" in err.value.problem
    blocked = LimitEvent.objects.filter(outcome="blocked", kind="hard")
    assert set(blocked.values_list("quantity", flat=True)) == {
        "rate_mg_per_h", "rate_mg_per_kg_per_h"}
    assert Order.objects.count() == 0


def test_a_pump_rate_typed_as_the_mg_per_h_number_asks_for_confirmation(
    world: World,
) -> None:
    # At 0.5 mg/mL, "60 mL/h" is 30 mg/h: the same number as the usual 60 mg/h.
    bag = "250 mg in 500 mL"
    with pytest.raises(services.LimitRefusal) as err:
        world.write(bag=bag, start_rate="60 mL/h")
    assert err.value.field == "confirm.pump_rate_equals_mg_per_h"
    assert Order.objects.count() == 0
    order = world.write(bag=bag, start_rate="60 mL/h", confirmed=["pump_rate_equals_mg_per_h"])
    assert order.computed["start"]["rate_mg_per_h"] == 30
    assert order.computed["start"]["pump_rate_ml_per_h"] == 60
    assert LimitEvent.objects.filter(order=order, outcome="confirmed",
                                     quantity="pump_rate_equals_mg_per_h").count() == 1


def test_a_tenth_of_the_usual_rate_asks_for_confirmation(world: World) -> None:
    # 6 mg/h is 0.1 x the usual 60 mg/h (inclusive), a decimal slip?
    with pytest.raises(services.LimitRefusal) as err:
        world.write(start_rate="6 mg/h", max_rate="6 mg/h", titration_step="")
    asking = {c.code for c in err.value.acceptance.missing_confirmations}
    assert "usual_rate_ratio" in asking


# --------------------------------------------------------------------------- signing


def test_a_physician_signs_a_draft_and_the_check_is_re_run(world: World) -> None:
    order = world.signed()
    assert order.status == Order.Status.SIGNED
    assert order.signed_by == world.cast.alice
    assert order.signed_computed["checked_on"] == timezone.localdate().isoformat()
    assert OrderEvent.objects.filter(order=order, kind="signed").count() == 1


def test_a_nurse_trying_to_sign_is_refused(world: World) -> None:
    order = world.write()
    with pytest.raises(UsageError) as err:
        services.order_sign(actor=world.actor(world.cast.bob), order=order)
    assert err.value.field == "signed_by"
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT


def test_a_signed_order_cannot_be_signed_again(world: World) -> None:
    order = world.signed()
    with pytest.raises(UsageError) as err:
        services.order_sign(actor=world.actor(world.cast.alice), order=order)
    assert err.value.field == "status"


def test_a_weight_that_aged_past_the_limit_before_signing_is_refused(world: World) -> None:
    order = world.write()
    Measurement.objects.filter(pk=world.weight.pk).update(
        measured_at=timezone.now() - timedelta(days=40))
    with pytest.raises(UsageError) as err:
        services.order_sign(actor=world.actor(world.cast.alice), order=order)
    assert err.value.field == "weight"
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT


# --------------------------------------------------------------------------- double check


def test_a_second_clinician_who_enters_the_same_numbers_makes_the_order_active(
    world: World,
) -> None:
    order = services.order_verify(actor=world.actor(world.cast.bob), order=world.signed(),
                                  concentration_mg_per_ml="1 mg/mL",
                                  pump_rate_ml_per_h="60")
    assert order.status == Order.Status.ACTIVE
    assert order.verified_by == world.cast.bob
    event = OrderEvent.objects.get(order=order, kind="verified")
    assert event.detail["entered"] == {"concentration_mg_per_ml": 1, "pump_rate_ml_per_h": 60}


@pytest.mark.parametrize(
    ("concentration", "pump", "field"),
    [("0.5", "60", "concentration_mg_per_ml"), ("1", "6", "pump_rate_ml_per_h"),
     ("1", "600 mL/h", "pump_rate_ml_per_h")],
)
def test_a_mismatch_in_the_double_check_blocks_and_is_recorded(
    world: World, concentration: str, pump: str, field: str
) -> None:
    order = world.signed()
    with pytest.raises(UsageError) as err:
        services.order_verify(actor=world.actor(world.cast.bob), order=order,
                              concentration_mg_per_ml=concentration, pump_rate_ml_per_h=pump)
    assert err.value.field == field
    assert "60" not in err.value.problem  # the order's numbers are not revealed
    order.refresh_from_db()
    assert order.status == Order.Status.SIGNED
    mismatch = OrderEvent.objects.get(order=order, kind="verification_mismatch")
    assert mismatch.by == world.cast.bob
    assert AuditEntry.objects.filter(action="order.verify_mismatch").count() == 1


def test_the_physician_who_signed_cannot_verify(world: World) -> None:
    order = world.signed()
    with pytest.raises(UsageError) as err:
        services.order_verify(actor=world.actor(world.cast.alice), order=order,
                              concentration_mg_per_ml="1", pump_rate_ml_per_h="60")
    assert err.value.field == "verified_by"


@pytest.mark.parametrize(
    ("concentration", "pump", "field"),
    [("", "60", "concentration_mg_per_ml"), ("1", "", "pump_rate_ml_per_h"),
     ("-1", "60", "concentration_mg_per_ml"), ("1", "0", "pump_rate_ml_per_h"),
     ("1", "60 mg/h", "pump_rate_ml_per_h"), ("one", "60", "concentration_mg_per_ml")],
)
def test_bad_double_check_entries_are_refused_naming_the_field(
    world: World, concentration: str, pump: str, field: str
) -> None:
    order = world.signed()
    with pytest.raises(UsageError) as err:
        services.order_verify(actor=world.actor(world.cast.bob), order=order,
                              concentration_mg_per_ml=concentration, pump_rate_ml_per_h=pump)
    assert err.value.field == field
    assert not OrderEvent.objects.filter(order=order, kind__startswith="verif").exists()


def test_a_draft_cannot_be_verified(world: World) -> None:
    with pytest.raises(UsageError) as err:
        services.order_verify(actor=world.actor(world.cast.bob), order=world.write(),
                              concentration_mg_per_ml="1", pump_rate_ml_per_h="60")
    assert err.value.field == "status"


def test_the_front_desk_cannot_verify(world: World) -> None:
    with pytest.raises(UsageError) as err:
        services.order_verify(actor=world.actor(world.cast.carol), order=world.signed(),
                              concentration_mg_per_ml="1", pump_rate_ml_per_h="60")
    assert err.value.field == "verified_by"


# --------------------------------------------------------------------------- ending and changing


def test_an_active_order_is_completed_and_its_series_ended(world: World) -> None:
    order = services.order_complete(actor=world.actor(world.cast.alice), order=world.active())
    assert order.status == Order.Status.COMPLETED
    order.series.refresh_from_db()
    assert order.series.ended_at is not None


def test_only_an_active_order_can_be_completed(world: World) -> None:
    with pytest.raises(UsageError) as err:
        services.order_complete(actor=world.actor(world.cast.alice), order=world.signed())
    assert err.value.field == "status"


def test_discontinuing_needs_a_reason_and_keeps_the_order(world: World) -> None:
    order = world.active()
    with pytest.raises(UsageError) as err:
        services.order_discontinue(actor=world.actor(world.cast.alice), order=order,
                                   reason=" ")
    assert err.value.field == "reason"
    done = services.order_discontinue(actor=world.actor(world.cast.alice), order=order,
                                      reason="patient moved")
    assert (done.status, done.ended_reason) == (Order.Status.DISCONTINUED, "patient moved")
    with pytest.raises(UsageError):
        services.order_discontinue(actor=world.actor(world.cast.alice), order=done,
                                   reason="again")


def test_a_nurse_cannot_discontinue(world: World) -> None:
    with pytest.raises(UsageError) as err:
        services.order_discontinue(actor=world.actor(world.cast.bob), order=world.active(),
                                   reason="x")
    assert err.value.field == "ended_by"


def test_a_change_discontinues_the_signed_order_and_links_a_new_draft(world: World) -> None:
    from .conftest import ORDER

    old = world.active()
    new = services.order_change(actor=world.actor(world.cast.alice), order=old,
                                change_reason="lower maximum",
                                **{**ORDER, "max_rate": "60 mg/h", "titration_step": ""})
    old.refresh_from_db()
    assert old.status == Order.Status.DISCONTINUED
    assert old.ended_reason == "changed: lower maximum"
    assert new.replaces == old
    assert new.series == old.series
    assert new.status == Order.Status.DRAFT
    assert old.start_rate_text == "60 mg/h"  # the signed order itself is unchanged
    assert old.max_rate_text == "70 mg/h"


def test_a_refused_change_leaves_the_old_order_active(world: World) -> None:
    from .conftest import ORDER

    old = world.active()
    with pytest.raises(services.LimitRefusal):
        services.order_change(actor=world.actor(world.cast.alice), order=old,
                              change_reason="more", **{**ORDER, "max_rate": "150 mg/h"})
    old.refresh_from_db()
    assert old.status == Order.Status.ACTIVE
    assert Order.objects.count() == 1


def test_a_change_needs_a_reason(world: World) -> None:
    from .conftest import ORDER

    with pytest.raises(UsageError) as err:
        services.order_change(actor=world.actor(world.cast.alice), order=world.active(),
                              change_reason="", **ORDER)
    assert err.value.field == "change_reason"


# --------------------------------------------------------------------------- for sessions


def test_rate_changes_during_a_session_are_held_to_the_signed_order(world: World) -> None:
    from .conftest import make_weight

    make_weight(world.cast, world.cast.ana, "80", days_ago=0)
    world.screen()  # a new weight is a new fact: screened again before the order
    order = world.active()
    rules, extra = order_rate_rules(order)
    r = order_rate_rules(order)
    assert r.weight_kg == 80
    assert r.concentration_mg_per_ml == 1
    assert r.ordered_rates_mg_per_h == (60, 70)
    # At 80 kg, 80 mg/h (1 mg/kg/h) is inside the protocol's limits but above the ordered
    # maximum of 70 mg/h.
    result = check_rate(parse_rate("80 mg/h"), rules=rules, weight_kg=r.weight_kg,
                        concentration_mg_per_ml=r.concentration_mg_per_ml,
                        previous_rate_mg_per_h=Fraction(70),
                        minutes_since_last_change=Fraction(30), extra_limits=extra)
    over = [c for c in result.limit_checks if c.exceeded]
    assert [(c.limit.quantity, c.limit.upper) for c in over] == [("rate_mg_per_h", 70)]


def test_limit_events_from_a_session_are_stored_with_the_mapped_outcome(world: World) -> None:
    from ketamine_clinic.clinical.limit_checks import accept

    order = world.active()
    r = order_rate_rules(order)
    result = check_rate(parse_rate("150 mg/h"), rules=r.rules, weight_kg=r.weight_kg,
                        concentration_mg_per_ml=r.concentration_mg_per_ml,
                        extra_limits=r.extra_limits)
    rows = services.limit_event_record(
        actor=world.actor(world.cast.bob), acceptance=accept(result.limit_checks),
        protocol_version=order.protocol_version, context="rate_change", order=order,
        session_id=7)
    assert {(e.quantity, e.kind, e.outcome) for e in rows} == {
        ("rate_mg_per_h", "hard", "blocked"), ("rate_mg_per_h", "soft", "hit"),
        ("rate_mg_per_kg_per_h", "hard", "blocked"), ("rate_mg_per_kg_per_h", "soft", "hit")}
    assert all(e.session_id_value == 7 and e.patient == order.patient for e in rows)
    with pytest.raises(UsageError):
        services.limit_event_record(actor=world.actor(world.cast.bob),
                                    acceptance=accept(result.limit_checks),
                                    protocol_version=order.protocol_version,
                                    context="lunch", order=order)
