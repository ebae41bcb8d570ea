"""Issue 11 finding 4 through the web: screening sees the patient's recorded allergies, a
ketamine allergy makes the patient ineligible, and the allergies show on the patient and
order pages."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import services as patients
from ketamine_clinic.web.protocols import selectors, services

from .conftest import answers_all_absent


def record_allergy(cast: Any, patient: Any, substance: str, reaction: str = "") -> Any:
    return patients.allergy_record(actor=Actor(user=cast.bob), patient=patient,
                                   substance=substance, reaction=reaction, severity="severe")


def test_a_recorded_ketamine_allergy_makes_screening_ineligible(cast: Any, ana_ready: Any,
                                                                 standard: Any) -> None:
    record_allergy(cast, ana_ready, "Ketalar", "hives and wheeze")
    s = services.screening_record(actor=Actor(user=cast.bob), patient=ana_ready,
                                  protocol_version=standard, answers=answers_all_absent())
    assert s.decision == "ineligible"
    reason = next(r for r in s.reasons if r["rule"].startswith("allergy_ketamine"))
    assert reason["severity"] == "exclude"
    assert "hives and wheeze" in reason["message"]
    assert s.facts["allergies"] == [{"substance": "Ketalar", "code": "",
                                     "reaction": "hives and wheeze", "status": "active"}]


def test_an_allergy_entered_in_error_no_longer_excludes(cast: Any, ana_ready: Any,
                                                        standard: Any) -> None:
    allergy = record_allergy(cast, ana_ready, "ketamine")
    patients.record_mark_in_error(actor=Actor(user=cast.bob), record=allergy,
                                  reason="another patient's allergy")
    s = services.screening_record(actor=Actor(user=cast.bob), patient=ana_ready,
                                  protocol_version=standard, answers=answers_all_absent())
    assert s.decision == "eligible-with-conditions"


def test_an_allergy_recorded_after_the_screening_makes_it_out_of_date(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    services.screening_record(actor=Actor(user=cast.bob), patient=ana_ready,
                              protocol_version=standard, answers=answers_all_absent())
    assert selectors.screening_current(ana_ready, standard) is not None
    record_allergy(cast, ana_ready, "ketamine")
    assert selectors.screening_current(ana_ready, standard) is None
    status = selectors.screening_latest_status(ana_ready, standard)
    assert status is not None
    assert "allergies" in status.changed


def test_the_screening_page_shows_the_ketamine_exclusion_and_its_reason(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    record_allergy(cast, ana_ready, "ketamine", "anaphylaxis")
    client.force_login(cast.bob)
    form = client.get(reverse("screening_new", args=[ana_ready.pk])).context["form"]
    assert "cond_ketamine_hypersensitivity" in form.fields
    data: dict[str, Any] = {"protocol_version": standard.pk, "medications_complete": "on"}
    for name in form.fields:
        if name.startswith("cond_"):
            data[name] = "no"
    response = client.post(reverse("screening_new", args=[ana_ready.pk]), data)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert 'data-decision="ineligible"' in page
    assert "Allergy recorded to ketamine (reaction: anaphylaxis)" in page
    assert "<dt>Allergies</dt><dd>ketamine (anaphylaxis)</dd>" in page  # the facts used
    form_page = client.get(reverse("screening_new", args=[ana_ready.pk])).content.decode()
    assert "<dt>Allergies</dt><dd>ketamine (anaphylaxis)</dd>" in form_page


def test_the_patient_page_shows_a_ketamine_allergy(client: Any, cast: Any,
                                                   ana_ready: Any) -> None:
    record_allergy(cast, ana_ready, "esketamine", "rash")
    client.force_login(cast.bob)
    page = client.get(ana_ready.get_absolute_url()).content.decode()
    assert 'id="ketamine-allergy"' in page
    assert 'id="ketamine-allergy-banner"' in page  # at the top of the page
    assert page.index('id="ketamine-allergy-banner"') < page.index('id="demographics"')
    assert "Allergy recorded to esketamine (reaction: rash): that is ketamine." in page


def test_the_screening_form_shows_the_published_budapest_wording(client: Any, cast: Any,
                                                                  ana_ready: Any) -> None:
    client.force_login(cast.bob)
    page = client.get(reverse("screening_new", args=[ana_ready.pk])).content.decode()
    block = page[page.index('id="budapest-published"'):]
    assert "Continuing pain, which is disproportionate to any inciting event." in block
    assert "Reports of edema and/or sweating changes and/or sweating asymmetry." in block


def test_the_bedside_reads_a_patients_allergies_through_the_core(cast: Any,
                                                                  ana_ready: Any) -> None:
    from ketamine_clinic.clinical.allergies import is_allergic

    record_allergy(cast, ana_ready, "benzodiazepines", "angioedema")
    wrong = record_allergy(cast, ana_ready, "ondansetron")
    patients.record_mark_in_error(actor=Actor(user=cast.bob), record=wrong,
                                  reason="another patient's allergy")
    records = selectors.allergy_records(ana_ready)
    assert [r.substance for r in records] == ["benzodiazepines"]
    assert is_allergic(records, "midazolam")
    assert not is_allergic(records, "ondansetron")
    assert not is_allergic(records, "ketamine")
