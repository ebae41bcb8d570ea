"""The drug dictionary and the ketamine interaction table (``reference/drugs.toml``,
``reference/interactions.toml``).

A medication name (generic or brand, any case, with or without a strength such as
``"gabapentin 300 mg"``) is looked up in the dictionary; its generic name and classes are
matched against the interaction table. A name found nowhere is reported by the caller,
never passed: see ``clinical/screening.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from ketamine_clinic.clinical.protocol import Severity, source_problem
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

__all__ = [
    "DrugEntry",
    "Interaction",
    "class_names",
    "drug_dictionary",
    "drugs_by_rxnorm",
    "interaction_table",
    "interactions_for",
    "lookup_drug",
    "normalise_drug_name",
]


@dataclass(frozen=True, slots=True)
class DrugEntry:
    generic: str
    classes: tuple[str, ...]
    aliases: tuple[str, ...]
    rxnorm: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interaction:
    """One row of the interaction table (fact sheet section 5)."""

    id: str
    title: str
    drugs: tuple[str, ...]
    classes: tuple[str, ...]
    effect: str
    action: str
    severity: Severity
    source: str
    members_source: str = ""
    except_drugs: tuple[str, ...] = ()  # members of a listed class the row does not cover

    def applies_to(self, drug: DrugEntry) -> bool:
        if drug.generic in self.except_drugs:
            return False
        return drug.generic in self.drugs or any(c in self.classes for c in drug.classes)


# A trailing strength or form ("300 mg", "0.1 mg/h patch", "er 50mg") is not part of the name.
_STRENGTH_RE = re.compile(r"\s+\d[\d.,]*\s*(mg|mcg|microgram|g|ml|%|units?)\b.*$")


def normalise_drug_name(name: str) -> str:
    """Lower case, single spaces, no trailing strength (``"Gabapentin  300 MG"`` → gabapentin)."""
    text = " ".join(name.strip().lower().split())
    return _STRENGTH_RE.sub("", text).strip()


def _read(name: str) -> Mapping[str, object]:
    return read_toml(name)


@cache
def drug_dictionary() -> Mapping[str, DrugEntry]:
    """Every drug by generic name (``reference/drugs.toml``)."""
    raw = _read("drugs.toml")
    out: dict[str, DrugEntry] = {}
    rows = raw["drug"]
    assert isinstance(rows, list)
    for i, row in enumerate(rows):
        entry = DrugEntry(row["generic"], tuple(row["classes"]), tuple(row.get("aliases", ())),
                          tuple(str(c) for c in row.get("rxnorm", ())))
        if entry.generic in out or entry.generic != normalise_drug_name(entry.generic):
            raise UsageError(f"drugs.toml:drug[{i}].generic",
                             f"{entry.generic!r} is repeated or not a normalised name")
        out[entry.generic] = entry
    return out


@cache
def drugs_by_rxnorm() -> Mapping[str, str]:
    """RxNorm code → generic name, for coded medication and allergy records."""
    out: dict[str, str] = {}
    for entry in drug_dictionary().values():
        for code in entry.rxnorm:
            if out.get(code, entry.generic) != entry.generic:
                raise UsageError("drugs.toml", f"RxNorm {code} names both {out[code]} and "
                                 f"{entry.generic}")
            out[code] = entry.generic
    return out


@cache
def class_names() -> Mapping[str, str]:
    """Normalised class name as people write it ("benzodiazepines") → class id.

    From the ``[[class]]`` tables of ``reference/drugs.toml``; every id must be the class
    of at least one drug, and no name may also be a drug's name.
    """
    raw = _read("drugs.toml")
    rows = raw.get("class", [])
    assert isinstance(rows, list)
    known = {c for d in drug_dictionary().values() for c in d.classes}
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        if row["id"] not in known:
            raise UsageError(f"drugs.toml:class[{i}].id", f"no drug has class {row['id']!r}")
        for name in row["names"]:
            key = normalise_drug_name(name)
            if key in _name_index() or out.get(key, row["id"]) != row["id"]:
                raise UsageError(f"drugs.toml:class[{i}].names", f"{name!r} is used twice")
            out[key] = row["id"]
    return out


@cache
def _name_index() -> Mapping[str, str]:
    index: dict[str, str] = {}
    for entry in drug_dictionary().values():
        for name in (entry.generic, *entry.aliases):
            key = normalise_drug_name(name)
            if index.get(key, entry.generic) != entry.generic:
                raise UsageError("drugs.toml", f"{name!r} names both {index[key]} and "
                                 f"{entry.generic}")
            index[key] = entry.generic
    return index


def lookup_drug(name: str) -> DrugEntry | None:
    """The dictionary entry for a generic or brand name, or ``None`` if unknown."""
    generic = _name_index().get(normalise_drug_name(name))
    return None if generic is None else drug_dictionary()[generic]


@cache
def interaction_table() -> tuple[Interaction, ...]:
    """Every interaction (``reference/interactions.toml``), checked against the dictionary."""
    raw = _read("interactions.toml")
    rows = raw["interaction"]
    assert isinstance(rows, list)
    known_classes = {c for d in drug_dictionary().values() for c in d.classes}
    out = []
    for i, row in enumerate(rows):
        item = Interaction(
            id=row["id"], title=row["title"], drugs=tuple(row.get("drugs", ())),
            classes=tuple(row.get("classes", ())), effect=row["effect"], action=row["action"],
            severity=Severity(row["severity"]), source=row["source"],
            members_source=row.get("members_source", ""),
            except_drugs=tuple(row.get("except_drugs", ())),
        )
        for generic in (*item.drugs, *item.except_drugs):
            if generic not in drug_dictionary():
                raise UsageError(f"interactions.toml:interaction[{i}].drugs",
                                 f"{generic!r} is not in drugs.toml")
        for cls in item.classes:
            if cls not in known_classes:
                raise UsageError(f"interactions.toml:interaction[{i}].classes",
                                 f"no drug in drugs.toml has class {cls!r}")
        for key in ("source", "members_source"):
            text = getattr(item, key)
            problem = source_problem(text) if text or key == "source" else None
            if problem:
                raise UsageError(f"interactions.toml:interaction[{i}].{key}", problem)
        if not (item.drugs or item.classes):
            raise UsageError(f"interactions.toml:interaction[{i}]", "names no drug or class")
        out.append(item)
    return tuple(out)


def interactions_for(drug: DrugEntry) -> tuple[Interaction, ...]:
    """The interactions that apply to ``drug``, in table order."""
    return tuple(item for item in interaction_table() if item.applies_to(drug))
