"""Is the patient allergic to this drug? Allergy records matched through the drug dictionary.

Pure: the records come in as :class:`AllergyRecord` (substance text and/or RxNorm code,
reaction, status), the drug as a name; the dictionary is ``reference/drugs.toml``.

A record matches a drug when

* its code is an RxNorm code of that drug (``rxnorm`` in ``drugs.toml``), or
* its substance text names the drug: the generic or a brand name, whole or as words inside
  the text ("Ketalar", "ketamine hydrochloride", "reaction to ketamine in 2019"), or
* its substance text names a class the drug belongs to, through the class names of
  ``drugs.toml`` ("benzodiazepines" matches midazolam).

An allergy to one drug of a class is never widened to the whole class (a memantine allergy
says nothing about ketamine): only a class named in the record covers its members.

Records with a status that says the allergy does not hold (``inactive``, ``resolved``,
``refuted``, ``entered-in-error``, as FHIR AllergyIntolerance uses them) never match;
``active`` and ``unconfirmed`` (suspected) do: a suspected allergy is treated as one.

Used by screening (rules of kind ``allergy`` and ``protocol_drugs``, ``docs/screening.md``)
and, at the bedside, before any drug is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ketamine_clinic.clinical.drugs import (
    DrugEntry,
    class_names,
    drug_dictionary,
    drugs_by_rxnorm,
    lookup_drug,
    normalise_drug_name,
)
from ketamine_clinic.errors import UsageError

__all__ = [
    "ALLERGY_STATUSES",
    "AllergyMatch",
    "AllergyRecord",
    "allergy_from_dict",
    "allergy_matches",
    "is_allergic",
    "recognised_substances",
    "unrecognised_allergies",
]

# FHIR AllergyIntolerance clinicalStatus (active, inactive, resolved) and
# verificationStatus (unconfirmed, refuted, entered-in-error) folded into one field.
ALLERGY_STATUSES = ("active", "unconfirmed", "inactive", "resolved", "refuted",
                    "entered-in-error")
_HOLDS = frozenset({"active", "unconfirmed"})


@dataclass(frozen=True, slots=True, order=True)
class AllergyRecord:
    """One recorded allergy or intolerance.

    Attributes
    ----------
    substance
        The substance as recorded (free text, any case); may be empty when ``code`` is set.
    code
        An RxNorm code of the substance (digits), or ``""``.
    reaction
        What happened ("rash", "anaphylaxis"), as recorded; ``""`` if not recorded.
    status
        One of :data:`ALLERGY_STATUSES`; only ``active`` and ``unconfirmed`` count.
    """

    substance: str
    code: str = ""
    reaction: str = ""
    status: str = "active"

    def __post_init__(self) -> None:
        if self.status not in ALLERGY_STATUSES:
            raise UsageError("allergies.status", f"must be one of {', '.join(ALLERGY_STATUSES)}, "
                             f"got {self.status!r}")
        if not (self.substance.strip() or self.code.strip()):
            raise UsageError("allergies.substance", "a substance or a code is required")

    @property
    def holds(self) -> bool:
        """Whether the record says the patient is (or may be) allergic now."""
        return self.status in _HOLDS

    @property
    def label(self) -> str:
        """How the record reads in a message: the substance, else the code."""
        return self.substance.strip() or f"RxNorm {self.code}"

    def to_dict(self) -> dict[str, Any]:
        return {"substance": self.substance, "code": self.code, "reaction": self.reaction,
                "status": self.status}


def allergy_from_dict(data: Any, *, field: str = "allergies") -> AllergyRecord:
    """Validate one allergy of a facts document; :class:`UsageError` names the field."""
    if not isinstance(data, Mapping):
        raise UsageError(field, "must be an object with substance, code, reaction, status")
    extra = sorted(set(data) - {"substance", "code", "reaction", "status"})
    if extra:
        raise UsageError(f"{field}.{extra[0]}", "unknown key (known: substance, code, "
                         "reaction, status)")
    values = {}
    for key, default in (("substance", ""), ("code", ""), ("reaction", ""),
                         ("status", "active")):
        value = data.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, str):
            raise UsageError(f"{field}.{key}", f"must be text, got {value!r}")
        values[key] = " ".join(value.split())
    if values["code"] and not values["code"].isdigit():
        raise UsageError(f"{field}.code", f"must be an RxNorm code (digits), got "
                         f"{values['code']!r}")
    if values["status"] not in ALLERGY_STATUSES:
        raise UsageError(f"{field}.status", f"must be one of {', '.join(ALLERGY_STATUSES)}, "
                         f"got {values['status']!r}")
    if not (values["substance"] or values["code"]):
        raise UsageError(f"{field}.substance", "a substance or a code is required")
    return AllergyRecord(**values)


@dataclass(frozen=True, slots=True)
class AllergyMatch:
    """Why a record matches a drug: ``basis`` is ``code``, ``drug`` or ``class``."""

    record: AllergyRecord
    drug: str  # the generic name of the drug asked about (or the name as given)
    basis: str
    via: str  # the generic, class id or code that matched

    @property
    def message(self) -> str:
        """A sentence for a clinician: what is recorded and why it applies."""
        reaction = f" (reaction: {self.record.reaction})" if self.record.reaction else ""
        status = " It is recorded as suspected, not confirmed." \
            if self.record.status == "unconfirmed" else ""
        if self.basis == "class":
            why = f"{self.drug} is one of the {self.via.replace('_', ' ')} drugs"
        elif self.basis == "code":
            why = f"RxNorm code {self.via} is {self.drug}"
        else:
            why = f"that is {self.drug}"
        return f"Allergy recorded to {self.record.label}{reaction}: {why}.{status}"


@cache
def _word_patterns() -> tuple[tuple[re.Pattern[str], str, str], ...]:
    """(pattern, kind, target) for every drug name and class name, longest first."""
    names: list[tuple[str, str, str]] = []
    for entry in drug_dictionary().values():
        for name in (entry.generic, *entry.aliases):
            names.append((normalise_drug_name(name), "drug", entry.generic))
    for name, class_id in class_names().items():
        names.append((name, "class", class_id))
    names.sort(key=lambda n: -len(n[0]))
    return tuple((re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])"), kind, target)
                 for n, kind, target in names)


def recognised_substances(record: AllergyRecord) -> tuple[tuple[str, str], ...]:
    """What the record names, as (``drug``/``class``/``code``, generic or class id) pairs."""
    found: list[tuple[str, str]] = []
    if record.code:
        generic = drugs_by_rxnorm().get(record.code)
        if generic is not None:
            found.append(("code", generic))
    text = normalise_drug_name(record.substance)
    if text:
        entry = lookup_drug(text)
        if entry is not None:
            found.append(("drug", entry.generic))
        elif text in class_names():
            found.append(("class", class_names()[text]))
        else:
            rest = text
            for pattern, kind, target in _word_patterns():
                if pattern.search(rest):
                    found.append((kind, target))
                    rest = pattern.sub(" ", rest)  # "ketamine hcl" is one name, not two
    return tuple(dict.fromkeys(found))


def allergy_matches(allergies: Iterable[AllergyRecord], drug: str) -> tuple[AllergyMatch, ...]:
    """Every record that makes the patient allergic to ``drug``, in record order.

    Parameters
    ----------
    allergies
        The patient's allergy records (any status; only ``active`` and ``unconfirmed``
        count).
    drug
        A generic or brand name (``"Versed"``, ``"midazolam 2 mg"``). A name the
        dictionary does not know is matched as written, whole word, against the records.
    """
    entry: DrugEntry | None = lookup_drug(drug)
    out: list[AllergyMatch] = []
    for record in allergies:
        if not record.holds:
            continue
        if entry is None:
            name = normalise_drug_name(drug)
            if name and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])",
                                  normalise_drug_name(record.substance)):
                out.append(AllergyMatch(record, name, "drug", name))
            continue
        for kind, target in recognised_substances(record):
            if kind in ("drug", "code") and target == entry.generic:
                via = record.code if kind == "code" else target
                out.append(AllergyMatch(record, entry.generic, kind, via))
                break
            if kind == "class" and target in entry.classes:
                out.append(AllergyMatch(record, entry.generic, "class", target))
                break
    return tuple(out)


def is_allergic(allergies: Iterable[AllergyRecord], drug: str) -> bool:
    """``True`` when any record that holds matches ``drug`` (see :func:`allergy_matches`)."""
    return bool(allergy_matches(allergies, drug))


def unrecognised_allergies(allergies: Iterable[AllergyRecord]) -> tuple[AllergyRecord, ...]:
    """Records that hold and name nothing the dictionary knows (latex, penicillin, a typo):
    they cannot be checked against drugs automatically, so a person must read them."""
    return tuple(r for r in allergies if r.holds and not recognised_substances(r))
