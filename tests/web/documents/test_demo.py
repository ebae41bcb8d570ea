"""The documents area's demo step: consents for the demo patients, through the services."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.demo import load_demo_data
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import Consent
from ketamine_clinic.web.protocols.selectors import consent_current
from ketamine_clinic.web.protocols.services import protocol_current


def test_the_demo_records_consents_for_the_adult_demo_patients(db: Any) -> None:
    assert load_demo_data(seed=7)
    pv = protocol_current("clinic-standard")
    consents = Consent.objects.all()
    assert consents.count() > 0
    assert {c.method for c in consents} == {"signature", "paper"}
    for consent in consents:
        assert consent_current(consent.patient, pv) == consent
        assert 18 <= consent.patient.age_on(consent.signed_at.date()) < 66
    teenager = Patient.objects.get(given_name="Hugo")  # the demo's one teenager
    assert consent_current(teenager, pv) is None
    assert AuditEntry.objects.filter(action="consent.record").count() == consents.count()
