"""Eligibility screening through the web: stored with its version and facts, unknown never
absent, physicians' overrides, and when a screening stops being current."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical.protocol import condition_vocabulary, load_protocol_text
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import services as patients
from ketamine_clinic.web.protocols import selectors, services
from ketamine_clinic.web.protocols.models import Screening, ScreeningOverride

from .conftest import answers_all_absent, renamed_text


def screen(cast: Any, patient: Any, pv: Any, **answers: Any) -> Screening:
    return services.screening_record(actor=Actor(user=cast.bob), patient=patient,
                                     protocol_version=pv,
                                     answers=answers or answers_all_absent())


def test_a_screening_is_stored_with_its_protocol_version_and_the_facts_it_used(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard)
    assert s.protocol_version == standard
    assert s.result["protocol"] == {"name": "clinic-standard", "version": 2,
                                    "sha256": standard.sha256}
    facts = s.facts
    assert facts["age_years"] == 39
    assert (facts["weight_kg"], facts["pregnant"], facts["sex_at_birth"]) == (
        68.5, False, "female")
    assert facts["diagnoses"] == ["G90.512"]
    assert facts["medications"] == ["gabapentin"]
    assert facts["conditions_absent"] == sorted(condition_vocabulary())
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    assert s.facts_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    validity = load_protocol_text(standard.toml_text, "t").screening.validity_days.value
    assert s.valid_until == timezone.localdate() + timedelta(days=int(validity))
    # Every condition asked and absent, CRPS confirmed: only the protocol's own
    # requirement (liver tests around repeated infusions) remains.
    assert s.decision == "eligible-with-conditions"
    assert [r["rule"] for r in s.reasons] == ["lft_repeated_infusions"]
    entry = AuditEntry.objects.get(action="screening.record")
    assert entry.detail["facts_sha256"] == s.facts_sha256
    with pytest.raises(RuntimeError):
        s.save()


def test_a_screening_stays_tied_to_its_version_after_a_new_version_is_published(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard)
    v2 = services.protocol_publish(
        actor=Actor(user=cast.dave), change_note="shorter validity",
        toml_text=renamed_text(standard, version=3, replace={
            r"^validity_days = \{ value = 30,": "validity_days = { value = 14,"}))
    s.refresh_from_db()
    assert s.protocol_version_id == standard.pk
    assert selectors.screening_current(ana_ready, standard) == s
    assert selectors.screening_current(ana_ready, v2) is None
    assert s.valid_until == timezone.localdate() + timedelta(days=30)


def test_unknown_facts_reach_needs_physician_review_through_the_web(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    """The form's conditions all start as "not known"; submitted as they are, screening
    must not read them as absent."""
    client.force_login(cast.bob)
    form = client.get(reverse("screening_new", args=[ana_ready.pk])).context["form"]
    data = {name: field.initial for name, field in form.fields.items()
            if field.initial is not None}
    data["protocol_version"] = standard.pk
    data["medications_complete"] = "on"
    response = client.post(reverse("screening_new", args=[ana_ready.pk]), data)
    assert response.status_code == 302
    s = Screening.objects.get(patient=ana_ready)
    assert s.decision == "needs-physician-review"
    unknown = [r for r in s.reasons if r["message"].startswith("Not known")]
    assert {r["rule"] for r in unknown} >= {"cardiovascular_disease", "psychosis_active",
                                            "budapest"}
    assert all(r["severity"] == "review" for r in unknown)
    assert s.facts["conditions"] == []
    assert s.facts["conditions_absent"] == []
    page = client.get(response["Location"]).content.decode()
    assert 'data-decision="needs-physician-review"' in page
    assert "Find out:" in page


def test_medications_not_confirmed_complete_are_unknown_not_none(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard, **answers_all_absent(medications_complete=False))
    assert s.facts["medications"] is None
    assert s.decision == "needs-physician-review"
    assert any(r["rule"] == "interactions" and r["find_out"] for r in s.reasons)


def test_the_answers_on_the_form_are_what_the_screening_uses(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    client.force_login(cast.bob)
    data: dict[str, Any] = {"protocol_version": standard.pk, "medications_complete": "on"}
    for cid in condition_vocabulary():
        data[f"cond_{cid}"] = "no"
    data["cond_active_psychosis"] = "yes"
    data.update(budapest_disproportionate_pain="yes", budapest_no_better_diagnosis="yes",
                budapest_symptoms=["allodynia", "oedema", "temperature_asymmetry"],
                budapest_signs=["allodynia", "oedema"])
    client.post(reverse("screening_new", args=[ana_ready.pk]), data)
    s = Screening.objects.get(patient=ana_ready)
    assert s.facts["conditions"] == ["active_psychosis"]
    assert "active_psychosis" not in s.facts["conditions_absent"]
    assert s.facts["budapest"]["signs"] == ["allodynia", "oedema"]
    assert [r["rule"] for r in s.reasons if r["severity"] == "review"] == ["psychosis_active"]


def test_an_unknown_pregnancy_status_excludes_under_the_clinic_rule(
        cast: Any, standard: Any) -> None:
    """Zed's registry has no weight; a patient of female sex with no pregnancy status
    recorded is screened with pregnancy unknown (the clinic excludes when unknown)."""
    patient = patients.patient_register(
        actor=Actor(user=cast.carol), site=cast.denver, mrn="DEN-9", given_name="Ines",
        family_name="Sato", date_of_birth=timezone.localdate() - timedelta(days=30 * 366),
        sex_at_birth="female")
    s = screen(cast, patient, standard)
    assert s.facts["pregnant"] == "unknown"
    assert s.facts["weight_kg"] is None
    assert s.decision == "ineligible"
    assert {"pregnancy", "weight_recorded", "indication"} <= {r["rule"] for r in s.reasons}


def test_a_physician_overrides_a_reviewable_reason_with_a_justification(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard,
               **answers_all_absent(conditions=["history_of_psychosis"],
                                    conditions_absent=[c for c in condition_vocabulary()
                                                       if c != "history_of_psychosis"]))
    assert s.decision == "needs-physician-review"
    assert selectors.screening_current(ana_ready, standard) is None
    client.force_login(cast.alice)
    url = reverse("screening_override", args=[s.pk])
    response = client.post(url, {"rule": "psychosis_history",
                                 "justification": "single episode in 2001, stable since; "
                                 "psychiatrist agrees"})
    assert response.status_code == 302
    o = ScreeningOverride.objects.get(screening=s)
    assert (o.rule, o.physician) == ("psychosis_history", cast.alice)
    assert AuditEntry.objects.get(action="screening.override").detail["effective_decision"] \
        == "eligible-with-conditions"
    s.refresh_from_db()
    assert s.decision == "needs-physician-review"  # the screening itself is unchanged
    assert selectors.screening_current(ana_ready, standard) == s
    page = client.get(reverse("screening_detail", args=[s.pk])).content.decode()
    assert 'data-decision="eligible-with-conditions"' in page
    assert "single episode in 2001" in page
    assert "Overridden" in page


def test_a_nurse_may_not_override(client: Any, cast: Any, ana_ready: Any,
                                  standard: Any) -> None:
    s = screen(cast, ana_ready, standard, **answers_all_absent(medications_complete=False))
    client.force_login(cast.bob)
    response = client.post(reverse("screening_override", args=[s.pk]),
                           {"rule": "interactions", "justification": "x"})
    assert response.status_code == 403
    with pytest.raises(UsageError, match="only a physician"):
        services.screening_override(actor=Actor(user=cast.bob), screening=s,
                                    rule="interactions", justification="x")
    assert not ScreeningOverride.objects.exists()


@pytest.mark.parametrize(("age_years", "rule", "severity"), [
    (70, "age_elderly", "exclude"), (40, "lft_repeated_infusions", "condition")])
def test_exclusions_and_conditions_cannot_be_overridden(
        client: Any, cast: Any, standard: Any, age_years: int, rule: str,
        severity: str) -> None:
    patient = patients.patient_register(
        actor=Actor(user=cast.carol), site=cast.denver, mrn=f"DEN-{age_years}",
        given_name="Olga", family_name="Petrov", sex_at_birth="male",
        date_of_birth=timezone.localdate() - timedelta(days=age_years * 366))
    s = screen(cast, patient, standard)
    assert any(r["rule"] == rule and r["severity"] == severity for r in s.reasons)
    client.force_login(cast.alice)
    client.post(reverse("screening_override", args=[s.pk]),
                {"rule": rule, "justification": "I disagree"})
    assert not ScreeningOverride.objects.exists()
    with pytest.raises(UsageError, match="cannot be overridden"):
        services.screening_override(actor=Actor(user=cast.alice), screening=s, rule=rule,
                                    justification="I disagree")


def test_an_override_needs_a_justification_and_happens_once(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard, **answers_all_absent(medications_complete=False))
    alice = Actor(user=cast.alice)
    with pytest.raises(UsageError, match="write why"):
        services.screening_override(actor=alice, screening=s, rule="interactions",
                                    justification="  ")
    services.screening_override(actor=alice, screening=s, rule="interactions",
                                justification="list checked by phone with pharmacy")
    with pytest.raises(UsageError, match="already overridden"):
        services.screening_override(actor=alice, screening=s, rule="interactions",
                                    justification="again")


def test_only_the_newest_screening_can_be_overridden(cast: Any, ana_ready: Any,
                                                    standard: Any) -> None:
    old = screen(cast, ana_ready, standard, **answers_all_absent(medications_complete=False))
    screen(cast, ana_ready, standard)
    with pytest.raises(UsageError, match="newer screening"):
        services.screening_override(actor=Actor(user=cast.alice), screening=old,
                                    rule="interactions", justification="x")


def test_a_change_in_the_registry_puts_the_screening_out_of_date(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    s = screen(cast, ana_ready, standard)
    assert selectors.screening_current(ana_ready, standard) == s
    patients.medication_record(actor=Actor(user=cast.alice), patient=ana_ready,
                               name="clarithromycin")
    assert selectors.screening_current(ana_ready, standard) is None
    client.force_login(cast.bob)
    page = client.get(reverse("patient_detail", args=[ana_ready.pk])).content.decode()
    assert "screening out of date: the patient&#x27;s facts have changed since the " \
        "screening (medications)" in page


def test_a_screening_past_the_validity_period_is_not_current(cast: Any, ana_ready: Any,
                                                            standard: Any) -> None:
    s = screen(cast, ana_ready, standard)
    assert selectors.screening_current(ana_ready, standard, today=s.valid_until) == s
    late = s.valid_until + timedelta(days=1)
    assert selectors.screening_current(ana_ready, standard, today=late) is None
    status = selectors.screening_status(s, today=late)
    assert status.out_of_date[0].startswith("older than the protocol's validity of 30 days")


def test_a_new_series_needs_a_new_screening(cast: Any, ana_ready: Any,
                                            standard: Any) -> None:
    from ketamine_clinic.web.orders.models import Series

    s = screen(cast, ana_ready, standard)
    series = Series.objects.create(patient=ana_ready, protocol_version=standard, screening=s,
                                   planned_sessions=5, spacing_days=1, created_by=cast.alice)
    assert selectors.screening_current(ana_ready, standard, series=series) == s
    assert selectors.screening_current(ana_ready, standard) is None  # for another series
    Series.objects.filter(pk=series.pk).update(ended_at=timezone.now(),
                                               ended_reason="course complete")
    status = selectors.screening_status(Screening.objects.get(pk=s.pk))
    assert "a new series needs a new screening" in status.out_of_date


def test_the_patient_page_shows_the_screening_status_and_the_screen_action(
        client: Any, cast: Any, ana_ready: Any, standard: Any) -> None:
    client.force_login(cast.carol)
    page = client.get(reverse("patient_detail", args=[ana_ready.pk])).content.decode()
    assert "Not screened yet" in page
    assert reverse("screening_new", args=[ana_ready.pk]) not in page  # front desk
    screen(cast, ana_ready, standard)
    client.force_login(cast.bob)
    page = client.get(reverse("patient_detail", args=[ana_ready.pk])).content.decode()
    assert "eligible-with-conditions" in page
    assert ">current<" in page
    assert reverse("screening_new", args=[ana_ready.pk]) in page


def test_a_retired_or_draft_version_cannot_be_used_for_a_new_screening(
        cast: Any, ana_ready: Any, standard: Any) -> None:
    draft = services.protocol_publish(
        actor=Actor(user=cast.dave), change_note="draft",
        toml_text=renamed_text(standard, version=3,
                               replace={r'^status = "active"$': 'status = "draft"'}))
    assert draft not in selectors.protocol_versions_for_screening()
    with pytest.raises(UsageError, match="draft"):
        screen(cast, ana_ready, draft)
    assert services.protocol_current("clinic-standard") == standard
