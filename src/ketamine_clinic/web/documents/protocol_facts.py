"""What the documents need from a protocol version, read through the protocol core.

``ProtocolVersion.toml_text`` is parsed with ``clinical.protocol.load_protocol_text`` (the
one place that knows the protocol format). This module picks out what a patient document
shows: the drug, the rates, the duration and number of infusions, the premedication and
the protocol's own discharge instructions. A protocol that lacks an item simply leaves
that line out of the documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.units import exact
from ketamine_clinic.web.protocols.models import ProtocolVersion


@dataclass(frozen=True)
class Medicine:
    drug: str
    dose_text: str
    route: str
    when: str = ""

    @property
    def text(self) -> str:
        parts = [self.drug, self.dose_text, self.route, self.when]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class ProtocolFacts:
    name: str
    version: str
    title: str
    sha256: str
    drug: str = ""
    rate_unit: str = ""
    start_rate: Fraction | None = None
    max_rate: Fraction | None = None
    titration_step: Fraction | None = None
    planned_duration_min: Fraction | None = None
    planned_sessions: int | None = None
    spacing_days: int | None = None
    premedications: tuple[Medicine, ...] = ()
    discharge_instructions: tuple[str, ...] = ()


def _get(obj: Any, *names: str) -> Any:
    """The first attribute (or mapping key) of ``obj`` that is present and not None."""
    for name in names:
        if obj is None:
            return None
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _number(value: Any) -> Fraction | None:
    if value is None:
        return None
    if hasattr(value, "value") and not isinstance(value, int | float | str):
        value = value.value  # a quantity-like object
    return exact(value, field="protocol")


_UNITS = {"mg/h": "mg/h", "mg_per_h": "mg/h", "fixed": "mg/h", "mg/kg/h": "mg/kg/h",
          "mg_per_kg_per_h": "mg/kg/h", "weight": "mg/kg/h", "weight_based": "mg/kg/h"}


def _rate_unit(basis: Any) -> str:
    text = str(getattr(basis, "value", basis) or "")
    return _UNITS.get(text, text)


def _medicines(items: Iterable[Any] | None) -> tuple[Medicine, ...]:
    out = []
    for item in items or ():
        if isinstance(item, str):
            out.append(Medicine(item, "", ""))
            continue
        dose = _get(item, "dose_text", "dose")
        unit = _get(item, "unit", "dose_unit") or ""
        dose_text = str(dose) if isinstance(dose, str) else (
            f"{float(_number(dose) or 0):g} {unit}".strip() if dose is not None else "")
        out.append(Medicine(
            drug=str(_get(item, "drug", "name") or ""),
            dose_text=dose_text,
            route=str(_get(item, "route") or ""),
            when=str(_get(item, "timing", "when") or ""),
        ))
    return tuple(out)


def _instructions(protocol: Any) -> tuple[str, ...]:
    discharge = _get(protocol, "discharge")
    found = _get(discharge, "instructions") if discharge is not None else None
    if found is None:
        found = _get(protocol, "discharge_instructions")
    if found is None:
        return ()
    if isinstance(found, str):
        return tuple(line.strip() for line in found.splitlines() if line.strip())
    return tuple(str(_get(x, "text") or x) if not isinstance(x, str) else x for x in found)


def facts_from_protocol(protocol: Any, *, sha256: str) -> ProtocolFacts:
    """Pick the documents' facts out of a loaded protocol."""
    dosing = _get(protocol, "dosing")
    series = _get(protocol, "series", "schedule")
    return ProtocolFacts(
        name=str(_get(protocol, "name")),
        version=str(_get(protocol, "version")),
        title=str(_get(protocol, "title") or _get(protocol, "name")),
        sha256=sha256,
        drug=str(_get(dosing, "drug") or _get(protocol, "drug") or ""),
        rate_unit=_rate_unit(_get(dosing, "basis")),
        start_rate=_number(_get(dosing, "start_rate")),
        max_rate=_number(_get(dosing, "max_rate")),
        titration_step=_number(_get(dosing, "titration_step")),
        planned_duration_min=_number(_get(dosing, "planned_duration_min")),
        planned_sessions=_get(series, "planned_sessions", "sessions"),
        spacing_days=_get(series, "spacing_days"),
        premedications=_medicines(_get(protocol, "premedications", "premedication")),
        discharge_instructions=_instructions(protocol),
    )


def protocol_facts(pv: ProtocolVersion) -> ProtocolFacts:
    """The facts of a stored protocol version (parsed with the protocol core)."""
    from ketamine_clinic.clinical.protocol import load_protocol_text

    protocol = load_protocol_text(pv.toml_text, f"{pv.name} v{pv.version}")
    return facts_from_protocol(protocol, sha256=pv.sha256)
