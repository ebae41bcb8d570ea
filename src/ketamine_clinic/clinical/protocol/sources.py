"""The reference data a protocol cites: source keys and their citations, the screening
condition vocabulary, the discharge scores, and what makes a source string acceptable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from ketamine_clinic.clinical.protocol.model import Condition, Reference
from ketamine_clinic.reference import read_toml

# --------------------------------------------------------------------------- reference data


@cache
def references() -> Mapping[str, Reference]:
    """Every source key with its citation (``reference/references.toml``), in file order."""
    raw = read_toml("references.toml")
    return {
        row["key"]: Reference(row["key"], row.get("citation", ""), tuple(row.get("urls", ())),
                              row.get("short", ""))
        for row in raw["source"]
    }


@cache
def condition_vocabulary() -> Mapping[str, Condition]:
    """The screening condition ids (``reference/conditions.toml``), in file order."""
    raw = read_toml("conditions.toml")
    return {
        row["id"]: Condition(row["id"], row["label"], row["question"], row["group"])
        for row in raw["condition"]
    }


@cache
def _discharge_scores() -> Mapping[str, int]:
    """Discharge score key → maximum total (sum of each item's best level)."""
    raw = read_toml("discharge_scores.toml")
    out = {}
    for key, score in raw["score"].items():
        out[key] = sum(max(lv["points"] for lv in item.get("levels", [{"points": 2}]))
                       for item in score["item"])
    return out


_KEY_RE = re.compile(r"(?<![\w-])(S\d+(?:-[A-Za-z]+)?|clinic-page)(?![\w-])")
_POLICY_PREFIX = "clinic policy (set by "


def source_keys(source: str) -> tuple[str, ...]:
    """The reference keys a source string cites, in order, without repeats.

    >>> source_keys("S2 (infusion 0.5-2 mg/kg/h), informed by S9 and S2")
    ('S2', 'S9')
    """
    return tuple(dict.fromkeys(_KEY_RE.findall(source)))


def source_problem(source: str) -> str | None:
    """Why ``source`` is not an acceptable source string, or ``None``."""
    text = source.strip()
    if not text:
        return "a source is required"
    unknown = [k for k in source_keys(text) if k not in references()]
    if unknown:
        return f"unknown reference key(s) {', '.join(unknown)} (see reference/references.toml)"
    if text.lower().startswith("clinic policy"):
        if not text.startswith(_POLICY_PREFIX):
            return "clinic policy must say who set it: 'clinic policy (set by ...)'"
        return None
    if not source_keys(text):
        return "name a reference key (e.g. 'S9') or 'clinic policy (set by ...)'"
    return None
