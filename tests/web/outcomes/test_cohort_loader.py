"""The synthetic cohort loader: what it writes reads back as the generator's outcomes."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from ketamine_clinic.clinical import outcomes as core
from ketamine_clinic.errors import UsageError
from ketamine_clinic.synth import CohortParams, generate_cohort
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.outcomes.cohort_loader import AE_TYPES, load_synthetic_cohort
from ketamine_clinic.web.outcomes.selectors import CohortFilters, outcome_report_for
from ketamine_clinic.web.sessions.models import TimelineEntry
from ketamine_clinic.web.sessions.schemas import KINDS

START = date(2023, 1, 2)


def _generator_outcomes(n: int, seed: int) -> list[core.SeriesOutcome]:
    """The generator's own outcome records, as the database can observe them: adverse
    events under the session contract's names, no MME after a drop-out before day 1."""
    out = []
    for rec in generate_cohort(CohortParams.default(n, seed, START)):
        for s in rec.series:
            o = s.to_outcome()
            seen_after = o.mme_after if o.follow_ups[-1].day > 0 else None
            out.append(dataclasses.replace(
                o, adverse_events=tuple(AE_TYPES[k] for k in o.adverse_events),
                mme_after=seen_after, last_contact_day=None))
    return out


@pytest.mark.django_db
def test_the_loaded_cohort_reports_what_the_generator_made(cast: Any) -> None:
    summary = load_synthetic_cohort(n_patients=12, seed=5, start_date=START, progress=False,
                                    sites=[cast.denver, cast.boulder])
    assert summary.patients == 12
    got = outcome_report_for([cast.denver.pk, cast.boulder.pk], CohortFilters()).report
    want = core.outcome_report(_generator_outcomes(12, 5), loss_percent=30)
    assert got.n_series == want.n_series == summary.series
    assert got.responders.to_dict() == want.responders.to_dict()
    assert got.adverse_events.to_dict() == want.adverse_events.to_dict()
    assert got.opioids.to_dict() == want.opioids.to_dict()
    for by in ("relief_by_diagnosis", "relief_by_protocol"):
        g, w = getattr(got, by).to_dict(), getattr(want, by).to_dict()
        g.pop("inputs")
        w.pop("inputs")
        assert g == w


@pytest.mark.django_db
def test_every_synthetic_timeline_payload_meets_the_session_contract(cast: Any) -> None:
    load_synthetic_cohort(n_patients=2, seed=6, start_date=START, progress=False,
                          sites=[cast.denver])
    entries = TimelineEntry.objects.filter(session__patient__mrn__startswith="SYN6-")
    kinds = set(entries.values_list("kind", flat=True))
    assert {"vitals", "sedation", "infusion_start", "stop", "pain", "discharge"} <= kinds
    for e in entries:
        KINDS[e.kind].model_validate(e.payload)


@pytest.mark.django_db
def test_one_audit_entry_summarises_a_load_and_a_seed_loads_once(cast: Any) -> None:
    load_synthetic_cohort(n_patients=3, seed=7, start_date=START, progress=False,
                          sites=[cast.denver], detail="outcomes")
    entries = AuditEntry.objects.filter(action="cohort.load_synthetic")
    assert entries.count() == 1
    assert entries.get().detail["patients"] == 3
    with pytest.raises(UsageError) as again:
        load_synthetic_cohort(n_patients=3, seed=7, start_date=START, progress=False,
                              sites=[cast.denver])
    assert again.value.field == "seed"


@pytest.mark.django_db
def test_a_synthetic_patients_page_shows_its_screenings_as_not_current(
        cast: Any, client: Any) -> None:
    from django.urls import reverse

    from ketamine_clinic.web.patients.models import Patient

    load_synthetic_cohort(n_patients=1, seed=8, start_date=START, progress=False,
                          sites=[cast.denver])
    patient = Patient.objects.get(mrn__startswith="SYN8-")
    client.force_login(cast.alice)
    response = client.get(reverse("patient_detail", args=[patient.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "screening out of date" in page
    assert 'id="new-order"' not in page
