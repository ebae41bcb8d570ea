"""The diagnosis code catalogue (``reference/diagnosis_codes.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

SYSTEM_URIS = {
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "snomed": "http://snomed.info/sct",
}


@dataclass(frozen=True, slots=True)
class DiagnosisCode:
    system: str
    code: str
    display: str
    group: str  # crps, crps1, crps2 or other
    laterality: str = ""
    limb: str = ""

    @property
    def is_crps(self) -> bool:
        return self.group.startswith("crps")


@cache
def diagnosis_catalogue() -> dict[tuple[str, str], DiagnosisCode]:
    raw = read_toml("diagnosis_codes.toml")
    return {(c["system"], c["code"]): DiagnosisCode(**c) for c in raw["code"]}


def lookup_diagnosis(system: str, code: str, *, field: str = "code") -> DiagnosisCode:
    """The catalogue entry, or :class:`UsageError` naming ``field`` for an unknown code."""
    if system not in SYSTEM_URIS:
        raise UsageError("system", f"unknown code system {system!r} (use icd10cm or snomed)")
    found = diagnosis_catalogue().get((system, code.strip().upper()))
    if found is None:
        raise UsageError(field, f"{code!r} is not a known {system} diagnosis code")
    return found
