"""Sedation, dissociation and pain scales (``reference/scales.toml``).

Single-answer scales (MOAA/S, RASS, Ramsay, 0-10 NRS) are scored with :func:`score`;
multi-item scales (CADSS, CADSS-6) with :func:`score_items`. Every score carries the
scale's version and source, and the statements the fact sheet marks UNCONFIRMED (the
0-4 CADSS item scoring), so a stored score says what it was measured with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml


@dataclass(frozen=True, slots=True)
class ScaleLevel:
    value: int
    meaning: str


@dataclass(frozen=True, slots=True)
class Scale:
    """One scale as published: its allowed values (or items) and where it comes from."""

    key: str
    name: str
    short: str
    version: str
    kind: str  # sedation, dissociation or pain
    direction: str
    source: str
    unconfirmed: tuple[str, ...]
    notes: str
    levels: tuple[ScaleLevel, ...] = ()
    items: tuple[int, ...] = ()
    item_min: int = 0
    item_max: int = 0
    loinc: str = ""

    @property
    def is_multi_item(self) -> bool:
        return bool(self.items)

    @property
    def minimum(self) -> int:
        if self.is_multi_item:
            return self.item_min * len(self.items)
        return min(level.value for level in self.levels)

    @property
    def maximum(self) -> int:
        if self.is_multi_item:
            return self.item_max * len(self.items)
        return max(level.value for level in self.levels)

    def meaning(self, value: int) -> str:
        for level in self.levels:
            if level.value == value:
                return level.meaning
        raise UsageError(self.key, f"{value} is not a level of {self.short}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "short": self.short,
            "version": self.version,
            "kind": self.kind,
            "direction": self.direction,
            "source": self.source,
            "unconfirmed": list(self.unconfirmed),
            "notes": self.notes,
            "levels": [{"value": lv.value, "meaning": lv.meaning} for lv in self.levels],
            "items": list(self.items),
            "item_min": self.item_min,
            "item_max": self.item_max,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "loinc": self.loinc,
        }


# The dissociation scale charted at the bedside: the six-item CADSS short form, which agrees
# with the full 23-item scale in IV-ketamine patients [S37] (reference/scales.toml, [cadss6]).
BEDSIDE_DISSOCIATION_SCALE = "cadss6"


def scale_keys(kind: str) -> tuple[str, ...]:
    """The keys of the scales of one kind (``"sedation"``, ``"dissociation"``, ``"pain"``).

    >>> scale_keys("sedation")
    ('moaas', 'moaas_6', 'rass', 'ramsay')
    """
    return tuple(key for key, sc in scales().items() if sc.kind == kind)


@cache
def scales() -> dict[str, Scale]:
    """Every scale of ``reference/scales.toml``, by key (``"moaas"``, ``"cadss6"``...)."""
    out: dict[str, Scale] = {}
    for key, raw in read_toml("scales.toml").items():
        out[key] = Scale(
            key=key,
            name=raw["name"],
            short=raw["short"],
            version=raw["version"],
            kind=raw["kind"],
            direction=raw["direction"],
            source=raw["source"],
            unconfirmed=tuple(raw.get("unconfirmed", ())),
            notes=raw.get("notes", ""),
            levels=tuple(
                ScaleLevel(int(lv["value"]), lv["meaning"]) for lv in raw.get("level", ())
            ),
            items=tuple(int(i) for i in raw.get("items", ())),
            item_min=int(raw.get("item_min", 0)),
            item_max=int(raw.get("item_max", 0)),
            loinc=raw.get("loinc", ""),
        )
    return out


def get_scale(key: str) -> Scale:
    """The scale called ``key``, or :class:`UsageError` listing the known ones."""
    found = scales().get(key)
    if found is None:
        raise UsageError("scale", f"unknown scale {key!r} (known: {', '.join(sorted(scales()))})")
    return found


@dataclass(frozen=True, slots=True)
class ScaleScore:
    """A scored observation: the total (or the single answer), its meaning, and the
    item answers it came from."""

    scale: Scale
    value: int
    items: tuple[tuple[int, int], ...] = ()  # (item number, answer), multi-item scales only

    @property
    def meaning(self) -> str:
        return "" if self.scale.is_multi_item else self.scale.meaning(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale.key,
            "short": self.scale.short,
            "version": self.scale.version,
            "source": self.scale.source,
            "value": self.value,
            "meaning": self.meaning,
            "minimum": self.scale.minimum,
            "maximum": self.scale.maximum,
            "unconfirmed": list(self.scale.unconfirmed),
            "inputs": {"items": {str(n): v for n, v in self.items}} if self.items else {},
        }


def _integer(value: object, field: str) -> int:
    # Scale answers are whole numbers; 3.0 from a JSON client is accepted, 3.5 is not.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(field, f"{value!r} is not a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise UsageError(field, f"{value!r} is not a whole number")
    return int(value)


def score(key: str, value: object) -> ScaleScore:
    """Score a single-answer scale: ``value`` must be one of its levels."""
    sc = get_scale(key)
    if sc.is_multi_item:
        raise UsageError("scale", f"{sc.short} has items; use score_items")
    answer = _integer(value, key)
    sc.meaning(answer)  # refuses a value that is not a level
    return ScaleScore(sc, answer)


def score_items(key: str, answers: Mapping[int, object]) -> ScaleScore:
    """Score a multi-item scale: every item answered, each within the item range.

    Parameters
    ----------
    answers
        Item number (as numbered on the 23-item CADSS) → answer
        [``item_min``–``item_max``, 0–4 for CADSS, UNCONFIRMED in the fact sheet].
    """
    sc = get_scale(key)
    if not sc.is_multi_item:
        raise UsageError("scale", f"{sc.short} is a single-answer scale; use score")
    unknown = sorted(set(answers) - set(sc.items))
    if unknown:
        raise UsageError("items", f"{sc.short} has no item {unknown[0]}")
    missing = [n for n in sc.items if n not in answers]
    if missing:
        raise UsageError("items", f"{sc.short} item {missing[0]} is not answered")
    cleaned = []
    for n in sc.items:
        answer = _integer(answers[n], f"items.{n}")
        if not sc.item_min <= answer <= sc.item_max:
            raise UsageError(f"items.{n}", f"{answer} is outside {sc.item_min}–{sc.item_max}")
        cleaned.append((n, answer))
    return ScaleScore(sc, sum(a for _, a in cleaned), tuple(cleaned))


def cadss6_from_cadss(answers: Mapping[int, object]) -> ScaleScore:
    """The CADSS-6 score carried inside a full 23-item CADSS (its items 1, 2, 6, 7, 15, 22)."""
    full = score_items("cadss", answers)
    picked = get_scale(BEDSIDE_DISSOCIATION_SCALE).items
    return score_items(BEDSIDE_DISSOCIATION_SCALE, {n: a for n, a in full.items if n in picked})


def within_target(observed: ScaleScore, low: int, high: int) -> bool:
    """Is ``observed`` inside a protocol's target range [low, high] (inclusive)?

    The range is the protocol's (e.g. a target sedation level); both ends must be values
    the scale can take.
    """
    for name, bound in (("low", low), ("high", high)):
        if not observed.scale.minimum <= bound <= observed.scale.maximum:
            raise UsageError(
                f"target.{name}", f"{bound} is not on the {observed.scale.short} scale"
            )
    if low > high:
        raise UsageError("target", "low is above high")
    return low <= observed.value <= high
