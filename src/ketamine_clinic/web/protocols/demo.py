"""Demo content for the protocols area: the shipped protocols, and screenings of some demo
patients (through the services, so they carry audit entries), one with an override."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ketamine_clinic.clinical.protocol import condition_vocabulary
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols import selectors, services
from ketamine_clinic.web.protocols.models import Screening

# Demo patients screened (registry MRNs from web/demo.py) and the one condition, if any,
# answered "yes" for each; every other condition is answered "no" except where left unknown.
DEMO_SCREENINGS = [
    ("DEN-1002", None), ("DEN-1003", "history_of_psychosis"), ("DEN-1005", None),
    ("DEN-1006", "cardiovascular_risk"), ("DEN-1008", None), ("BOU-1001", None),
    ("BOU-1004", "glaucoma"),
]
# A physician's documented review of some reasons (fictional justifications).
DEMO_OVERRIDES = {
    "DEN-1003": [("psychosis_history", "Single episode twenty years ago, stable since without "
                  "treatment; psychiatrist consulted and agrees to a monitored series.")],
    "DEN-1006": [("interactions.strong_cyp3a4_inhibitor", "Clarithromycin course ends before "
                  "the first visit; intravenous dosing, titrated from the start rate under "
                  "continuous monitoring.")],
}
LEFT_UNKNOWN = {"DEN-1005": ["urinary_symptoms", "cystitis_history"]}
BUDAPEST_MET = {"disproportionate_pain": True,
                "symptoms": ["allodynia", "temperature_asymmetry", "oedema"],
                "signs": ["hyperalgesia_pinprick", "skin_colour_asymmetry"],
                "no_better_diagnosis": True}


def demo_screenings() -> int:
    """Store shipped protocols; screen the demo patients not yet screened. Returns the count."""
    services.protocol_sync_shipped(on_conflict="skip")
    versions = [pv for pv in selectors.protocol_versions_for_screening()
                if pv.name == "clinic-standard"]
    staff = {u.username: u for u in User.objects.filter(
        username__in=["nurse.brooks", "nurse.chen", "dr.alvarez"])}
    if not versions or len(staff) < 3:
        return 0
    done = 0
    with transaction.atomic():
        for mrn, present in DEMO_SCREENINGS:
            patient = Patient.objects.filter(mrn=mrn).select_related("site").first()
            if patient is None or Screening.objects.filter(patient=patient).exists():
                continue
            nurse = staff["nurse.brooks" if patient.site.code == "denver" else "nurse.chen"]
            unknown = set(LEFT_UNKNOWN.get(mrn, []))
            answers: dict[str, Any] = {
                "medications_complete": True,
                "conditions": [present] if present else [],
                "conditions_absent": [c for c in condition_vocabulary()
                                      if c != present and c not in unknown],
                "budapest": BUDAPEST_MET}
            s = services.screening_record(actor=Actor(user=nurse, client_address="demo"),
                                          patient=patient, protocol_version=versions[0],
                                          answers=answers)
            for rule, why in DEMO_OVERRIDES.get(mrn, []):
                services.screening_override(
                    actor=Actor(user=staff["dr.alvarez"], client_address="demo"), screening=s,
                    rule=rule, justification=why)
            done += 1
    return done
