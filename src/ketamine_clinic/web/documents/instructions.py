"""The discharge instruction sheet: standard content filled in for one session.

The content is ``reference/education/discharge_sheet.toml``; the session supplies the
patient, what was given and when the infusion ended (``selectors.session_summary``), the
no-driving clock time (``clinical.discharge.no_driving_until``), the site's phone, the
next session and the protocol version's own discharge instructions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml
from ketamine_clinic.web.documents.consent import DRUG_NAMES
from ketamine_clinic.web.documents.dates import patient_clock
from ketamine_clinic.web.documents.education import fill, placeholders
from ketamine_clinic.web.documents.markup import cited_keys, strip_citations
from ketamine_clinic.web.documents.protocol_facts import protocol_facts
from ketamine_clinic.web.documents.selectors import SessionSummary


@dataclass(frozen=True)
class SheetSection:
    heading: str
    bullets: tuple[str, ...]


@dataclass(frozen=True)
class Sheet:
    title: str
    summary: SessionSummary
    no_driving_heading: str
    no_driving_text: str
    instructions: tuple[str, ...]  # the protocol version's discharge instructions
    sections: tuple[SheetSection, ...]  # the clinic's defaults, when those cannot be read
    emergency: SheetSection  # emergency symptoms: the emergency number, on every sheet
    call: dict[str, str]
    emergency_number: str
    sources: tuple[str, ...]
    problems: tuple[str, ...]
    printed_at: datetime | None = None

    @property
    def drug_name(self) -> str:
        return DRUG_NAMES.get(self.summary.drug.lower(), self.summary.drug or "ketamine")

    @property
    def ketamine_total_text(self) -> str:
        """The total for the patient's sheet, to 0.1 mg (the exact value is in the chart)."""
        total = self.summary.ketamine_total_mg
        if total is None:
            return ""
        return f"{float(total):.1f}".removesuffix(".0") + " mg"


def _content() -> Mapping[str, Any]:
    return read_toml("education/discharge_sheet.toml")


def clock(at: datetime) -> str:
    """A time as people read it on a sheet, in the clinic's locale and time zone:
    'Tuesday, March 4, 2025 at 3:25 PM' (en-us; ``documents.dates``)."""
    return patient_clock(at)


def instruction_sheet(summary: SessionSummary) -> Sheet:
    content = _content()
    values = dict(placeholders())
    problems = list(summary.problems)
    if summary.no_driving is not None and summary.infusion_ended_at is not None:
        values["no_driving_until"] = clock(summary.no_driving.until)
        values["infusion_ended"] = clock(summary.infusion_ended_at)
        values["no_driving_hours"] = str(summary.no_driving.hours)
    else:
        values["no_driving_until"] = "(the infusion has not ended)"
        values["infusion_ended"] = "(not yet)"
        problems.append("the infusion has no stop entry: the end time and the no-driving "
                        "time are not known yet")
    keys: list[str] = []

    def plain(text: str) -> str:
        keys.extend(k for k in cited_keys(text) if k not in keys)
        return strip_citations(fill(text, values))

    no_driving = content["no_driving"]
    pv = summary.session.order.protocol_version
    try:
        facts = protocol_facts(pv)
        instructions = facts.discharge_instructions
        keys.extend(k for k in facts.discharge_sources if k not in keys)
    except (ImportError, UsageError, ValueError, KeyError, TypeError) as exc:
        # The sheet still prints, with the clinic's default instructions; the staff see why.
        instructions = ()
        problems.append(f"the discharge instructions of {pv} cannot be read ({exc}); "
                        "the clinic's default instructions are printed instead")
    emergency = SheetSection(
        heading=plain(content["emergency"]["heading"]),
        bullets=tuple(plain(b) for b in content["emergency"]["bullets"]))
    emergency_after = plain(content["emergency"].get("after", ""))
    sections: tuple[SheetSection, ...] = ()
    if not instructions:
        sections = tuple(
            SheetSection(heading=plain(s["heading"]),
                         bullets=tuple(plain(b) for b in s.get("bullets", ())))
            for s in content.get("section", ())
        )
    return Sheet(
        title=content["title"],
        summary=summary,
        no_driving_heading=plain(no_driving["heading"]),
        no_driving_text=plain(no_driving["text"]),
        instructions=tuple(instructions),
        sections=sections,
        emergency=emergency,
        call={**{k: str(v) for k, v in content["call"].items()},
              "emergency_after": emergency_after},
        emergency_number=str(content["emergency_number"]),
        sources=tuple(keys),
        problems=tuple(problems),
        printed_at=timezone.now(),
    )
