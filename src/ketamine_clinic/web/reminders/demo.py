"""Demo contact consent: every demo patient with a booked visit agrees to email."""

from __future__ import annotations

from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.reminders.models import Channel, ContactConsent
from ketamine_clinic.web.reminders.services import contact_consent_record


def demo_contact_consents() -> int:
    if ContactConsent.objects.exists():
        return 0
    desk = User.objects.filter(username="desk.diaz").first()
    if desk is None:
        return 0
    actor = Actor(user=desk, client_address="demo")
    patients = Patient.objects.filter(visits__isnull=False).exclude(email="").distinct()
    for patient in patients.select_related("site"):
        contact_consent_record(actor=actor, patient=patient, channel=Channel.EMAIL,
                               granted=True)
    return patients.count()
