"""Exact dose integration, session limits, alarms, overdue checks and corrections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.monitoring import (
    EntryStatus,
    InfusionStatus,
    RateEvent,
    TimelineEntry,
    VitalSigns,
    VitalThreshold,
    alarm_episodes,
    check_session_limits,
    effective_entries,
    effective_payloads,
    fold_corrections,
    infusion_totals,
    vital_alarms,
    vitals_overdue,
)
from ketamine_clinic.errors import UsageError

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# 60 mg/h for 30 min, 90 mg/h for 30 min, paused 10 min, resumed at 90 for 50 min:
# 30 + 45 + 75 = 150 mg (hand-computed).
HISTORY = (
    RateEvent.start(at(0), 60),
    RateEvent.rate_change(at(30), 90),
    RateEvent.pause(at(60)),
    RateEvent.resume(at(70)),
    RateEvent.stop(at(120)),
)


def test_it_integrates_a_stopped_infusion_exactly() -> None:
    totals = infusion_totals(HISTORY, weight_kg=70, concentration_mg_per_ml=2)
    assert totals.total_mg == 150
    assert totals.total_mg_per_kg == Fraction(15, 7)
    assert totals.volume_ml == 75
    assert totals.infusing_time == timedelta(minutes=110)
    assert totals.paused_time == timedelta(minutes=10)
    assert totals.status is InfusionStatus.STOPPED
    assert totals.current_rate_mg_per_h == 0


def test_it_integrates_a_running_infusion_up_to_now() -> None:
    totals = infusion_totals(HISTORY[:4], weight_kg=70, concentration_mg_per_ml=1, at=at(100))
    assert totals.total_mg == 30 + 45 + 45  # resumed 30 min at 90 mg/h
    assert totals.status is InfusionStatus.RUNNING
    assert totals.current_rate_mg_per_h == 90
    assert totals.current_pump_rate_ml_per_h == 90


def test_the_dose_at_an_earlier_time_ignores_later_events() -> None:
    totals = infusion_totals(HISTORY, weight_kg=70, concentration_mg_per_ml=1, at=at(65))
    assert totals.total_mg == 75
    assert totals.status is InfusionStatus.PAUSED
    assert totals.paused_time == timedelta(minutes=5)


def test_a_running_infusion_needs_a_time_to_integrate_to() -> None:
    with pytest.raises(UsageError) as info:
        infusion_totals(HISTORY[:2], weight_kg=70, concentration_mg_per_ml=1)
    assert info.value.field == "at"


def test_decimal_rates_stay_exact() -> None:
    # 0.1 mg/h for 20 min is exactly 1/30 mg; floats would give 0.0333...34.
    events = (RateEvent.start(at(0), 0.1), RateEvent.stop(at(20)))
    assert infusion_totals(events, weight_kg=70, concentration_mg_per_ml=1).total_mg == Fraction(
        1, 30
    )


def test_boluses_add_to_the_total() -> None:
    events = (RateEvent.bolus(at(0), "17.5"), *HISTORY)
    totals = infusion_totals(events, weight_kg=70, concentration_mg_per_ml=1)
    assert totals.bolus_mg == Fraction(35, 2)
    assert totals.total_mg == Fraction(335, 2)


def test_a_resume_with_a_new_rate_uses_it() -> None:
    events = (
        RateEvent.start(at(0), 60),
        RateEvent.pause(at(30)),
        RateEvent.resume(at(40), 30),
        RateEvent.stop(at(100)),
    )
    assert infusion_totals(events, weight_kg=70, concentration_mg_per_ml=1).total_mg == 60


@pytest.mark.parametrize(
    ("events", "bad"),
    [
        ((RateEvent.rate_change(at(0), 60),), "rate_events[0]"),
        ((RateEvent.start(at(0), 60), RateEvent.resume(at(5))), "rate_events[1]"),
        ((RateEvent.start(at(10), 60), RateEvent.stop(at(5))), "rate_events[1]"),
        (
            (RateEvent.start(at(0), 60), RateEvent.stop(at(5)), RateEvent.start(at(6), 60)),
            "rate_events[2]",
        ),
    ],
)
def test_it_refuses_an_impossible_pump_history(events: tuple[RateEvent, ...], bad: str) -> None:
    with pytest.raises(UsageError) as info:
        infusion_totals(events, weight_kg=70, concentration_mg_per_ml=1, at=at(60))
    assert info.value.field == bad


def test_it_refuses_zero_rates_naive_times_and_implausible_weights() -> None:
    with pytest.raises(UsageError, match="pause"):
        RateEvent.start(at(0), 0)
    with pytest.raises(UsageError, match="time zone"):
        RateEvent.start(datetime(2025, 1, 1, 10), 60)
    with pytest.raises(UsageError) as info:
        infusion_totals(HISTORY, weight_kg=7000, concentration_mg_per_ml=1)
    assert info.value.field == "weight_kg"


def test_hours_are_exact_to_the_microsecond() -> None:
    got = units.h_from_timedelta(timedelta(minutes=20, microseconds=1))
    assert got == Fraction(1, 3) + Fraction(1, 3_600_000_000)


steps = st.lists(
    st.tuples(
        st.integers(0, 600), st.sampled_from(["rate", "pause", "resume"]), st.integers(1, 120)
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(steps, st.integers(1, 120))
def test_the_dose_equals_a_second_by_second_sum(
    plan: list[tuple[int, str, int]], first_rate: int
) -> None:
    # Build a valid history on whole seconds, then integrate it independently by
    # summing rate/3600 over every second (exact for piecewise-constant rates).
    events = [RateEvent.start(T0, first_rate)]
    t, running = 0, True
    for gap, action, rate in plan:
        t += gap
        when = T0 + timedelta(seconds=t)
        if running and action == "rate":
            events.append(RateEvent.rate_change(when, rate))
        elif running and action == "pause":
            events.append(RateEvent.pause(when))
            running = False
        elif not running and action == "resume":
            events.append(RateEvent.resume(when, rate))
            running = True
    end = t + 60
    events.append(RateEvent.stop(T0 + timedelta(seconds=end)))

    expected = Fraction(0)
    for second in range(end):
        moment = T0 + timedelta(seconds=second)
        rate_now = Fraction(0)
        for ev in events:
            if ev.at > moment:
                break
            if ev.rate_mg_per_h is not None:
                rate_now = ev.rate_mg_per_h
            elif ev.kind.value in ("pause", "stop"):
                rate_now = Fraction(0)
        expected += rate_now / 3600
    totals = infusion_totals(events, weight_kg=70, concentration_mg_per_ml=1)
    assert totals.total_mg == expected
    assert totals.infusing_time + totals.paused_time == timedelta(seconds=end)


# --------------------------------------------------------------------------- limits

HARD_200 = Limit("session_total_mg", LimitKind.HARD, None, 200, "test limit")
SOFT_2_PER_KG = Limit("session_total_mg_per_kg", LimitKind.SOFT, None, 2, "test limit")


def test_the_projected_total_is_checked_against_session_limits() -> None:
    running = (RateEvent.start(at(0), 60),)
    check = check_session_limits(
        running,
        weight_kg=80,
        concentration_mg_per_ml=1,
        now=at(60),
        planned_end=at(240),
        limits=[HARD_200, SOFT_2_PER_KG, Limit("rate_mg_per_h", LimitKind.HARD, None, 1, "x")],
    )
    assert check.projected_mg == 240
    assert check.projected_mg_per_kg == 3
    assert check.hard_limit_exceeded
    assert check.soft_limit_exceeded
    by_quantity = {f.check.limit.quantity: f for f in check.findings}
    assert set(by_quantity) == {"session_total_mg", "session_total_mg_per_kg"}
    # 60 mg given; 140 mg more at 60 mg/h takes 2 h 20 min.
    assert by_quantity["session_total_mg"].reached_at == at(200)
    assert by_quantity["session_total_mg_per_kg"].reached_at == at(160)
    assert check.to_dict()["findings"][0]["status"] == "exceeded"


def test_a_total_equal_to_the_limit_is_within_it() -> None:
    running = (RateEvent.start(at(0), 50),)
    check = check_session_limits(
        running,
        weight_kg=80,
        concentration_mg_per_ml=1,
        now=at(0),
        planned_end=at(240),
        limits=[HARD_200],
    )
    assert check.projected_mg == 200
    assert not check.hard_limit_exceeded


def test_a_paused_infusion_is_projected_at_the_rate_before_the_pause() -> None:
    events = (RateEvent.start(at(0), 60), RateEvent.pause(at(60)))
    check = check_session_limits(
        events,
        weight_kg=80,
        concentration_mg_per_ml=1,
        now=at(90),
        planned_end=at(150),
        limits=[HARD_200],
    )
    assert check.assumed_rate_mg_per_h == 60
    assert check.projected_mg == 120


# --------------------------------------------------------------------------- vitals

# The ED protocol's "do not give" bounds [S38], used here as example protocol data.
S38 = [
    VitalThreshold("systolic_bp_mmhg", 90, 180, "S38"),
    VitalThreshold("heart_rate_per_min", 50, 150, "S38"),
    VitalThreshold("respiratory_rate_per_min", 10, 30, "S38"),
]


def test_it_raises_an_alarm_for_each_vital_beyond_its_threshold() -> None:
    vs = VitalSigns(
        at(15),
        systolic_bp_mmhg=185,
        diastolic_bp_mmhg=95,
        heart_rate_per_min=48,
        respiratory_rate_per_min=16,
    )
    alarms = vital_alarms(vs, S38)
    assert {(a.vital, a.bound) for a in alarms} == {
        ("systolic_bp_mmhg", "high"),
        ("heart_rate_per_min", "low"),
    }


def test_a_value_on_the_threshold_does_not_alarm() -> None:
    vs = VitalSigns(at(15), systolic_bp_mmhg=180, diastolic_bp_mmhg=90, heart_rate_per_min=50)
    assert vital_alarms(vs, S38) == ()


def test_missing_signs_raise_no_alarm() -> None:
    assert vital_alarms(VitalSigns(at(15)), S38) == ()


def test_an_alarm_episode_runs_from_crossing_until_the_sign_returns() -> None:
    series = [
        VitalSigns(at(0), systolic_bp_mmhg=150, diastolic_bp_mmhg=80),
        VitalSigns(at(15), systolic_bp_mmhg=190, diastolic_bp_mmhg=100),
        VitalSigns(at(30), heart_rate_per_min=80),  # no BP: episode continues
        VitalSigns(at(45), systolic_bp_mmhg=200, diastolic_bp_mmhg=100),
        VitalSigns(at(60), systolic_bp_mmhg=170, diastolic_bp_mmhg=90),
        VitalSigns(at(75), systolic_bp_mmhg=182, diastolic_bp_mmhg=90),
    ]
    episodes = alarm_episodes(series, S38)
    assert [(e.raised_at, e.cleared_at, e.worst_value) for e in episodes] == [
        (at(15), at(60), 200),
        (at(75), None, 182),
    ]
    assert episodes[1].active


def test_implausible_vitals_are_refused_by_name() -> None:
    with pytest.raises(UsageError) as info:
        VitalSigns(at(0), spo2_percent=101)
    assert info.value.field == "spo2_percent"
    with pytest.raises(UsageError):
        VitalSigns(at(0), systolic_bp_mmhg=80, diastolic_bp_mmhg=90)


def test_vitals_are_overdue_only_strictly_after_the_interval() -> None:
    interval = timedelta(minutes=15)
    on_time = vitals_overdue(at(15), monitoring_since=at(0), now=at(30), interval=interval)
    assert not on_time.overdue
    assert on_time.overdue_by == timedelta(0)
    late = vitals_overdue(at(15), monitoring_since=at(0), now=at(37), interval=interval)
    assert late.overdue
    assert late.overdue_by == timedelta(minutes=7)
    assert late.to_dict()["overdue_by_min"] == 7


def test_a_baseline_set_before_the_start_does_not_shorten_the_first_interval() -> None:
    status = vitals_overdue(
        at(-10), monitoring_since=at(0), now=at(12), interval=timedelta(minutes=15)
    )
    assert status.due_at == at(15)
    assert not status.overdue
    never = vitals_overdue(None, monitoring_since=at(0), now=at(20), interval=timedelta(minutes=15))
    assert never.overdue_by == timedelta(minutes=5)


# --------------------------------------------------------------------------- corrections


def entry(entry_id: str, minute: float, payload: object, **kw: object) -> TimelineEntry[object]:
    return TimelineEntry(entry_id, kw.pop("kind", "rate"), at(minute), payload, **kw)  # type: ignore[arg-type]


def test_a_correction_supersedes_the_original_which_stays_marked() -> None:
    entries = [
        entry("a", 0, RateEvent.start(at(0), 60)),
        entry("b", 30, RateEvent.rate_change(at(30), 900)),  # a decimal slip
        entry("c", 30, RateEvent.rate_change(at(30), 90), corrects="b", reason="typo: 90"),
        entry("d", 90, RateEvent.stop(at(90))),
    ]
    folded = {f.entry.entry_id: f for f in fold_corrections(entries)}
    assert folded["b"].status is EntryStatus.SUPERSEDED
    assert folded["b"].replaced_by == "c"
    assert folded["c"].status is EntryStatus.EFFECTIVE
    assert folded["c"].replaces == ("b",)
    payloads = effective_payloads(entries, "rate")
    totals = infusion_totals(payloads, weight_kg=70, concentration_mg_per_ml=1)  # type: ignore[arg-type]
    assert totals.total_mg == 30 + 90


def test_an_entry_marked_entered_in_error_leaves_the_derived_view() -> None:
    entries = [
        entry("a", 0, "first", kind="note"),
        entry("b", 5, "wrong patient", kind="note"),
        entry("x", 6, None, kind="note", corrects="b", reason="wrong chart", entered_in_error=True),
    ]
    statuses = [f.status for f in fold_corrections(entries)]
    assert statuses == [EntryStatus.EFFECTIVE, EntryStatus.ENTERED_IN_ERROR, EntryStatus.RETRACTION]
    assert [e.entry_id for e in effective_entries(entries)] == ["a"]


def test_a_correction_of_a_correction_chains() -> None:
    entries = [
        entry("a", 0, 1, kind="pain"),
        entry("b", 0, 2, kind="pain", corrects="a", reason="r1"),
        entry("c", 0, 3, kind="pain", corrects="b", reason="r2"),
    ]
    last = fold_corrections(entries)[-1]
    assert last.replaces == ("a", "b")
    assert [e.payload for e in effective_entries(entries)] == [3]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (entry("b", 0, 2, kind="pain", corrects="zz", reason="r"), "unknown"),
        (entry("b", 0, 2, kind="pain", corrects="a"), "reason"),
        (entry("b", 0, 2, kind="vitals", corrects="a", reason="r"), "cannot correct"),
        (entry("a", 0, 2, kind="pain"), "duplicate"),
    ],
)
def test_it_refuses_a_malformed_correction(bad: TimelineEntry[object], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        fold_corrections([entry("a", 0, 1, kind="pain"), bad])


def test_an_already_corrected_entry_must_be_corrected_through_its_correction() -> None:
    entries = [
        entry("a", 0, 1, kind="pain"),
        entry("b", 0, 2, kind="pain", corrects="a", reason="r"),
        entry("c", 0, 3, kind="pain", corrects="a", reason="r"),
    ]
    with pytest.raises(UsageError, match="correct 'b' instead"):
        fold_corrections(entries)
