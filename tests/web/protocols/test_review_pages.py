"""Issue 12 through the screening page: a condition answered "yes" on the form gives the
decision and the reason (with its source) on the result page, under the current protocol."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import services as patients

PAGE_ITEMS = [
    # (condition answered yes, decision, words of the reason shown)
    ("alcohol_misuse", "needs-physician-review", "no serial infusions"),
    ("breastfeeding", "needs-physician-review", "passes into milk"),
    ("seizure_disorder", "needs-physician-review", "seizure disorder"),
    ("thyrotoxicosis", "needs-physician-review", "overactive thyroid"),
    ("aneurysm", "needs-physician-review", "arterial pressure"),
    ("phaeochromocytoma", "needs-physician-review", "Phaeochromocytoma"),
    ("obstructive_sleep_apnoea", "needs-physician-review", "obstruct the airway"),
    ("severe_emergence_reaction", "needs-physician-review", "severe emergence reaction"),
    ("ketamine_hypersensitivity", "ineligible", "Hypersensitivity to ketamine"),
    ("myasthenia_gravis", "needs-physician-review", "Glycopyrrolate (premedication"),
]


def post_screening(client: Any, patient: Any, pv: Any, present: set[str]) -> str:
    form = client.get(reverse("screening_new", args=[patient.pk])).context["form"]
    data: dict[str, Any] = {"protocol_version": pv.pk, "medications_complete": "on",
                            "budapest_disproportionate_pain": "yes",
                            "budapest_no_better_diagnosis": "yes",
                            "budapest_symptoms_asked": "on", "budapest_signs_examined": "on",
                            "budapest_symptoms": ["allodynia", "temperature_asymmetry",
                                                  "oedema"],
                            "budapest_signs": ["hyperalgesia_pinprick",
                                               "skin_colour_asymmetry"]}
    for name in form.fields:
        if name.startswith("cond_"):
            data[name] = "yes" if name[len("cond_"):] in present else "no"
    response = client.post(reverse("screening_new", args=[patient.pk]), data)
    assert response.status_code == 302, response.content[:2000]
    return client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(("condition", "decision", "words"), PAGE_ITEMS,
                         ids=[c for c, _d, _w in PAGE_ITEMS])
def test_each_new_screening_rule_shows_its_decision_and_reason_on_the_page(
        client: Any, cast: Any, ana_ready: Any, standard: Any, condition: str,
        decision: str, words: str) -> None:
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, standard, {condition})
    assert f'data-decision="{decision}"' in page
    assert words in page


def test_a_patient_with_every_answer_no_is_only_asked_for_liver_tests(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, standard, set())
    assert 'data-decision="eligible-with-conditions"' in page


def test_an_allergy_to_the_premedication_shows_on_the_screening_page(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    patients.allergy_record(actor=Actor(user=cast.bob), patient=ana_ready,
                            substance="glycopyrrolate", reaction="hives", severity="mild")
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, standard, set())
    assert 'data-decision="needs-physician-review"' in page
    assert "It is the premedication of this protocol" in page


@pytest.mark.parametrize(("medication", "decision", "words"), [
    ("memantine", "needs-physician-review", "Other NMDA antagonist (memantine"),
    ("Plavix", "needs-physician-review", "CYP2B6 inhibitor (plavix)"),
    ("diltiazem", "eligible-with-conditions", "Moderate CYP3A4 inhibitor (diltiazem)"),
])
def test_each_new_interaction_shows_on_the_page(client: Any, cast: Any, ana_ready: Any,
                                                standard: Any, medication: str,
                                                decision: str, words: str) -> None:
    patients.medication_record(actor=Actor(user=cast.alice), patient=ana_ready,
                               name=medication)
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, standard, set())
    assert f'data-decision="{decision}"' in page
    assert words in page


def current(name: str) -> Any:
    from ketamine_clinic.web.protocols.services import protocol_current

    return protocol_current(name)


def test_a_17_year_old_goes_to_review_under_the_consensus_protocol_on_the_page(
        client: Any, cast: Any, ana_ready: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    born = today.replace(year=today.year - 17, day=min(today.day, 28)) - timedelta(days=30)
    patients.patient_amend(actor=Actor(user=cast.carol), patient=ana_ready,
                           changes={"date_of_birth": born}, reason="corrected")
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, current("consensus-2018"), set())
    assert 'data-decision="needs-physician-review"' in page
    assert "the 2018 guideline is an adult guideline" in page


def test_schwartzman_entry_criteria_show_on_the_page(client: Any, cast: Any,
                                                    ana_ready: Any) -> None:
    client.force_login(cast.bob)
    page = post_screening(client, ana_ready, current("schwartzman-2009"),
                          {"prior_ketamine_treatment"})
    assert 'data-decision="needs-physician-review"' in page
    assert "the trial enrolled ketamine-naive patients only" in page
