"""The chart adapter: corrections, retractions and a running infusion as FHIR sees them."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.web.fhir import chart as charts
from ketamine_clinic.web.fhir import sources
from tests.web.sessions.conftest import VITALS, Walk, key


def _resources(walk: Walk, rtype: str) -> dict[str, dict[str, Any]]:
    batch = sources.Batch(sources.Scope((walk.c.cast.ana,)))
    return {r["id"]: r for r in batch.resources(rtype)}


def test_a_corrected_vital_sign_set_withdraws_the_old_and_marks_the_new_corrected(
        walk: Walk) -> None:
    from ketamine_clinic.web.sessions import services

    walk.event("check_in", 0)
    wrong = walk.observe("vitals", 5, **{**VITALS, "heart_rate_per_min": 27})
    right = services.session_entry_correct(
        actor=walk.nurse, session=walk.s, entry=wrong, reason="typed 27 for 72",
        data={**VITALS}, idempotency_key=key()).entry
    obs = _resources(walk, "Observation")
    assert obs[f"v-{wrong.pk}-heart-rate"]["status"] == "entered-in-error"
    assert obs[f"v-{wrong.pk}-heart-rate"]["valueQuantity"]["value"] == 27
    assert obs[f"v-{right.pk}-heart-rate"]["status"] == "corrected"
    assert obs[f"v-{right.pk}-heart-rate"]["valueQuantity"]["value"] == 72


def test_a_retracted_rescue_dose_is_entered_in_error(walk: Walk) -> None:
    from ketamine_clinic.web.sessions import services

    walk.infusing()
    dose = walk.observe("rescue_medication", 40, drug="midazolam", dose=2, unit="mg",
                        route="IV", indication="agitation")
    services.session_entry_correct(actor=walk.nurse, session=walk.s, entry=dose,
                                   reason="charted on the wrong patient",
                                   entered_in_error=True, idempotency_key=key())
    given = _resources(walk, "MedicationAdministration")
    assert given[f"med-{dose.pk}"]["status"] == "entered-in-error"
    # The dose names the order's midazolam line (rescue line 0).
    assert given[f"med-{dose.pk}"]["request"]["reference"].endswith("-0")


def test_a_running_infusion_has_an_open_segment_without_a_dose_and_an_open_procedure(
        walk: Walk) -> None:
    walk.infusing()  # 60 mg/h from minute 30
    walk.observe("vitals", 45, **VITALS)
    seg = _resources(walk, "MedicationAdministration")
    running = [r for r in seg.values() if r["id"].startswith("seg-")]
    assert len(running) == 1
    assert running[0]["status"] == "in-progress"
    assert "end" not in running[0]["effectivePeriod"]
    assert "dose" not in running[0]["dosage"]
    proc = _resources(walk, "Procedure")[str(walk.s.pk)]
    assert proc["status"] == "in-progress"
    assert "end" not in proc["performedPeriod"]
    enc = _resources(walk, "Encounter")[str(walk.s.pk)]
    assert enc["status"] == "in-progress"


def test_a_scheduled_session_is_a_planned_encounter_and_no_procedure(walk: Walk) -> None:
    enc = _resources(walk, "Encounter")[str(walk.s.pk)]
    assert enc["status"] == "planned"
    assert enc["period"]["start"]
    assert _resources(walk, "Procedure") == {}
    assert charts.chart_of(walk.s).segments == []


def test_the_adapter_reads_the_order_line_an_entry_names(walk: Walk) -> None:
    walk.ready()  # glycopyrrolate 0.2 mg IV from the order's premedication line 0
    chart = charts.chart_of(walk.s)
    assert [(m.drug, m.order_line) for m in chart.medications] == [("glycopyrrolate", 0)]
