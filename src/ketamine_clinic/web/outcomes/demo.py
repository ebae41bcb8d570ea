"""The outcomes area's demo step: a modest synthetic cohort at the demo sites, loaded once."""

from __future__ import annotations

import sys

from ketamine_clinic.web.outcomes.cohort_loader import MRN_PREFIX, load_synthetic_cohort
from ketamine_clinic.web.patients.models import Patient


def demo_cohort(n_patients: int) -> None:
    """Load ``n_patients`` synthetic patients unless a synthetic cohort is already there."""
    if not n_patients:
        return
    if Patient.objects.filter(mrn__startswith=MRN_PREFIX).exists():
        print("Synthetic cohort already present; left as it is.")
        return
    summary = load_synthetic_cohort(
        n_patients=n_patients, seed=2026, protocols=["clinic-standard", "schwartzman-2009"],
        progress=sys.stderr.isatty())
    print(f"Synthetic cohort loaded: {summary.patients} patients, {summary.series} series, "
          f"{summary.sessions} sessions (see Outcomes).")
