"""The pre-visit checklist (``reference/previsit.toml``): the one place that reads it.

The questions the desk asks, the sentences the reminders carry, each with its source; the
fasting hours are filled in from the file's own ``[fasting]`` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ketamine_clinic.reference import read_toml


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    question: str
    reminder: str
    source: str


@dataclass(frozen=True)
class Checklist:
    version: int
    items: tuple[ChecklistItem, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.items)


@cache
def checklist() -> Checklist:
    data = read_toml("previsit.toml")
    values = {k: _number(v["value"]) for k, v in data.get("fasting", {}).items()}
    items = tuple(ChecklistItem(key=i["key"], question=i["question"].format(**values),
                                reminder=i["reminder"].format(**values), source=i["source"])
                  for i in data["item"])
    return Checklist(version=int(data["version"]), items=items)


def _number(value: float) -> str:
    return f"{value:g}"
