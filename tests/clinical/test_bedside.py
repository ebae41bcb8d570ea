"""The bedside core decides every command against the whole picture (issue 11).

Each test names the finding it covers; each drives the pure core only (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest

from ketamine_clinic.clinical.allergies import AllergyRecord
from ketamine_clinic.clinical.bedside import decisions as d
from ketamine_clinic.clinical.bedside.gates import discharge_gate_of, start_gate_of
from ketamine_clinic.clinical.bedside.model import Accepted, Refused, TestResult
from ketamine_clinic.clinical.bedside.words import tag
from ketamine_clinic.clinical.protocol import load_protocol
from ketamine_clinic.clinical.session import SessionState
from tests.clinical.bedside_world import CADSS_NONE, CADSS_SOME, VITALS, World, world


def _titrate_to(w: World, rates: list[str], start: float = 45) -> float:
    t = start
    for r in rates:
        w.scores(t - 1)
        w.ok(d.SetRate(w.at(t), r))
        t += 16
    return t


# --------------------------------------------------------------------------- 1 pregnancy


@pytest.mark.parametrize("status", ["pregnant", "unknown"])
def test_finding_1_a_possible_pregnancy_on_the_day_stops_premedication_and_start(
        status: str) -> None:
    w = world(may_be_pregnant=True)
    w.ready(pregnancy=status)
    refused = w.refused(d.Give(w.at(20), "glycopyrrolate", Fraction("0.2"), "mg", "IV"))
    assert refused.codes == ("pregnancy",)
    assert "[clinic policy]" in refused.reasons[0]
    assert w.view().state is SessionState.PRE_ASSESSMENT_COMPLETE


def test_finding_1_a_registry_pregnancy_status_of_today_counts_too() -> None:
    w = world(may_be_pregnant=True, pregnancy_today="pregnant")
    w.ready(pregnancy="")
    gate = start_gate_of(w.view())
    assert "pregnancy" in gate.missing_codes


def test_finding_1_a_patient_who_cannot_be_pregnant_is_not_asked() -> None:
    w = world(may_be_pregnant=False)
    w.ready(pregnancy="not_applicable")
    w.premedicate()
    assert isinstance(w.do(d.SetRate(w.at(30), "60 mg/h")), Accepted)


# --------------------------------------------------------------------------- 2 baseline


def test_finding_2_baseline_vital_signs_outside_the_start_limits_stop_the_start() -> None:
    w = world()
    w.ready(vitals={**VITALS, "systolic_bp_mmhg": 205, "diastolic_bp_mmhg": 125,
                    "heart_rate_per_min": 130})
    refused = w.refused(d.Give(w.at(20), "glycopyrrolate", Fraction("0.2"), "mg", "IV"))
    assert refused.codes == ("start_limit:systolic_bp_mmhg",)
    assert refused.reasons[0].startswith("Systolic blood pressure 205 mmHg at 08:05 is above "
                                         "the limit of 180 mmHg for giving ketamine "
                                         "[ED ketamine protocol]")
    # A new set inside the limits opens the gate.
    w.ok(d.Observe(w.at(18), "vitals", VITALS))
    w.premedicate()
    assert isinstance(w.do(d.SetRate(w.at(30), "60 mg/h")), Accepted)


# --------------------------------------------------------------------------- 3 sedation


def test_finding_3_no_increase_below_the_sedation_stop_level_and_deep_sedation_alarms() -> None:
    w = world()
    w.infusing()
    result = w.ok(d.Observe(w.at(44), "sedation", {"score": 1}))
    assert [a.kind for a in result.alarms] == ["sedation_deep"]
    assert "MOAA/S 1 at 08:44 is at or below the alarm level of 2" in result.alarms[0].message
    w.ok(d.Observe(w.at(44), "dissociation", {"items": CADSS_NONE}))
    refused = w.refused(d.SetRate(w.at(45), "70 mg/h"))
    assert "MOAA/S 1 at 08:44 is below 3" in " ".join(refused.reasons)
    # A decrease stays possible.
    assert isinstance(w.do(d.SetRate(w.at(46), "50 mg/h")), Accepted)


def test_finding_3_the_titration_target_reached_stops_increases() -> None:
    w = world()
    w.infusing()
    w.scores(44, cadss={k: 4 for k in CADSS_NONE})
    refused = w.refused(d.SetRate(w.at(45), "70 mg/h"))
    assert "has reached the titration target of 1 or more" in " ".join(refused.reasons)


def test_finding_3_an_increase_needs_scores_after_the_last_rate_change() -> None:
    w = world()
    w.infusing()  # scores at minute 7, before the start at 30
    refused = w.refused(d.SetRate(w.at(45), "70 mg/h"))
    assert any("Score sedation (MOAA/S)" in r for r in refused.reasons)
    assert any("Score dissociation (CADSS-6)" in r for r in refused.reasons)


# --------------------------------------------------------------------------- 4 allergies


@pytest.mark.parametrize("substance", ["ketamine", "Ketalar", "ketamine hydrochloride"])
def test_finding_4_a_ketamine_allergy_stops_the_start(substance: str) -> None:
    w = world(allergies=(AllergyRecord(substance, reaction="anaphylaxis"),))
    w.ready()
    refused = w.refused(d.Give(w.at(20), "glycopyrrolate", Fraction("0.2"), "mg", "IV"))
    assert refused.codes == ("ketamine_allergy",)
    assert "[ketamine label]" in refused.reasons[0]


def test_finding_4_a_drug_the_patient_is_allergic_to_is_refused_by_class() -> None:
    w = world(allergies=(AllergyRecord("benzodiazepines", reaction="rash"),))
    w.infusing()
    refused = w.refused(d.Give(w.at(40), "midazolam", Fraction(2), "mg", "IV"))
    assert refused.reasons[0].startswith("Allergy recorded to benzodiazepines "
                                         "(reaction: rash)")


# --------------------------------------------------------------------------- 5 the order


def test_finding_5_a_nurse_alone_cannot_exceed_the_signed_maximum() -> None:
    w = world()
    w.infusing()
    t = _titrate_to(w, ["70 mg/h", "80 mg/h", "90 mg/h", "100 mg/h"])
    w.scores(t - 1)
    refused = w.refused(d.SetRate(w.at(t), "110 mg/h", override_code="titrated-to-effect",
                                  override_text="nurse decided"))
    text = refused.reasons[0]
    assert text.startswith("110 mg/h (1.57 mg/kg/h, 110 mL/h): ")
    assert "above the signed order's limit of 100 mg/h [signed order]" in text
    assert "A physician must change the order or co-sign" in text
    accepted = w.ok(d.SetRate(w.at(t), "110 mg/h", physician="Dr Alice",
                              physician_reason="pain uncontrolled; at the chair"))
    assert accepted.entries[0].payload["physician"] == "Dr Alice"


def test_finding_5_rates_inside_the_signed_titration_carry_the_orders_override() -> None:
    w = world()
    w.infusing()
    w.scores(44)
    # 80 mg/h = 1.14 mg/kg/h is above the 1 mg/kg/h soft limit; the physician signed it.
    w.ok(d.SetRate(w.at(45), "70 mg/h"))
    w.scores(60)
    result = w.ok(d.SetRate(w.at(61), "80 mg/h"))
    assert result.acceptance is not None
    events = [e for e in result.acceptance.events if e.event == "override"]
    assert events
    assert "carried from the signed order" in events[0].override.free_text


def test_finding_5_a_step_bigger_than_ordered_needs_the_physician() -> None:
    w = world()
    w.infusing()
    w.scores(44)
    refused = w.refused(d.SetRate(w.at(45), "75 mg/h"))
    assert "the step of 15 mg/h is above the signed order's limit of 10 mg/h" in \
        refused.reasons[0]


# --------------------------------------------------------------------------- 6 the MAR


@pytest.mark.parametrize(("drug", "dose", "why"), [
    ("midazolam", 20, "above the ordered dose of 2 mg"),
    ("ketamine", 50, "given only as the ordered infusion"),
    ("Ketalar", 50, "given only as the ordered infusion"),
    ("lorazepam", 1, "is not on the signed order"),
])
def test_finding_6_a_drug_is_given_only_from_the_order(drug: str, dose: int, why: str) -> None:
    w = world()
    w.infusing()
    refused = w.refused(d.Give(w.at(40), drug, Fraction(dose), "mg", "IV"))
    assert why in refused.reasons[0]
    assert not w.view().of_kind("rescue_medication")


def test_finding_6_the_ordered_count_and_interval_hold() -> None:
    w = world()
    w.infusing()
    first = w.ok(d.Give(w.at(40), "midazolam", Fraction(2), "mg", "IV"))
    assert first.entries[0].kind == "rescue_medication"
    assert first.entries[0].payload["dose_number"] == 1
    soon = w.refused(d.Give(w.at(43), "midazolam", Fraction(2), "mg", "IV"))
    assert "allows the next one 5 min later, from 08:45" in soon.reasons[0]
    w.ok(d.Give(w.at(46), "midazolam", Fraction(2), "mg", "IV"))
    third = w.refused(d.Give(w.at(60), "midazolam", Fraction(2), "mg", "IV"))
    assert "2 of 2 ordered doses of midazolam are already given (at 08:40, 08:46)" in \
        third.reasons[0]


# --------------------------------------------------------------------------- 7 and 8 vitals


@pytest.mark.parametrize(("change", "kind"), [
    ({"spo2_percent": 45}, "vital_low"),
    ({"heart_rate_per_min": 18}, "vital_low"),
    ({"systolic_bp_mmhg": 38, "diastolic_bp_mmhg": 20}, "vital_low"),
])
def test_finding_7_critical_values_are_charted_and_alarm(change: dict[str, int],
                                                         kind: str) -> None:
    w = world()
    w.infusing()
    result = w.ok(d.Observe(w.at(40), "vitals", {**VITALS, **change}))
    assert kind in {a.kind for a in result.alarms}


@pytest.mark.parametrize(("change", "field"), [
    ({"systolic_bp_mmhg": 300, "diastolic_bp_mmhg": 20}, "diastolic_bp_mmhg"),
    ({"systolic_bp_mmhg": 80, "diastolic_bp_mmhg": 90}, "diastolic_bp_mmhg"),
    ({"spo2_percent": 101}, "spo2_percent"),
])
def test_finding_7_only_the_impossible_is_refused(change: dict[str, int], field: str) -> None:
    w = world()
    w.infusing()
    refused = w.refused(d.Observe(w.at(40), "vitals", {**VITALS, **change}))
    assert refused.field == field


def test_finding_8_diastolic_rise_etco2_and_capnography_alarm() -> None:
    w = world()
    w.infusing()
    raised = w.ok(d.Observe(w.at(40), "vitals", {**VITALS, "systolic_bp_mmhg": 176,
                                                 "diastolic_bp_mmhg": 104,
                                                 "heart_rate_per_min": 112})).alarms
    assert {a.key for a in raised} == {"vital_rise:systolic_bp_mmhg",
                                       "vital_rise:diastolic_bp_mmhg",
                                       "vital_rise:heart_rate_per_min"}
    no_co2 = {k: v for k, v in VITALS.items() if k != "etco2_mmhg"}
    assert [a.kind for a in w.ok(d.Observe(w.at(41), "vitals", no_co2)).alarms] == [
        "etco2_missing"]
    high = w.ok(d.Observe(w.at(42), "vitals", {**VITALS, "etco2_mmhg": 56})).alarms
    assert "End-tidal CO2 56 mmHg at 08:42 is above the alarm limit of 50 mmHg" in \
        high[0].message
    dia = w.ok(d.Observe(w.at(43), "vitals", {**VITALS, "diastolic_bp_mmhg": 115})).alarms
    assert "vital_high:diastolic_bp_mmhg" in {a.key for a in dia}


def test_every_alarm_threshold_of_every_protocol_names_its_source() -> None:
    for name in ("clinic-standard", "consensus-2018", "schwartzman-2009"):
        mon = load_protocol(name).monitoring
        for th in (*mon.alarms, *mon.start_limits):
            assert tag(th.source), (name, th.vital)
        for rise in mon.rise_alarms:
            assert tag(rise.source), (name, rise.vital)


# --------------------------------------------------------------------------- 9 discharge


def _recovering(w: World, pain: int = 6) -> float:
    w.infusing()
    w.ok(d.Stop(w.at(150)))
    w.ok(d.BeginRecovery(w.at(151)))
    w.ok(d.Observe(w.at(155), "vitals", VITALS))
    w.ok(d.Observe(w.at(156), "pain", {"nrs": pain}))
    w.scores(156)
    return 156


def _scores(w: World, minutes: float) -> None:
    w.ok(d.ScoreRecovery(w.at(minutes), {"activity": 2, "respiration": 2, "consciousness": 2},
                         "aldrete_modified_1995"))
    w.ok(d.ScoreRecovery(w.at(minutes), {"ambulation": 2, "nausea_vomiting": 2},
                         "padss_modified"))


def test_finding_9_home_discharge_needs_a_fresh_home_score_after_the_observation_time(
        ) -> None:
    w = world()
    _recovering(w)
    w.ok(d.ScoreRecovery(w.at(157), {"activity": 2, "respiration": 2, "consciousness": 2},
                         "aldrete_modified_1995"))
    w.ok(d.ScoreRecovery(w.at(157), {"ambulation": 2, "nausea_vomiting": 2},
                         "padss_modified"))  # 7 min after the stop
    gate = discharge_gate_of(w.view(w.at(215)), instructions_given=True)
    assert "home_score_early" in gate.missing_codes
    _scores(w, 212)
    assert discharge_gate_of(w.view(w.at(215)), instructions_given=True).allowed
    stale = discharge_gate_of(w.view(w.at(250)), instructions_given=True)
    assert stale.missing_codes == ("home_score_stale",)
    assert "accepts a score at most 30 min old [clinic policy]" in stale.missing[0].message


def test_finding_9_sedation_and_dissociation_must_be_back_to_baseline() -> None:
    w = world()
    _recovering(w)
    w.ok(d.Observe(w.at(200), "sedation", {"score": 4}))
    w.ok(d.Observe(w.at(200), "dissociation", {"items": CADSS_SOME}))
    _scores(w, 212)
    gate = discharge_gate_of(w.view(w.at(215)), instructions_given=True)
    assert gate.missing_codes == ("sedation_baseline", "dissociation_baseline")


def test_finding_9_pain_is_scored_against_the_patients_own_baseline() -> None:
    w = world()
    _recovering(w, pain=8)
    w.ok(d.Observe(w.at(157), "pain", {"nrs": 8}))
    w = replace(w)
    result = w.ok(d.ScoreRecovery(w.at(212), {"ambulation": 2, "nausea_vomiting": 2},
                                  "padss_modified"))
    items = {i["key"]: i["points"] for i in result.entries[0].payload["result"]["items"]}
    assert items["pain"] == 1  # NRS 8 against a pre-infusion 7: one point above
    assert result.entries[0].payload["total"] == 9


def test_finding_9_the_whole_discharge_passes_with_everything_in_place() -> None:
    w = world()
    _recovering(w)
    _scores(w, 212)
    result = w.ok(d.Discharge(w.at(215), "Luis", True))
    assert result.state is SessionState.DISCHARGED


# --------------------------------------------------------------------------- 10 tests


def test_finding_10_the_tests_a_condition_asks_for_must_be_on_record() -> None:
    w = world(screening_conditions=("ecg_required",))
    w.ready()
    refused = w.refused(d.Give(w.at(20), "glycopyrrolate", Fraction("0.2"), "mg", "IV"))
    assert refused.codes == ("test:ecg",)
    w.facts = replace(w.facts, tests=(TestResult("ecg", date(2026, 3, 1), False),))
    assert "out of range" in start_gate_of(w.view()).missing[0].message
    w.facts = replace(w.facts, tests=(TestResult("ecg", date(2026, 3, 1), True),))
    assert start_gate_of(w.view()).allowed


def test_finding_10_liver_results_gate_the_later_sessions_of_a_series() -> None:
    lft = TestResult("liver_function_tests", date(2026, 2, 25), True)
    w = world(screening_conditions=("lft_repeated_infusions",), tests=(lft,),
              previous_sessions=(date(2026, 2, 27),))
    w.ready()
    assert start_gate_of(w.view()).allowed  # one session since the tests
    w.facts = replace(w.facts, previous_sessions=(date(2026, 2, 27), date(2026, 3, 1)))
    gate = start_gate_of(w.view())
    assert gate.missing_codes == ("test:liver_function_tests",)
    assert "every 2 sessions" in gate.missing[0].message


# --------------------------------------------------------------------------- messages


def test_messages_carry_no_internal_keys_and_clinical_precision() -> None:
    w = world()
    w.infusing()
    w.scores(44)
    refused = w.refused(d.SetRate(w.at(45), "150 mg/h"))
    text = refused.reasons[0]
    assert text.startswith("150 mg/h (2.14 mg/kg/h, 150 mL/h): ")
    for internal in ("rate_mg_per_h", "_", "sha256", "{"):
        assert internal not in text


def test_a_time_in_the_future_or_before_check_in_is_refused() -> None:
    w = world()
    w.ready()
    assert w.refused(d.Observe(w.at(-5), "note", {"text": "x"})).field == "occurred_at"
    future = d.decide(w.view(), d.Observe(w.clock + timedelta(minutes=5), "note", {"text": "x"}))
    assert isinstance(future, Refused)
    assert future.field == "occurred_at"
    assert "is in the future" in future.reasons[0]


def test_a_refused_command_changes_nothing() -> None:
    w = world()
    w.infusing()
    before = list(w.entries)
    assert isinstance(w.do(d.Give(w.at(40), "ketamine", Fraction(50), "mg", "IV")), Refused)
    assert w.entries == before


def test_a_corrected_rate_beyond_a_limit_is_recorded_and_raises_an_alarm() -> None:
    w = world()
    w.infusing()
    start = next(e for e in w.entries if e.kind == "infusion_start")
    fine = w.ok(d.Correct(w.at(35), start.id, "typed on the wrong line",
                          {"rate_entered": "70 mg/h"}))
    assert fine.alarms == ()
    corrected = next(e for e in w.entries if e.corrects == start.id)
    # The pump ran 600 mg/h: the record says so, and an alarm asks for action.
    high = w.ok(d.Correct(w.at(40), corrected.id, "the pump log shows 600 mg/h",
                          {"rate_entered": "600 mg/h"}))
    assert w.entries[-1].payload["rate_mg_per_h"] == 600
    (alarm,) = high.alarms
    assert alarm.kind == "corrected_rate"
    assert alarm.message.startswith("Corrected record: the pump ran 600 mg/h")
    assert "limit of" in alarm.message
    assert "tell the physician" in alarm.message
