"""Fixtures for the protocols area: the shipped protocols (stored by ``migrate``), a patient
whose registry holds everything screening reads, and answers to the clinical questions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.clinical.protocol import condition_vocabulary


def answers_all_absent(**extra: Any) -> dict[str, Any]:
    """Every condition asked and absent, medications confirmed, Budapest met."""
    return {"medications_complete": True, "conditions": [],
            "conditions_absent": list(condition_vocabulary()),
            "budapest": budapest_met(), **extra}


def budapest_met() -> dict[str, Any]:
    return {"disproportionate_pain": True,
            "symptoms": ["allodynia", "temperature_asymmetry", "oedema"],
            "signs": ["hyperalgesia_pinprick", "skin_colour_asymmetry"],
            "no_better_diagnosis": True}


def renamed_text(pv: Any, *, version: int, replace: dict[str, str] | None = None) -> str:
    """The text of ``pv`` with a new version number and some lines replaced (regex → text)."""
    text = re.sub(r"(?m)^version = \d+$", f"version = {version}", pv.toml_text)
    for pattern, new in (replace or {}).items():
        text, n = re.subn(pattern, new, text, flags=re.M)
        assert n, f"pattern {pattern!r} not found"
    return text


@pytest.fixture
def standard(cast: Any) -> Any:
    """clinic-standard v2, the current shipped version, as ``migrate`` stored it."""
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    return ProtocolVersion.objects.get(name="clinic-standard", version=2)


@pytest.fixture
def ana_ready(cast: Any) -> Any:
    """Ana (39, female, her birthday half a year away so that age does not change while a
    screening is valid) with a weight, a negative pregnancy test, a CRPS diagnosis and one
    medication in the registry."""
    return make_ana_ready(cast)


def make_ana_ready(cast: Any) -> Any:
    """What ``ana_ready`` records, for a world built outside a test."""
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services

    nurse, doctor = Actor(user=cast.bob), Actor(user=cast.alice)
    today = timezone.localdate()
    born = today.replace(year=today.year - 40, day=min(today.day, 28)) + timedelta(days=180)
    services.patient_amend(actor=Actor(user=cast.carol), patient=cast.ana,
                           changes={"date_of_birth": born}, reason="birth certificate seen")
    yesterday = timezone.now() - timedelta(days=1)
    services.measurement_record(actor=nurse, patient=cast.ana, kind="weight_kg",
                                value_number=68.5, measured_at=yesterday)
    services.measurement_record(actor=nurse, patient=cast.ana, kind="pregnancy_status",
                                value_code="not_pregnant", measured_at=yesterday)
    services.diagnosis_record(actor=doctor, patient=cast.ana, system="icd10cm", code="G90.512",
                              diagnosed_on=timezone.localdate() - timedelta(days=400))
    services.medication_record(actor=doctor, patient=cast.ana, name="gabapentin",
                               dose="300 mg three times daily")
    return cast.ana
