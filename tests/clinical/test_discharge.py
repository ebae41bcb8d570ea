"""Recovery scores item by item, the discharge gate and the no-driving time (issue 7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketamine_clinic.clinical.discharge import (
    DischargeGateInput,
    Override,
    PainScores,
    deviation_percent,
    discharge_gate,
    get_score_definition,
    no_driving_until,
    overridable_items,
    score_definitions,
    score_discharge,
)
from ketamine_clinic.clinical.monitoring import VitalSigns
from ketamine_clinic.errors import UsageError

STOP = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)
BASELINE = VitalSigns(
    STOP - timedelta(hours=4),
    systolic_bp_mmhg=120,
    diastolic_bp_mmhg=75,
    heart_rate_per_min=70,
    respiratory_rate_per_min=14,
    spo2_percent=98,
)


def now_vitals(**kw: object) -> VitalSigns:
    values: dict[str, object] = {
        "systolic_bp_mmhg": 125,
        "diastolic_bp_mmhg": 78,
        "heart_rate_per_min": 75,
        "respiratory_rate_per_min": 14,
        "spo2_percent": 97,
    }
    values.update(kw)
    return VitalSigns(STOP + timedelta(minutes=60), **values)  # type: ignore[arg-type]


ALDRETE_OBSERVED = {"activity": 2, "respiration": 2, "consciousness": 2}
PADSS_OBSERVED = {"activity_mental_status": 2, "pain_nausea_vomiting": 2, "intake_output": 2}


def aldrete(current: VitalSigns, **observed: int) -> int:
    obs = {**ALDRETE_OBSERVED, **observed}
    return score_discharge(
        "aldrete_modified_1995", baseline=BASELINE, current=current, observed=obs
    ).total


@pytest.mark.parametrize("key", ["aldrete_modified_1995", "padss", "padss_modified"])
def test_each_score_has_five_items_a_maximum_of_10_and_threshold_9(key: str) -> None:
    d = get_score_definition(key)
    assert len(d.items) == 5
    assert d.maximum == 10
    assert d.threshold == 9
    assert d.source in ("S32", "S33")


def test_the_modified_padss_drops_intake_and_output_and_splits_pain_and_nausea() -> None:
    keys = [i.key for i in score_definitions()["padss_modified"].items]
    assert "intake_output" not in keys
    assert {"ambulation", "nausea_vomiting", "pain", "surgical_bleeding"} <= set(keys)


def test_the_deviation_from_baseline_is_exact() -> None:
    assert deviation_percent(120, 144) == 20
    assert deviation_percent(70, 98) == 40
    assert deviation_percent(120, 96) == 20


@pytest.mark.parametrize(
    ("sbp", "points"),
    [(144, 2), (96, 2), (145, 1), (179, 1), (180, 0), (60, 0), (61, 1)],
)
def test_aldrete_circulation_is_scored_against_the_pre_infusion_pressure(
    sbp: float, points: int
) -> None:
    # 120 mmHg baseline: ±20% is 96–144; ±50% is 60 or 180 (hand-computed).
    current = now_vitals(systolic_bp_mmhg=sbp, diastolic_bp_mmhg=50)
    assert aldrete(current) == 8 + points


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "points"),
    [(93, False, 2), (92, False, 1), (93, True, 1), (91, True, 1), (90, True, 0), (89, False, 0)],
)
def test_aldrete_oxygen_saturation_uses_room_air_and_oxygen(
    spo2: float, on_oxygen: bool, points: int
) -> None:
    assert aldrete(now_vitals(spo2_percent=spo2, on_oxygen=on_oxygen)) == 8 + points


def test_an_aldrete_of_9_passes_and_8_does_not() -> None:
    passing = score_discharge(
        "aldrete_modified_1995",
        baseline=BASELINE,
        current=now_vitals(),
        observed={**ALDRETE_OBSERVED, "consciousness": 1},
    )
    assert passing.total == 9
    assert passing.passed
    failing = score_discharge(
        "aldrete_modified_1995",
        baseline=BASELINE,
        current=now_vitals(),
        observed={**ALDRETE_OBSERVED, "consciousness": 1, "activity": 1},
    )
    assert failing.total == 8
    assert not failing.passed


def test_a_protocol_may_set_its_own_threshold() -> None:
    s = score_discharge(
        "aldrete_modified_1995",
        baseline=BASELINE,
        current=now_vitals(),
        observed={**ALDRETE_OBSERVED, "consciousness": 1, "activity": 1},
        threshold=8,
    )
    assert s.passed
    assert s.threshold_source == "protocol threshold"


@pytest.mark.parametrize(("hr", "points"), [(98, 1), (99, 0), (84, 2), (85, 1)])
def test_padss_vital_signs_take_the_worst_deviation(hr: float, points: int) -> None:
    # HR baseline 70: 84 is 20%, 85 is 21.4%, 98 is 40%, 99 is 41.4% (hand-computed).
    s = score_discharge(
        "padss",
        baseline=BASELINE,
        current=now_vitals(heart_rate_per_min=hr),
        observed=PADSS_OBSERVED,
    )
    vital = s.items[0]
    assert vital.points == points
    assert vital.basis == "computed"
    assert vital.detail["worst_measure"] == "heart_rate_per_min"


def test_padss_bleeding_defaults_to_2_for_an_iv_site_and_records_the_choice() -> None:
    s = score_discharge("padss", baseline=BASELINE, current=now_vitals(), observed=PADSS_OBSERVED)
    bleeding = next(i for i in s.items if i.key == "surgical_bleeding")
    assert bleeding.points == 2
    assert bleeding.basis == "default"
    assert "IV site" in bleeding.detail["default_basis"]
    assert s.total == 10
    recorded = score_discharge(
        "padss",
        baseline=BASELINE,
        current=now_vitals(),
        observed={**PADSS_OBSERVED, "surgical_bleeding": 1},
    )
    assert next(i for i in recorded.items if i.key == "surgical_bleeding").basis == "observed"
    assert recorded.total == 9


def test_respiratory_rate_counts_only_when_measured_before_and_now() -> None:
    fast = now_vitals(respiratory_rate_per_min=22)  # 57% above 14
    s = score_discharge("padss", baseline=BASELINE, current=fast, observed=PADSS_OBSERVED)
    assert s.items[0].points == 0
    unmeasured = now_vitals(respiratory_rate_per_min=None)
    s = score_discharge("padss", baseline=BASELINE, current=unmeasured, observed=PADSS_OBSERVED)
    assert "respiratory_rate_per_min" not in s.items[0].detail["deviation_percent"]


def test_a_missing_required_measure_is_named() -> None:
    with pytest.raises(UsageError) as info:
        score_discharge(
            "padss",
            baseline=BASELINE,
            current=now_vitals(heart_rate_per_min=None),
            observed=PADSS_OBSERVED,
        )
    assert info.value.field == "current.heart_rate_per_min"


@pytest.mark.parametrize(
    ("observed", "field"),
    [
        ({**ALDRETE_OBSERVED, "activity": 3}, "observed.activity"),
        ({"activity": 2, "respiration": 2}, "observed.consciousness"),
        ({**ALDRETE_OBSERVED, "colour": 2}, "observed.colour"),
    ],
)
def test_it_refuses_bad_observations_by_item(observed: dict[str, int], field: str) -> None:
    with pytest.raises(UsageError) as info:
        score_discharge(
            "aldrete_modified_1995", baseline=BASELINE, current=now_vitals(), observed=observed
        )
    assert info.value.field == field


def test_a_score_is_json_with_its_inputs() -> None:
    s = score_discharge(
        "padss_modified",
        baseline=BASELINE,
        current=now_vitals(),
        observed={"ambulation": 2, "nausea_vomiting": 2},
        pain=PainScores(baseline_nrs=7, current_nrs=8),
    )
    out = json.loads(json.dumps(s.to_dict()))
    # Pain one point above the pre-infusion pain: 1 of 2 [clinic policy bands].
    assert out["total"] == 9
    assert out["inputs"]["pain"] == {"baseline_nrs": 7, "current_nrs": 8}
    assert out["inputs"]["baseline"]["systolic_bp_mmhg"] == 120
    assert out["items"][0]["key"] == "vital_signs"


# --------------------------------------------------------------------------- gate


def gate_input(**changes: object) -> DischargeGateInput:
    score = score_discharge(
        "padss", baseline=BASELINE, current=now_vitals(), observed=PADSS_OBSERVED
    )
    values: dict[str, object] = {
        "score": score,
        "infusion_stopped_at": STOP,
        "now": STOP + timedelta(minutes=60),
        "minimum_observation": timedelta(minutes=60),
        "unacknowledged_alarms": (),
        "escort_name": "Rowan Pell",
        "instructions_given": True,
    }
    values.update(changes)
    return DischargeGateInput(**values)  # type: ignore[arg-type]


def failing_score() -> object:
    return score_discharge(
        "padss",
        baseline=BASELINE,
        current=now_vitals(),
        observed={**PADSS_OBSERVED, "intake_output": 0},
    )


def test_the_gate_opens_when_everything_is_met() -> None:
    gate = discharge_gate(gate_input())
    assert gate.allowed
    assert gate.to_dict()["inputs"]["escort_name"] == "Rowan Pell"


def test_the_gate_lists_exactly_what_is_missing() -> None:
    gate = discharge_gate(
        gate_input(
            score=failing_score(),
            now=STOP + timedelta(minutes=45),
            unacknowledged_alarms=("SBP high 13:15",),
            escort_name=" ",
            instructions_given=False,
        )
    )
    assert gate.missing_codes == (
        "minimum_observation",
        "discharge_score",
        "alarms_acknowledged",
        "escort_confirmed",
        "instructions_given",
    )
    messages = {m.code: m.message for m in gate.missing}
    assert "15 min to go" in messages["minimum_observation"]
    assert "PADSS 8/10, needs 9" in messages["discharge_score"]


def test_an_infusion_that_has_not_stopped_cannot_be_discharged() -> None:
    gate = discharge_gate(gate_input(infusion_stopped_at=None))
    assert gate.missing_codes == ("infusion_stopped",)


def test_a_physician_may_override_a_failed_score_with_a_reason() -> None:
    ov = Override("discharge_score", "Dr Ines Varga", "baseline nausea, unchanged for months")
    gate = discharge_gate(gate_input(score=failing_score(), overrides=(ov,)))
    assert gate.allowed
    assert [o.code for o in gate.overridden] == ["discharge_score"]
    assert "Dr Ines Varga" in gate.overridden[0].message


def test_an_override_of_an_item_that_passed_changes_nothing() -> None:
    ov = Override("minimum_observation", "Dr Ines Varga", "reason")
    gate = discharge_gate(gate_input(overrides=(ov,)))
    assert gate.allowed
    assert gate.overridden == ()


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (Override("escort_confirmed", "Dr Ines Varga", "taxi"), "cannot be overridden"),
        (Override("discharge_score", "Dr Ines Varga", "  "), "written reason"),
        (Override("discharge_score", "", "ok"), "physician"),
    ],
)
def test_it_refuses_an_override_without_reason_or_of_the_escort(
    override: Override, problem: str
) -> None:
    assert "escort_confirmed" not in overridable_items()
    with pytest.raises(UsageError, match=problem):
        discharge_gate(gate_input(escort_name="", overrides=(override,)))


def test_no_driving_for_24_elapsed_hours_across_a_clock_change() -> None:
    # US clocks went forward at 02:00 on 9 March 2025: 24 h after 18:30 EST is 19:30 EDT.
    ny = ZoneInfo("America/New_York")
    end = datetime(2025, 3, 8, 18, 30, tzinfo=ny)
    advice = no_driving_until(end)
    assert advice.until == datetime(2025, 3, 9, 19, 30, tzinfo=ny)
    # Adding 24 h to the zoned time directly would give 18:30 EDT, only 23 h later.
    assert advice.until != end + timedelta(hours=24)
    assert advice.until.astimezone(UTC) - end.astimezone(UTC) == timedelta(hours=24)
    assert advice.hours == 24
    assert "S26-Mayo" in advice.source
