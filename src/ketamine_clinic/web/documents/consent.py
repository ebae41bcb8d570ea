"""The consent document of a protocol version: generated text, and its sha256.

The text is built from ``reference/education/consent.toml`` (what the treatment is, risks
with their sources, after-care, rights) and the protocol version's own plan (drug, rates,
duration, number of infusions, premedication). The same protocol version and content file
always give the same text, byte for byte, so the hash identifies what the patient saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.reference import read_text, read_toml
from ketamine_clinic.web.documents.education import fill, placeholders
from ketamine_clinic.web.documents.protocol_facts import ProtocolFacts, protocol_facts
from ketamine_clinic.web.protocols.models import ProtocolVersion

DRUG_NAMES = {
    "racemic_ketamine": "ketamine (racemic ketamine)",
    "racemic": "ketamine (racemic ketamine)",
    "ketamine": "ketamine",
    "esketamine": "esketamine (S-ketamine)",
    "s-ketamine": "esketamine (S-ketamine)",
}


@dataclass(frozen=True)
class GeneratedConsent:
    title: str
    text: str
    sha256: str
    template_sha256: str
    protocol_version_id: int


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def _template() -> tuple[Mapping[str, Any], str]:
    return (read_toml("education/consent.toml"),
            sha256_text(read_text("education/consent.toml")))


def _num(value: Fraction) -> str:
    return f"{float(value):g}"


def _minutes(value: Fraction) -> str:
    total = float(value)
    hours, minutes = divmod(round(total), 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{minutes} minutes"


def aim_line(facts: ProtocolFacts) -> str:
    """What the infusion aims for under this protocol, from its data (one truth per
    protocol: the consent and the education pages say the same)."""
    aims = _template()[0]["aim"]
    return str(aims["dissociation"] if facts.dissociation_target else aims["pain_relief"])


def plan_lines(facts: ProtocolFacts) -> list[str]:
    """The protocol's plan as plain-language list items."""
    unit = facts.rate_unit
    drug = DRUG_NAMES.get(facts.drug.lower(), facts.drug)
    per_kg = " for each kilogram of your body weight" if unit == "mg/kg/h" else ""
    rate = f"Starting rate: {_num(facts.start_rate)} {unit}{per_kg}."
    if facts.max_rate != facts.start_rate:
        step = (f" in steps of {_num(facts.titration_step)} {unit}"
                if facts.titration_step is not None else "")
        rate += f" The rate may be raised{step}, never above {_num(facts.max_rate)} {unit}."
    if facts.spacing_days == 1:
        spacing = ", on consecutive days"
    else:
        spacing = f", {facts.spacing_days} days apart"
    lines = [
        f"Medicine: {drug}, given into a vein through a pump-controlled drip.",
        rate,
        f"Each infusion lasts about {_minutes(facts.planned_duration_min)}.",
        f"Number of infusions planned in this series: {facts.planned_sessions}{spacing}.",
    ]
    lines.append(aim_line(facts))
    if facts.premedications:
        meds = "; ".join(f"{m.drug} {m.dose_text} {m.route}"
                         + (f" ({m.when})" if m.when else "") for m in facts.premedications)
        lines.append(f"Medicines given before the infusion: {meds}.")
        effects = _template()[0].get("premedication_effects", {})
        for m in facts.premedications:
            if m.drug in effects:
                lines.append(f"Possible side effects of {m.drug}: {effects[m.drug]}.")
    return lines


def consent_from_facts(facts: ProtocolFacts, *, protocol_version_id: int) -> GeneratedConsent:
    template, template_sha = _template()
    values = placeholders()
    title = fill(template["title"], values)
    out = [
        f"# {title}",
        "",
        values["clinic_name"],
        "",
        # The protocol's sha256 stays in the record (ConsentDocument.protocol_version), not
        # in the text the patient reads.
        f"Treatment protocol: {facts.title} (version {facts.version}).",
    ]
    for section in template.get("section", ()):
        out += ["", f"# {fill(section['heading'], values)}"]
        for para in section.get("paragraphs", ()):
            out += ["", fill(para, values)]
        bullets = [fill(b, values) for b in section.get("bullets", ())]
        if section.get("plan"):
            bullets = plan_lines(facts) + bullets
        if bullets:
            out.append("")
            out += [f"- {b}" for b in bullets]
    text = "\n".join(out) + "\n"
    return GeneratedConsent(title, text, sha256_text(text), template_sha, protocol_version_id)


def consent_for(pv: ProtocolVersion) -> GeneratedConsent:
    """The consent document a patient signs today for this protocol version."""
    return consent_from_facts(protocol_facts(pv), protocol_version_id=pv.pk)
