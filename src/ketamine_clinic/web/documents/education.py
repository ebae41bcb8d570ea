"""Patient education content: pages and sources, read from packaged data files.

Pages live in ``reference/education/*.toml`` (one file per page; ``consent.toml`` and
``discharge_sheet.toml`` there are not pages). Sources come from
``reference/references.toml`` when the protocols area provides it, completed by
``reference/education_sources.toml`` (section 8 of the clinical fact sheet) for any key
it lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from django.conf import settings

from ketamine_clinic.clinical.discharge import no_driving_until
from ketamine_clinic.reference import read_toml
from ketamine_clinic.web.documents.markup import SPECIAL_KEYS, cited_keys

NOT_PAGES = frozenset({"consent.toml", "discharge_sheet.toml", "locale.toml"})

SPECIAL_SOURCES = {
    "clinic-policy": (
        "Clinic policy: a choice this clinic has made (for example whom it treats, or advice "
        "it gives after every infusion). It is not a finding of the research; the medical "
        "director sets and reviews it."
    ),
    "evidence-review": (
        "The clinic's review of the sources: a statement about what the review of published "
        "guidance and studies did, or did not, find (clinical fact sheet, sections 0 and 7)."
    ),
}


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]
    bullets: tuple[str, ...]
    protocol_aims: bool = False  # list each current protocol's aim here (from its data)


@dataclass(frozen=True)
class Page:
    slug: str
    order: int
    title: str
    lead: str
    sections: tuple[Section, ...]
    review_status: str
    review_basis: str

    def texts(self) -> list[str]:
        """Every piece of text on the page, for citation checks and search."""
        out = [self.title, self.lead]
        for s in self.sections:
            out += [s.heading, *s.paragraphs, *s.bullets]
        return out

    def cited(self) -> list[str]:
        keys: list[str] = []
        for text in self.texts():
            keys += [k for k in cited_keys(text) if k not in keys]
        return keys


def _reference_dir() -> Any:
    return resources.files("ketamine_clinic.reference")


def placeholders() -> dict[str, str]:
    """Values the content may use in braces, each from its one source of truth."""
    # The hours are a property of the advice, not of the moment; any aware time gives them.
    hours = no_driving_until(datetime(2000, 1, 1, tzinfo=UTC)).hours
    return {"no_driving_hours": str(hours), "clinic_name": settings.CLINIC_NAME,
            "emergency_number": emergency_number()}


@cache
def emergency_number() -> str:
    """The emergency telephone number patients are sent to (clinic configuration in
    ``reference/education/discharge_sheet.toml``)."""
    return str(read_toml("education/discharge_sheet.toml")["emergency_number"])


def fill(text: str, values: dict[str, str] | None = None) -> str:
    """Replace ``{name}`` placeholders; unknown names are an error in the content file."""
    return text.format_map(values if values is not None else placeholders())


def _sources_from(data: Mapping[str, Any]) -> dict[str, Source]:
    rows: list[dict[str, Any]] = []
    for name in ("source", "sources", "reference", "references"):
        value = data.get(name)
        if isinstance(value, list):
            rows += value
        elif isinstance(value, dict):
            rows += [{"key": k, **v} for k, v in value.items() if isinstance(v, dict)]
    out = {}
    for row in rows:
        key = str(row.get("key", "")).strip("[] ")
        if not key:
            continue
        citation = row.get("citation") or row.get("title") or row.get("text") or ""
        urls = row.get("urls") or ([row["url"]] if row.get("url") else [])
        out[key] = Source(key, str(citation), tuple(str(u) for u in urls))
    return out


@cache
def sources() -> dict[str, Source]:
    """Every source key with its citation and links, in the fact sheet's order."""
    ours = _sources_from(read_toml("education_sources.toml"))
    if (_reference_dir() / "references.toml").is_file():
        shared = _sources_from(read_toml("references.toml"))
        return {k: shared.get(k, v) for k, v in ours.items()} | {
            k: v for k, v in shared.items() if k not in ours}
    return ours


def _page(data: Mapping[str, Any], values: dict[str, str]) -> Page:
    review = data.get("review", {})
    return Page(
        slug=data["slug"],
        order=int(data["order"]),
        title=fill(data["title"], values),
        lead=fill(data.get("lead", ""), values),
        sections=tuple(
            Section(
                heading=fill(s["heading"], values),
                paragraphs=tuple(fill(p, values) for p in s.get("paragraphs", ())),
                bullets=tuple(fill(b, values) for b in s.get("bullets", ())),
                protocol_aims=bool(s.get("protocol_aims", False)),
            )
            for s in data.get("section", ())
        ),
        review_status=review.get("status", ""),
        review_basis=review.get("basis", ""),
    )


@cache
def _pages_cached(values_key: tuple[tuple[str, str], ...]) -> tuple[Page, ...]:
    values = dict(values_key)
    folder = _reference_dir() / "education"
    found = [
        _page(read_toml(f"education/{f.name}"), values)
        for f in folder.iterdir()
        if f.name.endswith(".toml") and f.name not in NOT_PAGES
    ]
    return tuple(sorted(found, key=lambda p: (p.order, p.slug)))


def pages() -> tuple[Page, ...]:
    """Every education page, in reading order."""
    return _pages_cached(tuple(sorted(placeholders().items())))


def page(slug: str) -> Page | None:
    return next((p for p in pages() if p.slug == slug), None)


def citing_pages() -> dict[str, list[Page]]:
    """For each source key, the pages that cite it (for the sources page)."""
    out: dict[str, list[Page]] = {}
    for p in pages():
        for key in p.cited():
            out.setdefault(key, []).append(p)
    return out


def unknown_keys() -> dict[str, list[str]]:
    """Keys cited by a page that are neither a source nor a special key (should be none)."""
    known = set(sources()) | set(SPECIAL_KEYS)
    return {p.slug: bad for p in pages() if (bad := [k for k in p.cited() if k not in known])}
