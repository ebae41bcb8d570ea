"""The demo screens some demo patients through the services, once."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.protocols.demo import DEMO_OVERRIDES, DEMO_SCREENINGS, demo_screenings
from ketamine_clinic.web.protocols.models import Screening, ScreeningOverride


def test_the_demo_screens_its_patients_once_with_the_physicians_overrides(db: Any) -> None:
    from ketamine_clinic.web.demo import load_demo_data

    assert load_demo_data()
    assert demo_screenings() == len(DEMO_SCREENINGS)
    assert demo_screenings() == 0
    decisions = dict(Screening.objects.values_list("patient__mrn", "decision"))
    assert set(decisions) == {mrn for mrn, _ in DEMO_SCREENINGS}
    left_unknown = Screening.objects.get(patient__mrn="DEN-1005").reasons
    assert any(r["rule"] == "urological" and r["message"].startswith("Not known")
               for r in left_unknown)
    overrides = dict(ScreeningOverride.objects.values_list("screening__patient__mrn", "rule"))
    assert overrides == {mrn: rule for mrn, done in DEMO_OVERRIDES.items() for rule, _ in done}
    assert overrides["DEN-1003"] == "psychosis_history"
    # The reviewed interaction leaves DEN-1006 treatable (with conditions): a third chair.
    from ketamine_clinic.web.protocols.selectors import screening_current

    reviewed = Screening.objects.select_related("patient", "protocol_version").get(
        patient__mrn="DEN-1006")
    assert reviewed.decision == "needs-physician-review"
    assert screening_current(reviewed.patient, reviewed.protocol_version) is not None
    assert AuditEntry.objects.filter(action="screening.record").count() == len(DEMO_SCREENINGS)
