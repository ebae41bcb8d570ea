"""The demo screens some demo patients through the services, once."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.protocols.demo import DEMO_SCREENINGS, demo_screenings
from ketamine_clinic.web.protocols.models import Screening, ScreeningOverride


def test_the_demo_screens_its_patients_once_with_one_override(db: Any) -> None:
    from ketamine_clinic.web.demo import load_demo_data

    assert load_demo_data()
    assert demo_screenings() == len(DEMO_SCREENINGS)
    assert demo_screenings() == 0
    decisions = dict(Screening.objects.values_list("patient__mrn", "decision"))
    assert set(decisions) == {mrn for mrn, _ in DEMO_SCREENINGS}
    left_unknown = Screening.objects.get(patient__mrn="DEN-1005").reasons
    assert any(r["rule"] == "urological" and r["message"].startswith("Not known")
               for r in left_unknown)
    o = ScreeningOverride.objects.get()
    assert o.rule == "psychosis_history"
    assert AuditEntry.objects.filter(action="screening.record").count() == len(DEMO_SCREENINGS)
