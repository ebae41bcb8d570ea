"""The patient registry: registering, correcting, measuring, and refusing bad input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical.plausibility import plausible_ranges
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients import selectors, services
from ketamine_clinic.web.patients.models import DemographicAmendment, Measurement, Patient


def actor(user: Any) -> Actor:
    return Actor(user=user, client_address="127.0.0.1")


def register(cast: Any, **overrides: Any) -> Patient:
    fields: dict[str, Any] = {
        "site": cast.denver, "mrn": "DEN-77", "given_name": "Mia", "family_name": "Novak",
        "date_of_birth": date(1985, 6, 1), "sex_at_birth": "female"}
    fields.update(overrides)
    return services.patient_register(actor=actor(cast.carol), **fields)


def test_it_registers_a_patient_with_contact_and_escort(cast: Any) -> None:
    p = register(cast, escort_name="Jan Novak", escort_phone="555-0101")
    assert Patient.objects.get(pk=p.pk).escort_name == "Jan Novak"


def test_the_same_mrn_is_refused_at_one_site_and_allowed_at_another(cast: Any) -> None:
    with pytest.raises(UsageError) as err:
        register(cast, mrn=cast.ana.mrn)
    assert err.value.field == "mrn"
    assert register(cast, mrn=cast.ana.mrn, site=cast.boulder).site == cast.boulder


@pytest.mark.parametrize("dob", ["tomorrow", date(1850, 1, 1)])
def test_an_impossible_date_of_birth_is_refused_and_nothing_is_stored(cast: Any,
                                                                      dob: Any) -> None:
    if dob == "tomorrow":  # the clinic's tomorrow, taken when the test runs
        dob = timezone.localdate() + timedelta(days=1)
    before = Patient.objects.count()
    with pytest.raises(UsageError) as err:
        register(cast, date_of_birth=dob)
    assert err.value.field == "date_of_birth"
    assert Patient.objects.count() == before


def test_a_weight_outside_the_plausible_range_is_refused(cast: Any) -> None:
    rng = plausible_ranges()["weight_kg"]
    for bad in (rng.min - 0.5, rng.max + 0.5):
        with pytest.raises(UsageError) as err:
            services.measurement_record(actor=actor(cast.bob), patient=cast.ana,
                                        kind="weight_kg", value_number=bad,
                                        measured_at=timezone.now())
        assert err.value.field == "value_number"
    assert not cast.ana.measurements.exists()


def test_a_weight_at_the_edges_of_the_plausible_range_is_accepted(cast: Any) -> None:
    """The plausible range covers a newborn to the heaviest adult; an adult's weight is
    also checked against the adult minimum, and a large change is confirmed."""
    rng = plausible_ranges()["weight_kg"]
    baby = services.patient_register(
        actor=actor(cast.bob), site=cast.denver, mrn="DEN-NB1", given_name="Nora",
        family_name="Newborn", date_of_birth=timezone.localdate() - timedelta(days=3),
        sex_at_birth="female")
    services.measurement_record(actor=actor(cast.bob), patient=baby, kind="weight_kg",
                                value_number=rng.min, measured_at=timezone.now())
    services.measurement_record(actor=actor(cast.bob), patient=cast.ana, kind="weight_kg",
                                value_number=rng.max, measured_at=timezone.now(),
                                confirmed=True)
    assert baby.measurements.count() == 1
    assert cast.ana.measurements.count() == 1


def test_a_measurement_in_the_future_is_refused(cast: Any) -> None:
    with pytest.raises(UsageError) as err:
        services.measurement_record(actor=actor(cast.bob), patient=cast.ana, kind="weight_kg",
                                    value_number=70,
                                    measured_at=timezone.now() + timedelta(hours=2))
    assert err.value.field == "measured_at"


def test_an_unknown_diagnosis_code_is_refused(cast: Any) -> None:
    with pytest.raises(UsageError) as err:
        services.diagnosis_record(actor=actor(cast.alice), patient=cast.ana, system="icd10cm",
                                  code="G89.51", diagnosed_on=date(2024, 1, 1))
    assert err.value.field == "code"
    assert not cast.ana.diagnoses.exists()


def test_crps_codes_carry_laterality_and_limb(cast: Any) -> None:
    d = services.diagnosis_record(actor=actor(cast.alice), patient=cast.ana,
                                  system="icd10cm", code="g57.72",
                                  diagnosed_on=date(2024, 1, 1))
    assert (d.code, d.group, d.laterality, d.limb) == ("G57.72", "crps2", "left", "lower")


def test_a_correction_keeps_the_previous_value_with_who_when_and_why(cast: Any) -> None:
    services.patient_amend(actor=actor(cast.carol), patient=cast.ana,
                           changes={"family_name": "Ruiz-Moreno", "phone": "555-0199"},
                           reason="Married name; new phone given at check-in")
    cast.ana.refresh_from_db()
    assert cast.ana.family_name == "Ruiz-Moreno"
    rows = {a.field: a for a in DemographicAmendment.objects.filter(patient=cast.ana)}
    assert rows["family_name"].old_value == "Ruiz"
    assert rows["family_name"].amended_by == cast.carol
    assert rows["phone"].reason.startswith("Married name")


def test_a_correction_without_a_reason_changes_nothing(cast: Any) -> None:
    with pytest.raises(UsageError) as err:
        services.patient_amend(actor=actor(cast.carol), patient=cast.ana,
                               changes={"family_name": "X"}, reason=" ")
    assert err.value.field == "reason"
    cast.ana.refresh_from_db()
    assert cast.ana.family_name == "Ruiz"


def test_a_measurement_entered_in_error_is_marked_and_kept(cast: Any) -> None:
    m = services.measurement_record(actor=actor(cast.bob), patient=cast.ana, kind="weight_kg",
                                    value_number=700 / 10, measured_at=timezone.now())
    services.record_mark_in_error(actor=actor(cast.bob), record=m, reason="wrong patient")
    kept = Measurement.objects.get(pk=m.pk)
    assert kept.in_error
    assert kept.entered_in_error_reason == "wrong patient"
    assert kept.value_number == Decimal("70.00")
    assert selectors.latest_weight(cast.ana) is None
    with pytest.raises(UsageError):
        services.record_mark_in_error(actor=actor(cast.bob), record=m, reason="again")


@pytest.mark.parametrize("query", ["Ruiz", "ana ruiz", "DEN-1", "RUIZ"])
def test_search_finds_a_patient_by_name_or_mrn(cast: Any, query: str) -> None:
    assert list(selectors.patient_search(cast.alice, query)) == [cast.ana]


def test_search_finds_a_patient_by_date_of_birth(cast: Any) -> None:
    found = selectors.patient_search(cast.alice, cast.zed.date_of_birth.isoformat())
    assert list(found) == [cast.zed]


def test_the_patient_page_shows_newest_measurements_first(cast: Any, client: Client) -> None:
    now = timezone.now()
    for days, kg in ((30, 80), (1, 78.5), (10, 79)):
        services.measurement_record(actor=actor(cast.bob), patient=cast.ana, kind="weight_kg",
                                    value_number=kg, measured_at=now - timedelta(days=days))
    client.force_login(cast.bob)
    body = client.get(reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    assert body.index("78.5 kg") < body.index("79 kg") < body.index("80 kg")


def test_the_register_form_names_the_field_of_a_duplicate_mrn(cast: Any,
                                                               client: Client) -> None:
    client.force_login(cast.carol)
    response = client.post(reverse("patient_create"), {
        "site": cast.denver.pk, "mrn": cast.ana.mrn, "given_name": "Dup", "family_name": "Dup",
        "date_of_birth": "1990-01-01", "sex_at_birth": "male"})
    assert response.status_code == 200
    assert "already used" in response.context["form"].errors["mrn"][0]


def test_a_page_form_with_an_implausible_weight_shows_the_error(cast: Any,
                                                                 client: Client) -> None:
    client.force_login(cast.bob)
    response = client.post(reverse("measurement_add", args=[cast.ana.pk]), {
        "kind": "weight_kg", "value_number": "7000",
        "measured_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 400
    assert "plausible range" in response.content.decode()
    assert not cast.ana.measurements.exists()
