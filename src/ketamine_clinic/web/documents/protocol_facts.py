"""What the documents need from a protocol version, read through the protocol core.

``ProtocolVersion.protocol()`` gives the version parsed by ``clinical.protocol`` (the one
place that knows the protocol format), once per text. This module picks out what a
patient document shows: the drug, the rates, the duration and number of infusions, the
premedication and the protocol's own discharge instructions.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ketamine_clinic.clinical.protocol import (
    Medication,
    Protocol,
    Quantity,
    source_keys,
)
from ketamine_clinic.clinical.scales import get_scale
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
    drug: str
    rate_unit: str
    start_rate: Fraction
    max_rate: Fraction
    titration_step: Fraction | None
    planned_duration_min: Fraction
    planned_sessions: int
    spacing_days: int
    premedications: tuple[Medicine, ...] = ()
    discharge_instructions: tuple[str, ...] = ()
    discharge_sources: tuple[str, ...] = ()  # reference keys the instructions cite
    # The rate is titrated toward a dissociation score ([titration_target] on a
    # dissociation scale): what the consent and education pages say the aim is.
    dissociation_target: bool = False


def _value(q: Quantity | None) -> Fraction | None:
    return None if q is None else q.value


def _medicine(m: Medication) -> Medicine:
    return Medicine(drug=m.drug, dose_text=f"{float(m.dose.value):g} {m.dose.unit}",
                    route=m.route, when=m.timing)


def facts_from_protocol(protocol: Protocol, *, sha256: str) -> ProtocolFacts:
    """Pick the documents' facts out of a loaded protocol."""
    dosing = protocol.dosing
    notes = protocol.discharge_instructions
    return ProtocolFacts(
        name=protocol.name,
        version=str(protocol.version),
        title=protocol.title,
        sha256=sha256,
        drug=protocol.drug.form.value,
        rate_unit=dosing.rate_unit,
        start_rate=dosing.start_rate.value,
        max_rate=dosing.max_rate.value,
        titration_step=_value(dosing.titration_step),
        planned_duration_min=dosing.planned_duration_min.value,
        planned_sessions=int(protocol.series.sessions.value),
        spacing_days=int(protocol.series.spacing_days.value),
        premedications=tuple(_medicine(m) for m in protocol.premedications),
        discharge_instructions=tuple(n.text for n in notes),
        discharge_sources=tuple(dict.fromkeys(k for n in notes for k in source_keys(n.source))),
        dissociation_target=_aims_at_dissociation(protocol),
    )


def _aims_at_dissociation(protocol: Protocol) -> bool:
    target = protocol.titration_target
    if target is None:
        return False

    return get_scale(target.scale).kind == "dissociation"


def protocol_facts(pv: ProtocolVersion) -> ProtocolFacts:
    """The facts of a stored protocol version (parsed with the protocol core)."""
    return facts_from_protocol(pv.protocol(), sha256=pv.sha256)
