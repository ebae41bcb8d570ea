"""Issue 12 (clinical content review) and issue 11 finding 4 (allergies): each gap the
review found, shown on the core's screening. Each test failed on the v1 protocols and the
v1 vocabulary."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.clinical.drugs import drug_dictionary, interaction_table
from ketamine_clinic.clinical.protocol import (
    RuleKind,
    Severity,
    condition_vocabulary,
    load_protocol,
    shipped_protocols,
)
from ketamine_clinic.clinical.screening import Decision, facts_from_dict, screen
from tests.clinical.test_screening import alice, reasons, with_condition

CURRENT = [load_protocol(n) for n in ("clinic-standard", "consensus-2018", "schwartzman-2009")]
IDS = [p.name for p in CURRENT]


# ------------------------------------------------------------------ substance misuse


def misuse_conditions() -> list[str]:
    return [cid for cid, c in condition_vocabulary().items() if c.group == "substance use"]


def test_alcohol_misuse_is_recorded_as_substance_misuse() -> None:
    assert "alcohol_misuse" in misuse_conditions()


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_alcohol_misuse_counts_as_substance_misuse_under_every_protocol(protocol: Any) -> None:
    found = reasons(with_condition("alcohol_misuse"), protocol)
    assert found["substance_use"].severity is Severity.REVIEW
    assert "no serial infusions" in found["substance_use"].message
    assert "alcohol misuse" in found["substance_use"].message


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_every_misuse_the_vocabulary_records_stops_serial_infusions(protocol: Any) -> None:
    rule = protocol.screening.rule("substance_use")
    assert set(misuse_conditions()) <= set(rule.conditions)


# ------------------------------------------------------------------ minors


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_a_17_year_old_goes_at_least_to_physician_review(protocol: Any) -> None:
    result = screen(facts_from_dict(alice(age_years=17)), protocol)
    assert result.decision in (Decision.NEEDS_PHYSICIAN_REVIEW, Decision.INELIGIBLE)
    assert "age_minimum" in {r.rule for r in result.reasons}


def test_the_consensus_protocol_says_it_is_an_adult_guideline() -> None:
    reason = reasons(alice(age_years=17), load_protocol("consensus-2018"))["age_minimum"]
    assert reason.severity is Severity.REVIEW
    assert "adult guideline" in reason.message
    assert "S1" in reason.source


# ------------------------------------------------------------------ conditions


NEW_CONDITIONS = {
    # condition id: rule id, severity under every protocol
    "breastfeeding": ("breastfeeding", Severity.REVIEW),
    "seizure_disorder": ("seizure_disorder", Severity.REVIEW),
    "thyrotoxicosis": ("thyrotoxicosis", Severity.REVIEW),
    "aneurysm": ("aneurysm", Severity.REVIEW),
    "phaeochromocytoma": ("phaeochromocytoma", Severity.REVIEW),
    "obstructive_sleep_apnoea": ("airway", Severity.REVIEW),
    "difficult_airway": ("airway", Severity.REVIEW),
    "severe_emergence_reaction": ("severe_emergence_reaction", Severity.REVIEW),
    "ketamine_hypersensitivity": ("ketamine_hypersensitivity", Severity.EXCLUDE),
}


@pytest.mark.parametrize("condition", sorted(NEW_CONDITIONS))
def test_the_condition_can_be_entered_with_its_question_group_and_source(condition: str) -> None:
    entry = condition_vocabulary()[condition]
    assert entry.question.endswith("?")
    assert entry.group
    import tomllib
    from importlib import resources

    raw = tomllib.loads(resources.files("ketamine_clinic.reference")
                        .joinpath("conditions.toml").read_text())
    source = {c["id"]: c["source"] for c in raw["condition"]}[condition]
    assert source.startswith("S")


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
@pytest.mark.parametrize("condition", sorted(NEW_CONDITIONS))
def test_each_new_condition_is_screened_under_every_protocol(condition: str,
                                                             protocol: Any) -> None:
    rule, severity = NEW_CONDITIONS[condition]
    present = reasons(with_condition(condition), protocol)
    assert present[rule].severity is severity
    assert rule not in reasons(alice(), protocol)
    unknown = alice(conditions_absent=[c for c in condition_vocabulary() if c != condition])
    assert reasons(unknown, protocol)[rule].find_out  # never read as absent


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_ketamine_hypersensitivity_makes_the_patient_ineligible(protocol: Any) -> None:
    result = screen(facts_from_dict(with_condition("ketamine_hypersensitivity")), protocol)
    assert result.decision is Decision.INELIGIBLE
    reason = {r.rule: r for r in result.reasons}["ketamine_hypersensitivity"]
    assert "S26-SmPC" in reason.source
    assert not reason.overridable


# ------------------------------------------------------------------ allergies (issue 11.4)


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
@pytest.mark.parametrize("substance", ["ketamine", "Ketalar", "Ketamine HCl 50 mg/mL",
                                       "esketamine"])
def test_an_allergy_record_to_ketamine_makes_screening_ineligible(substance: str,
                                                                 protocol: Any) -> None:
    facts = alice(allergies=[{"substance": substance, "reaction": "rash and wheeze"}])
    result = screen(facts_from_dict(facts), protocol)
    assert result.decision is Decision.INELIGIBLE
    reason = next(r for r in result.reasons if r.rule.startswith("allergy_ketamine."))
    assert reason.severity is Severity.EXCLUDE
    assert "rash and wheeze" in reason.message
    assert "S26-SmPC" in reason.source


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_a_coded_ketamine_allergy_makes_screening_ineligible(protocol: Any) -> None:
    facts = alice(allergies=[{"code": "238083", "reaction": "anaphylaxis"}])
    assert screen(facts_from_dict(facts), protocol).decision is Decision.INELIGIBLE


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_an_allergy_that_no_longer_holds_does_not_exclude(protocol: Any) -> None:
    for status in ("entered-in-error", "refuted", "resolved", "inactive"):
        facts = alice(allergies=[{"substance": "ketamine", "status": status}])
        assert not any(r.rule.startswith("allergy_ketamine")
                       for r in screen(facts_from_dict(facts), protocol).reasons)
    suspected = alice(allergies=[{"substance": "ketamine", "status": "unconfirmed"}])
    assert screen(facts_from_dict(suspected), protocol).decision is Decision.INELIGIBLE


@pytest.mark.parametrize("protocol", CURRENT, ids=IDS)
def test_unknown_allergies_are_asked_for(protocol: Any) -> None:
    facts = alice()
    del facts["allergies"]
    found = reasons(facts, protocol)
    assert found["allergy_ketamine"].severity is Severity.REVIEW
    assert "allergies" in found["allergy_ketamine"].find_out


def test_an_allergy_to_a_premedication_goes_to_physician_review() -> None:
    standard = load_protocol("clinic-standard")  # gives glycopyrrolate, midazolam, ondansetron
    found = reasons(alice(allergies=[{"substance": "Robinul", "reaction": "hives"}]), standard)
    reason = found["protocol_drugs.allergy.glycopyrrolate"]
    assert reason.severity is Severity.REVIEW
    assert "premedication" in reason.message
    benzo = reasons(alice(allergies=[{"substance": "benzodiazepines"}]), standard)
    assert "rescue drug" in benzo["protocol_drugs.allergy.midazolam"].message


def test_allergies_no_drug_name_matches_are_shown_not_dropped() -> None:
    found = reasons(alice(allergies=[{"substance": "latex", "reaction": "rash"}]))
    assert found["allergies.unrecognised"].severity is Severity.NOTE
    assert "latex" in found["allergies.unrecognised"].message


def test_a_bad_allergy_record_is_refused_naming_the_field() -> None:
    from ketamine_clinic.errors import UsageError

    for bad, field in (({"substance": "ketamine", "status": "maybe"}, "allergies[0].status"),
                       ({"reaction": "rash"}, "allergies[0].substance"),
                       ({"substance": "x", "code": "K1"}, "allergies[0].code"),
                       ({"substance": "x", "when": "2019"}, "allergies[0].when")):
        with pytest.raises(UsageError) as err:
            facts_from_dict(alice(allergies=[bad]))
        assert err.value.field == field


# ------------------------------------------------------------------ premedication


def test_glycopyrrolate_contraindications_are_screened_when_the_protocol_gives_it() -> None:
    standard, consensus = load_protocol("clinic-standard"), load_protocol("consensus-2018")
    assert "glycopyrrolate" in {m.drug for m in standard.premedications}
    for condition in ("obstructive_uropathy", "myasthenia_gravis", "tachyarrhythmia",
                      "glaucoma", "gastrointestinal_obstruction",
                      "severe_ulcerative_colitis"):
        reason = reasons(with_condition(condition), standard)["protocol_drugs.glycopyrrolate"]
        assert reason.severity is Severity.REVIEW
        assert "S60" in reason.source
        assert "protocol_drugs.glycopyrrolate" not in reasons(with_condition(condition),
                                                              consensus)


def test_glycopyrrolate_contraindications_unknown_are_asked() -> None:
    facts = alice(conditions_absent=[c for c in condition_vocabulary()
                                     if c != "myasthenia_gravis"])
    reason = reasons(facts, load_protocol("clinic-standard"))["protocol_drugs.glycopyrrolate"]
    assert "myasthenia gravis" in reason.find_out.lower()


# ------------------------------------------------------------------ schwartzman entry criteria


SCHWARTZMAN = load_protocol("schwartzman-2009")


@pytest.mark.parametrize(("age", "fires"), [(17, True), (18, False), (65, False), (66, True)])
def test_schwartzman_applies_the_trials_ages_18_to_65(age: int, fires: bool) -> None:
    found = reasons(alice(age_years=age), SCHWARTZMAN)
    rules = {"age_minimum", "age_maximum"} & set(found)
    assert bool(rules) is fires
    for rule in rules:
        assert found[rule].severity is Severity.REVIEW
        assert "S9-trial" in found[rule].source


def test_schwartzman_enrolled_ketamine_naive_patients() -> None:
    found = reasons(with_condition("prior_ketamine_treatment"), SCHWARTZMAN)
    assert found["ketamine_naive"].severity is Severity.REVIEW
    assert "ketamine_naive" not in reasons(with_condition("prior_ketamine_treatment"),
                                           load_protocol("consensus-2018"))


# ------------------------------------------------------------------ the tables stay consistent


def test_a_class_the_interaction_table_names_covers_all_its_members() -> None:
    classes = {c for d in drug_dictionary().values() for c in d.classes}
    for item in interaction_table():
        for cls in item.classes:
            assert cls in classes
            for drug in drug_dictionary().values():
                if cls in drug.classes and drug.generic not in item.except_drugs:
                    assert item.applies_to(drug), (item.id, drug.generic)


def test_every_cyp2b6_and_moderate_cyp3a4_inhibitor_named_by_the_review_is_a_member() -> None:
    members = {"clopidogrel": "cyp2b6_inhibitor", "ticlopidine": "cyp2b6_inhibitor",
               "diltiazem": "moderate_cyp3a4_inhibitor", "verapamil": "moderate_cyp3a4_inhibitor",
               "erythromycin": "moderate_cyp3a4_inhibitor",
               "fluconazole": "moderate_cyp3a4_inhibitor",
               "grapefruit": "moderate_cyp3a4_inhibitor",
               "memantine": "nmda_antagonist", "dextromethorphan": "nmda_antagonist",
               "amantadine": "nmda_antagonist"}
    for generic, cls in members.items():
        assert cls in drug_dictionary()[generic].classes, generic


def test_every_shipped_protocol_version_loads_and_the_new_rule_kinds_are_used() -> None:
    kinds = {r.kind for p in CURRENT for r in p.screening.rules}
    assert {RuleKind.ALLERGY, RuleKind.PROTOCOL_DRUGS} <= kinds
    assert {(p.name, p.version) for p in shipped_protocols()} >= {
        (n, v) for n in IDS for v in (1, 2)}


# ------------------------------------------------------------------ Budapest wording


def test_the_budapest_categories_carry_the_published_wording_with_its_source() -> None:
    from ketamine_clinic.clinical.protocol import source_keys
    from ketamine_clinic.clinical.screening import budapest_criteria

    crit = budapest_criteria()
    assert "S65" in source_keys(crit.source)
    assert len(crit.criteria) == 4
    assert crit.criteria[0].startswith("Continuing pain, which is disproportionate")
    wording = {c.id: (c.published_symptoms, c.published_signs) for c in crit.categories}
    assert wording["sensory"][0] == "Reports of hyperesthesia and/or allodynia."
    assert "(to pinprick)" in wording["sensory"][1]
    assert all(sym.startswith("Reports of") and sig.startswith("Evidence of")
               for sym, sig in wording.values())


# ------------------------------------------------------------------ consensus rescue drugs


def test_the_consensus_protocol_has_rescue_drugs_with_their_sources() -> None:
    from ketamine_clinic.clinical.protocol import source_keys

    consensus = load_protocol("consensus-2018")
    drugs = {m.drug: m for m in consensus.rescue_medications}
    assert set(drugs) == {"midazolam", "ondansetron"}
    assert "S9" in source_keys(drugs["midazolam"].dose.source)
    assert drugs["midazolam"].dose.source.startswith("clinic policy (set by")
    assert all(m.indication and m.route == "IV" for m in drugs.values())


# ------------------------------------------------------------------ Schwartzman caps itself


def test_schwartzmans_default_rate_caps_itself_at_25_mg_per_h() -> None:
    from fractions import Fraction

    from ketamine_clinic.clinical.dosing import check_rate, default_rate_texts, rules_from_protocol
    from ketamine_clinic.clinical.limit_checks import Outcome
    from ketamine_clinic.clinical.units import parse_rate

    assert SCHWARTZMAN.dosing.rate_cap_mg_per_h is not None
    assert SCHWARTZMAN.dosing.rate_cap_mg_per_h.source.startswith("S9")
    assert default_rate_texts(SCHWARTZMAN, Fraction(90)) == ("25 mg/h", "25 mg/h")
    assert default_rate_texts(SCHWARTZMAN, Fraction(60)) == ("0.35 mg/kg/h", "0.35 mg/kg/h")
    assert default_rate_texts(SCHWARTZMAN, None) == ("0.35 mg/kg/h", "0.35 mg/kg/h")
    # The uncapped default would break the protocol's own hard limit at 90 kg.
    rules = rules_from_protocol(SCHWARTZMAN)
    for text, blocked in (("0.35 mg/kg/h", True), ("25 mg/h", False)):
        verdict = check_rate(parse_rate(text, field="start_rate"), rules=rules,
                             weight_kg=Fraction(90), concentration_mg_per_ml=Fraction(1))
        assert (verdict.outcome is Outcome.BLOCKED) is blocked, text


def test_a_rate_cap_belongs_to_weight_based_protocols_only() -> None:
    from importlib import resources

    from ketamine_clinic.clinical.protocol import load_protocol_text
    from ketamine_clinic.errors import UsageError

    text = (resources.files("ketamine_clinic.protocols") / "clinic-standard.toml").read_text()
    text = text.replace('max_rate = { value = 100, unit = "mg/h",',
                        'rate_cap_mg_per_h = { value = 25, unit = "mg/h", source = "S9" }\n'
                        'max_rate = { value = 100, unit = "mg/h",')
    with pytest.raises(UsageError) as err:
        load_protocol_text(text, "t.toml")
    assert err.value.field == "t.toml:dosing.rate_cap_mg_per_h"
