"""clinical.allergies: is the patient allergic to this drug? Names, brands, codes, classes,
statuses; never widened from one drug to its class."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketamine_clinic.clinical.allergies import (
    AllergyRecord,
    allergy_matches,
    is_allergic,
    unrecognised_allergies,
)
from ketamine_clinic.clinical.drugs import drug_dictionary
from ketamine_clinic.errors import UsageError


def rec(substance: str = "", **kw: str) -> AllergyRecord:
    return AllergyRecord(substance, **kw)


@pytest.mark.parametrize(("substance", "drug"), [
    ("ketamine", "ketamine"),
    ("KETALAR", "ketamine"),
    ("Ketamine HCl 50 mg/mL", "ketamine"),
    ("anaphylaxis to ketamine in 2019", "ketamine"),
    ("esketamine", "Ketalar"),
    ("Versed", "midazolam"),
    ("midazolam", "Versed 2 mg"),
    ("glycopyrronium", "glycopyrrolate"),
    ("Zofran", "ondansetron"),
])
def test_a_drug_or_brand_name_matches_the_drug(substance: str, drug: str) -> None:
    assert is_allergic([rec(substance)], drug)


@pytest.mark.parametrize(("substance", "drug"), [
    ("benzodiazepines", "midazolam"),
    ("Benzos", "lorazepam"),
    ("opiates", "fentanyl"),
    ("NSAIDs", "ketorolac"),
    ("anticholinergics", "glycopyrrolate"),
    ("NMDA antagonists", "ketamine"),
])
def test_a_class_named_in_the_record_covers_its_members(substance: str, drug: str) -> None:
    match, = allergy_matches([rec(substance)], drug)
    assert match.basis == "class"
    assert "one of the" in match.message


def test_an_allergy_to_one_member_is_not_widened_to_its_class() -> None:
    assert not is_allergic([rec("memantine")], "ketamine")
    assert not is_allergic([rec("lorazepam")], "midazolam")
    assert is_allergic([rec("memantine")], "memantine")


def test_an_rxnorm_code_matches_without_a_name() -> None:
    match, = allergy_matches([rec(code="6960", reaction="hives")], "midazolam")
    assert match.basis == "code"
    assert "hives" in match.message
    assert not is_allergic([rec(code="6960")], "ketamine")


@pytest.mark.parametrize("status", ["inactive", "resolved", "refuted", "entered-in-error"])
def test_a_record_that_no_longer_holds_never_matches(status: str) -> None:
    assert not is_allergic([rec("ketamine", status=status)], "ketamine")


def test_a_suspected_allergy_counts_and_says_so() -> None:
    match, = allergy_matches([rec("ketamine", status="unconfirmed")], "ketamine")
    assert "suspected" in match.message


def test_unrelated_allergies_do_not_match_and_are_listed_for_a_person() -> None:
    records = [rec("penicillin"), rec("latex"), rec("ketamine")]
    assert not is_allergic(records[:2], "ketamine")
    assert [r.substance for r in unrecognised_allergies(records)] == ["penicillin", "latex"]


def test_a_drug_the_dictionary_does_not_know_is_matched_as_written() -> None:
    assert is_allergic([rec("droperidol")], "Droperidol")
    assert not is_allergic([rec("droperidol")], "haloperidol")


def test_a_word_inside_another_word_is_not_a_match() -> None:
    # "soma" (carisoprodol) inside "somatostatin"; "thyroid" inside "hypothyroidism"
    assert not is_allergic([rec("somatostatin")], "carisoprodol")
    assert not is_allergic([rec("hypothyroidism drug")], "thyroid")


def test_a_bad_record_is_refused_naming_the_field() -> None:
    with pytest.raises(UsageError) as err:
        AllergyRecord("ketamine", status="maybe")
    assert err.value.field == "allergies.status"
    with pytest.raises(UsageError):
        AllergyRecord("  ")


GENERICS = sorted(drug_dictionary())


@given(st.sampled_from(GENERICS), st.sampled_from(GENERICS))
def test_a_drug_allergy_matches_exactly_its_own_drug(recorded: str, asked: str) -> None:
    assert is_allergic([rec(recorded)], asked) is (recorded == asked)


@given(st.sampled_from(GENERICS), st.sampled_from(["inactive", "resolved", "refuted",
                                                    "entered-in-error"]))
def test_no_record_that_does_not_hold_ever_matches(generic: str, status: str) -> None:
    assert not is_allergic([rec(generic, status=status)], generic)
