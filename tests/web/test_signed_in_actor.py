"""A service that records who did something refuses an actor without a user (a command or
the worker acting on its own) in words, and stores nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor, SignedInUserRequired
from ketamine_clinic.web.patients import services
from ketamine_clinic.web.patients.models import Measurement, Patient

NOBODY = Actor(user=None, client_address="cli")


def test_registering_a_patient_needs_a_signed_in_user(cast: Any) -> None:
    patients, entries = Patient.objects.count(), AuditEntry.objects.count()
    with pytest.raises(SignedInUserRequired, match="under a staff member's name") as refused:
        services.patient_register(
            actor=NOBODY, site=cast.denver, mrn="DEN-77", given_name="Nora",
            family_name="Lane", date_of_birth=date(1980, 1, 1), sex_at_birth="female")
    assert refused.value.field == "user"
    assert Patient.objects.count() == patients
    assert AuditEntry.objects.count() == entries


def test_recording_a_measurement_needs_a_signed_in_user(cast: Any) -> None:
    with pytest.raises(SignedInUserRequired):
        services.measurement_record(actor=NOBODY, patient=cast.ana, kind="weight_kg",
                                    value_number=Decimal("70"), measured_at=timezone.now())
    assert not Measurement.objects.filter(patient=cast.ana).exists()


def test_an_actor_with_a_user_gives_that_user(cast: Any) -> None:
    assert Actor(user=cast.bob).require_user() == cast.bob
