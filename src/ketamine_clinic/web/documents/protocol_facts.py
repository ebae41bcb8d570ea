"""What the documents need from a protocol version, read through the protocol core.

``ProtocolVersion.toml_text`` is parsed with ``clinical.protocol.load_protocol_text`` (the
one place that knows the protocol format). This module picks out what a patient document
shows: the drug, the rates, the duration and number of infusions, the premedication and
the protocol's own discharge instructions. A protocol that lacks an item simply leaves
that line out of the documents.
"""

from __future__ import annotations

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
    """The first attribute of ``obj`` that is present and not None."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _number(value: Any) -> Fraction | None:
    """The exact number of a protocol ``Quantity`` (or of a bare number)."""
    if value is None:
        return None
    return exact(getattr(value, "value", value), field="protocol")


def _text(value: Any) -> str:
    """The text of a protocol ``Choice`` (or of a bare string)."""
    return str(getattr(value, "value", value) or "")


_UNITS = {"fixed_mg_per_h": "mg/h", "weight_mg_per_kg_per_h": "mg/kg/h"}


def _rate_unit(dosing: Any) -> str:
    unit = getattr(dosing, "rate_unit", None)
    if unit:
        return str(unit)
    basis = _text(dosing.basis)
    return _UNITS.get(basis, basis)


def _medicine(item: Any) -> Medicine:
    dose = item.dose
    amount = _number(dose)
    unit = str(getattr(dose, "unit", ""))
    return Medicine(
        drug=str(item.drug),
        dose_text=f"{float(amount):g} {unit}".strip() if amount is not None else "",
        route=str(getattr(item, "route", "") or ""),
        when=str(getattr(item, "timing", "") or ""),
    )


def facts_from_protocol(protocol: Any, *, sha256: str) -> ProtocolFacts:
    """Pick the documents' facts out of a loaded ``clinical.protocol.Protocol``."""
    dosing = protocol.dosing
    series = protocol.series
    sessions = _number(_get(series, "sessions"))
    spacing = _number(_get(series, "spacing_days"))
    # The loader names the arrays in the plural; the TOML tables are singular.
    premeds = _get(protocol, "premedications", "premedication") or ()
    notes = _get(protocol, "discharge_instructions", "discharge_instruction") or ()
    return ProtocolFacts(
        name=str(protocol.name),
        version=str(protocol.version),
        title=str(protocol.title),
        sha256=sha256,
        drug=_text(protocol.drug.form),
        rate_unit=_rate_unit(dosing),
        start_rate=_number(dosing.start_rate),
        max_rate=_number(dosing.max_rate),
        titration_step=_number(_get(dosing, "titration_step")),
        planned_duration_min=_number(_get(dosing, "planned_duration_min")),
        planned_sessions=int(sessions) if sessions is not None else None,
        spacing_days=int(spacing) if spacing is not None else None,
        premedications=tuple(_medicine(m) for m in premeds),
        discharge_instructions=tuple(str(getattr(n, "text", n)) for n in notes),
    )


def protocol_facts(pv: ProtocolVersion) -> ProtocolFacts:
    """The facts of a stored protocol version (parsed with the protocol core)."""
    from ketamine_clinic.clinical.protocol import load_protocol_text

    protocol = load_protocol_text(pv.toml_text, f"{pv.name} v{pv.version}")
    return facts_from_protocol(protocol, sha256=pv.sha256)
