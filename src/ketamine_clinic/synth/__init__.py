"""Seeded synthetic cohorts for demos, tests and load tests (no Django, fictional people)."""

from ketamine_clinic.synth.cohort import (
    CohortChunk,
    CohortParams,
    SynthAdverseEvent,
    SynthPatient,
    SynthPatientRecord,
    SynthSeries,
    SynthSession,
    Truth,
    generate_cohort,
    generate_patient,
    iter_cohort,
    with_response,
)

__all__ = [
    "CohortChunk",
    "CohortParams",
    "SynthAdverseEvent",
    "SynthPatient",
    "SynthPatientRecord",
    "SynthSeries",
    "SynthSession",
    "Truth",
    "generate_cohort",
    "generate_patient",
    "iter_cohort",
    "with_response",
]
