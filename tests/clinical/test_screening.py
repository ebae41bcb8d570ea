"""Eligibility screening: every rule with a patient who triggers it and one who does not,
unknown facts, decisions, overrides, facts identity and currency."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical.drugs import interaction_table, lookup_drug
from ketamine_clinic.clinical.protocol import Severity, condition_vocabulary, load_protocol
from ketamine_clinic.clinical.screening import (
    Decision,
    decision_with_overrides,
    facts_from_dict,
    screen,
    screening_currency,
)
from ketamine_clinic.errors import UsageError

CLINIC = load_protocol("clinic-standard")
CONSENSUS = load_protocol("consensus-2018")
SCHWARTZMAN = load_protocol("schwartzman-2009")


def alice(**changes: Any) -> dict[str, Any]:
    """Alice: 40, CRPS of the left lower limb confirmed by Budapest, every question asked."""
    facts: dict[str, Any] = {
        "age_years": 40,
        "sex_at_birth": "female",
        "pregnant": False,
        "weight_kg": 70,
        "diagnoses": ["G90.522"],
        "conditions": [],
        "conditions_absent": sorted(condition_vocabulary()),
        "medications": [],
        "allergies": [],
        "budapest": {
            "disproportionate_pain": True,
            "symptoms": ["allodynia", "skin_colour_change", "oedema"],
            "signs": ["hyperalgesia_pinprick", "sweating_asymmetry"],
            "no_better_diagnosis": True,
        },
    }
    facts.update(changes)
    return facts


def with_condition(condition: str) -> dict[str, Any]:
    facts = alice()
    facts["conditions"] = [condition]
    facts["conditions_absent"] = [c for c in facts["conditions_absent"] if c != condition]
    return facts


def reasons(facts: dict[str, Any], protocol: Any = CLINIC) -> dict[str, Any]:
    return {r.rule: r for r in screen(facts_from_dict(facts), protocol).reasons}


def test_alice_is_eligible_under_the_guideline_envelope() -> None:
    result = screen(facts_from_dict(alice()), CONSENSUS)
    assert result.decision is Decision.ELIGIBLE
    assert result.reasons == ()


def test_alice_needs_liver_tests_for_the_clinics_consecutive_day_series() -> None:
    result = screen(facts_from_dict(alice()), CLINIC)
    assert result.decision is Decision.ELIGIBLE_WITH_CONDITIONS
    assert [r.rule for r in result.reasons] == ["lft_repeated_infusions"]
    assert "lft_repeated_infusions" not in reasons(alice(), CONSENSUS)


@pytest.mark.parametrize(
    ("rule", "trigger", "quiet", "severity"),
    [
        ("age_minimum", {"age_years": 17}, {"age_years": 18}, Severity.EXCLUDE),
        ("age_elderly", {"age_years": 65}, {"age_years": 64}, Severity.EXCLUDE),
        ("pregnancy", {"pregnant": True}, {"pregnant": False}, Severity.EXCLUDE),
        ("indication", {"diagnoses": ["M79.7"]}, {"diagnoses": ["G57.71"]}, Severity.REVIEW),
        ("weight_recorded", {"weight_kg": None}, {"weight_kg": 55.5}, Severity.REVIEW),
    ],
)
def test_each_fact_rule_fires_for_one_patient_and_not_another(
    rule: str, trigger: dict[str, Any], quiet: dict[str, Any], severity: Severity
) -> None:
    assert reasons(alice(**trigger))[rule].severity is severity
    assert rule not in reasons(alice(**quiet))


@pytest.mark.parametrize(
    ("condition", "rule", "severity"),
    [
        ("poorly_controlled_cardiovascular_disease", "cardiovascular_disease", Severity.REVIEW),
        ("uncontrolled_hypertension", "cardiovascular_disease", Severity.REVIEW),
        ("recent_myocardial_infarction", "cardiovascular_disease", Severity.REVIEW),
        ("heart_failure_uncontrolled", "cardiovascular_disease", Severity.REVIEW),
        ("active_psychosis", "psychosis_active", Severity.REVIEW),
        ("history_of_psychosis", "psychosis_history", Severity.REVIEW),
        ("severe_hepatic_disease", "hepatic_severe", Severity.REVIEW),
        ("moderate_hepatic_disease", "hepatic_moderate", Severity.CONDITION),
        ("moderate_hepatic_disease", "lft_hepatic_risk", Severity.CONDITION),
        ("alcohol_misuse", "lft_hepatic_risk", Severity.CONDITION),
        ("raised_intracranial_pressure", "intracranial_pressure", Severity.REVIEW),
        ("raised_intraocular_pressure", "intraocular_pressure", Severity.REVIEW),
        ("glaucoma", "intraocular_pressure", Severity.REVIEW),
        ("active_substance_use", "substance_use", Severity.REVIEW),
        ("cardiovascular_risk", "ecg_required", Severity.CONDITION),
        ("cystitis_history", "urological", Severity.REVIEW),
        ("urinary_symptoms", "urological", Severity.REVIEW),
    ],
)
def test_each_condition_rule_fires_when_present_and_not_when_absent(
    condition: str, rule: str, severity: Severity
) -> None:
    for protocol in (CLINIC, CONSENSUS, SCHWARTZMAN):
        found = reasons(with_condition(condition), protocol)
        assert found[rule].severity is severity
        assert condition_vocabulary()[condition].label.lower() in found[rule].message \
            or "{conditions}" not in protocol.screening.rule(rule).message
        assert rule not in reasons(alice(), protocol)


def test_a_condition_nobody_asked_about_is_unknown_not_absent() -> None:
    facts = alice()
    facts["conditions_absent"] = [c for c in facts["conditions_absent"]
                                  if c != "active_psychosis"]
    found = reasons(facts)["psychosis_active"]
    assert found.severity is Severity.REVIEW
    assert found.find_out == condition_vocabulary()["active_psychosis"].question
    assert screen(facts_from_dict(facts), CONSENSUS).decision is Decision.NEEDS_PHYSICIAN_REVIEW


def test_an_empty_facts_file_asks_for_every_fact_and_is_never_eligible() -> None:
    result = screen(facts_from_dict({}), CONSENSUS)
    assert result.decision is Decision.NEEDS_PHYSICIAN_REVIEW
    asked = " ".join(r.find_out for r in result.reasons)
    for needed in ("age", "pregnancy", "diagnosis", "medications", "weight_kg"):
        assert needed in asked


def test_pregnancy_unknown_in_a_patient_who_could_be_pregnant() -> None:
    unknown = {"pregnant": "unknown"}
    clinic = reasons(alice(**unknown))["pregnancy"]
    assert clinic.severity is Severity.EXCLUDE  # the clinic's own exclusion
    assert "pregnancy test" in clinic.find_out
    assert reasons(alice(**unknown), CONSENSUS)["pregnancy"].severity is Severity.REVIEW
    # Not asked of a patient of male sex at birth, nor above the protocol's age bound.
    assert "pregnancy" not in reasons(alice(sex_at_birth="male", pregnant="unknown"))
    bound = CLINIC.screening.rule("pregnancy").threshold_years
    assert bound is not None
    older = int(bound.value)
    assert "pregnancy" not in reasons(alice(age_years=older, pregnant="unknown"), CONSENSUS)
    assert "pregnancy" in reasons(alice(age_years=older - 1, pregnant="unknown"), CONSENSUS)


def test_age_thresholds_come_from_the_protocol() -> None:
    assert "age_minimum" in reasons(alice(age_years=17), CONSENSUS)
    assert "age_minimum" not in reasons(alice(age_years=18), CONSENSUS)  # an adult guideline
    assert "age_minimum" in reasons(alice(age_years=16), CLINIC)  # the clinic's is 18
    assert "age_elderly" not in reasons(alice(age_years=80), CONSENSUS)


def test_schwartzman_treats_crps_only() -> None:
    assert reasons(alice(diagnoses=["M79.7"]), SCHWARTZMAN)["indication"].severity \
        is Severity.EXCLUDE
    assert "indication" not in reasons(alice(diagnoses=["G56.41"]), SCHWARTZMAN)


@pytest.mark.parametrize(
    ("change", "not_met"),
    [
        ({"symptoms": ["allodynia", "oedema"]}, "symptoms in 2 categories"),
        ({"signs": ["hyperalgesia_pinprick", "allodynia"]}, "signs in 1 categories"),
        ({"disproportionate_pain": False}, "disproportionate"),
        ({"no_better_diagnosis": False}, "better explains"),
    ],
)
def test_the_budapest_criteria_must_all_be_met(change: dict[str, Any], not_met: str) -> None:
    checklist = {**alice()["budapest"], **change}
    found = reasons(alice(budapest=checklist))["budapest"]
    assert found.severity is Severity.REVIEW
    assert not_met in found.message


def test_the_budapest_minimum_is_three_symptom_and_two_sign_categories() -> None:
    # Alice has exactly the minimum: symptoms in sensory, vasomotor and sudomotor/oedema;
    # signs in sensory and sudomotor/oedema.
    assert "budapest" not in reasons(alice())


def test_a_missing_budapest_checklist_is_asked_for() -> None:
    found = reasons(alice(budapest=None))["budapest"]
    assert found.severity is Severity.REVIEW
    assert "Budapest" in found.find_out
    partial = {"disproportionate_pain": True, "symptoms": ["allodynia"]}
    assert "signs" in reasons(alice(budapest=partial))["budapest"].message
    assert "budapest" not in reasons(alice(diagnoses=["M79.7"], budapest=None))


INTERACTING = [
    ("clarithromycin", "strong_cyp3a4_inhibitor", Severity.REVIEW),
    ("Biaxin", "strong_cyp3a4_inhibitor", Severity.REVIEW),
    ("ticlopidine", "cyp2b6_inhibitor", Severity.REVIEW),
    ("rifampin", "cyp3a4_inducer", Severity.NOTE),
    ("theophylline", "methylxanthine", Severity.REVIEW),
    ("aminophylline", "methylxanthine", Severity.REVIEW),
    ("pseudoephedrine", "sympathomimetic", Severity.REVIEW),
    ("Adderall", "sympathomimetic", Severity.REVIEW),
    ("Synthroid", "thyroid_hormone", Severity.CONDITION),
    ("lamotrigine", "lamotrigine", Severity.CONDITION),
    ("lorazepam", "benzodiazepine", Severity.CONDITION),
    ("diazepam", "diazepam_or_barbiturate_precipitates", Severity.CONDITION),
    ("oxycodone", "cns_depressant", Severity.CONDITION),
    ("cyclobenzaprine", "cns_depressant", Severity.CONDITION),
    ("lisinopril", "antihypertensive", Severity.NOTE),
    ("phenelzine", "maoi", Severity.REVIEW),
    ("itraconazole", "itraconazole", Severity.NOTE),
    ("Spravato", "ketamine_already", Severity.REVIEW),
    ("clopidogrel", "cyp2b6_inhibitor", Severity.REVIEW),
    ("Plavix", "cyp2b6_inhibitor", Severity.REVIEW),
    ("diltiazem", "moderate_cyp3a4_inhibitor", Severity.CONDITION),
    ("verapamil", "moderate_cyp3a4_inhibitor", Severity.CONDITION),
    ("erythromycin", "moderate_cyp3a4_inhibitor", Severity.CONDITION),
    ("Diflucan", "moderate_cyp3a4_inhibitor", Severity.CONDITION),
    ("grapefruit juice", "moderate_cyp3a4_inhibitor", Severity.CONDITION),
    ("memantine", "other_nmda_antagonist", Severity.REVIEW),
    ("dextromethorphan", "other_nmda_antagonist", Severity.REVIEW),
    ("amantadine", "other_nmda_antagonist", Severity.REVIEW),
]


@pytest.mark.parametrize(("medication", "interaction", "severity"), INTERACTING)
def test_each_interaction_is_found_with_its_effect_and_action(
    medication: str, interaction: str, severity: Severity
) -> None:
    found = reasons(alice(medications=[medication]), CONSENSUS)
    reason = found[f"interactions.{interaction}"]
    assert reason.severity is severity
    item = {i.id: i for i in interaction_table()}[interaction]
    assert item.effect in reason.message
    assert item.action in reason.message
    assert medication.lower() in reason.message


def test_every_interaction_of_the_table_is_covered_by_a_test_case() -> None:
    assert {case[1] for case in INTERACTING} == {i.id for i in interaction_table()}


def test_common_pain_medications_are_known_and_raise_nothing() -> None:
    meds = ["gabapentin", "Lyrica", "duloxetine", "ibuprofen", "acetaminophen", "amitriptyline",
            "Gabapentin 300 mg"]
    assert reasons(alice(medications=meds), CONSENSUS) == {}


def test_a_misspelt_drug_is_never_passed_silently() -> None:
    found = reasons(alice(medications=["clarithromicin"]), CONSENSUS)
    reason = found["interactions.unrecognised.clarithromicin"]
    assert reason.severity is Severity.REVIEW
    assert "clarithromicin" in reason.find_out
    assert lookup_drug("clarithromicin") is None


def test_unknown_medications_are_asked_for() -> None:
    found = reasons(alice(medications=None), CONSENSUS)["interactions"]
    assert found.severity is Severity.REVIEW
    assert "medications" in found.find_out


def test_the_worst_reason_decides() -> None:
    review_and_condition = with_condition("cardiovascular_risk")
    review_and_condition["medications"] = ["clarithromycin"]
    assert screen(facts_from_dict(review_and_condition), CONSENSUS).decision \
        is Decision.NEEDS_PHYSICIAN_REVIEW
    review_and_condition["age_years"] = 70
    result = screen(facts_from_dict(review_and_condition), CLINIC)
    assert result.decision is Decision.INELIGIBLE
    assert result.reasons[0].severity is Severity.EXCLUDE  # worst first
    notes_only = alice(medications=["lisinopril"])
    assert screen(facts_from_dict(notes_only), CONSENSUS).decision is Decision.ELIGIBLE


def test_a_physician_may_override_review_reasons_only() -> None:
    facts = with_condition("cardiovascular_risk")
    facts["medications"] = ["clarithromycin"]
    result = screen(facts_from_dict(facts), CONSENSUS)
    assert decision_with_overrides(result, ["interactions.strong_cyp3a4_inhibitor"]) \
        is Decision.ELIGIBLE_WITH_CONDITIONS
    with pytest.raises(UsageError, match="cannot be overridden"):
        decision_with_overrides(result, ["ecg_required"])
    with pytest.raises(UsageError, match="not a reason"):
        decision_with_overrides(result, ["psychosis_active"])
    excluded = screen(facts_from_dict(alice(age_years=12)), CLINIC)
    with pytest.raises(UsageError, match="exclude"):
        decision_with_overrides(excluded, ["age_minimum"])


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"conditions": ["wobbly_knees"]}, "conditions[0]"),
        ({"conditions_absent": ["active_psychosis", "nope"]}, "conditions_absent[1]"),
        ({"diagnoses": ["G90.5"]}, "diagnoses[0]"),
        ({"diagnoses": ["G90.511", "Z99.99"]}, "diagnoses[1]"),
        ({"conditions": ["glaucoma"], "conditions_absent": ["glaucoma"]}, "conditions_absent"),
        ({"pregnant": "maybe"}, "pregnant"),
        ({"age_years": 40.5}, "age_years"),
        ({"age_years": 400}, "age_years"),
        ({"weight_kg": 7000}, "weight_kg"),
        ({"sex_at_birth": "f"}, "sex_at_birth"),
        ({"medications": "ibuprofen"}, "medications"),
        ({"height_cm": 170}, "height_cm"),
        ({"budapest": {"symptoms": ["itchy"]}}, "budapest.symptoms[0]"),
    ],
)
def test_bad_facts_are_refused_naming_the_field(facts: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError) as err:
        facts_from_dict(facts)
    assert err.value.field == field


def test_equal_facts_hash_equal_whatever_the_order_and_a_change_changes_the_hash() -> None:
    a = facts_from_dict(alice(medications=["ibuprofen", "gabapentin"]))
    b = facts_from_dict(alice(medications=["Gabapentin", "ibuprofen"]))
    assert a == b
    assert a.sha256 == b.sha256
    c = facts_from_dict(alice(medications=["gabapentin"]))
    assert c.sha256 != a.sha256


def test_a_result_is_json_with_its_facts_and_protocol_version() -> None:
    result = screen(facts_from_dict(alice(age_years=70)), CLINIC)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["decision"] == "ineligible"
    assert data["protocol"] == {"name": "clinic-standard", "version": 2,
                                "sha256": CLINIC.sha256}
    assert data["facts"]["age_years"] == 70
    assert data["facts_sha256"] == result.facts.sha256
    assert {"rule", "severity", "message", "source"} <= set(data["reasons"][0])
    # The stored facts read back to the same facts.
    stored = {k: v for k, v in data["facts"].items() if k != "conditions_unknown"}
    assert facts_from_dict(stored) == result.facts


def test_every_reason_has_a_message_and_a_source() -> None:
    facts = {"conditions": sorted(condition_vocabulary()), "age_years": 12,
             "medications": [m for m, _, _ in INTERACTING] + ["xyzzy"]}
    for protocol in (CLINIC, CONSENSUS, SCHWARTZMAN):
        for reason in screen(facts_from_dict(facts), protocol).reasons:
            assert reason.message.strip()
            assert reason.source.strip()
            assert "{" not in reason.message


def test_a_screening_is_current_within_its_validity_for_the_same_facts() -> None:
    facts = facts_from_dict(alice())
    on = date(2025, 3, 1)
    ok = screening_currency(screened_on=on, today=date(2025, 3, 31), validity_days=30,
                            facts_sha256_used=facts.sha256, facts_now=facts)
    assert ok.current
    assert ok.valid_until == date(2025, 3, 31)
    assert ok.reasons == ()
    stale = screening_currency(screened_on=on, today=date(2025, 4, 1), validity_days=30,
                               facts_sha256_used=facts.sha256, facts_now=facts)
    assert not stale.current
    assert "older" in stale.reasons[0]
    changed = screening_currency(screened_on=on, today=on, validity_days=30,
                                 facts_sha256_used=facts.sha256,
                                 facts_now=facts_from_dict(alice(pregnant=True)))
    assert not changed.current
    assert "changed" in changed.reasons[0]
    series = screening_currency(screened_on=on, today=on, validity_days=30,
                                facts_sha256_used=facts.sha256, facts_now=facts,
                                for_new_series=True)
    assert not series.current
    assert "new series" in series.reasons[0]
    with pytest.raises(UsageError):
        screening_currency(screened_on=on, today=date(2025, 2, 1), validity_days=30,
                           facts_sha256_used=facts.sha256, facts_now=facts)


RANK = list(Decision)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(condition_vocabulary())), max_size=6))
def test_learning_of_a_condition_never_improves_the_decision(present: set[str]) -> None:
    base = alice()
    before = screen(facts_from_dict(base), CLINIC).decision
    base["conditions"] = sorted(present)
    base["conditions_absent"] = [c for c in base["conditions_absent"] if c not in present]
    after = screen(facts_from_dict(base), CLINIC).decision
    assert RANK.index(after) >= RANK.index(before)
    # And not knowing is never better than knowing it is present, nor than absent.
    unknown = dict(base, conditions=[])
    assert RANK.index(screen(facts_from_dict(unknown), CLINIC).decision) >= RANK.index(before)
