"""A protocol version laid out for reading: the core's flat rows grouped into sections.

The page is built from :attr:`Protocol.rows` (every leaf of the file, with its unit and
source), so every number the file holds is shown with its source, including keys a later
format adds. Arrays of tables (limits, alarms, screening rules...) become tables.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ketamine_clinic.clinical.protocol import DiffRow, Protocol, Row

HEADER_KEYS = ("format", "name", "version", "title", "status", "summary")

SECTION_TITLES = {
    "drug": "Drug and bag",
    "premedication": "Premedication",
    "rescue": "Rescue medication",
    "dosing": "Dosing",
    "series": "Series",
    "limits": "Limits (hard limits block; a soft limit needs a documented override)",
    "monitoring": "Monitoring and alarms",
    "sedation": "Sedation",
    "titration_target": "Titration target",
    "recovery": "Recovery and discharge score",
    "screening": "Eligibility screening",
    "discharge_instruction": "Discharge instructions",
    "caveat": "Caveats: where this protocol and the sources differ",
}

_UNIT_SUFFIX = re.compile(r"_(mg_per_ml|mg_per_kg_per_h|mg_per_kg|mg_per_h|min|days|d|h|mg|"
                          r"kg|years|mmhg|per_min|percent)$")


def label(key: str) -> str:
    """``"min_step_interval_min"`` → ``"Min step interval"`` (the unit is shown with the value)."""
    text = _UNIT_SUFFIX.sub("", key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Field:
    key: str
    path: str
    value: str
    unit: str
    source: str
    note: str

    @property
    def label(self) -> str:
        return label(self.key)


@dataclass
class Entry:
    identity: str
    source: str
    cells: dict[str, Field]


@dataclass
class Table:
    key: str
    columns: list[str]
    entries: list[Entry]

    @property
    def title(self) -> str:
        if "." not in self.key:
            return ""
        title = label(self.key.rsplit(".", 1)[-1])
        return title if title.endswith("s") else f"{title}s"

    @property
    def wide(self) -> bool:
        """Too many columns for a table: shown as one block per entry."""
        return len(self.columns) > 5

    @property
    def column_labels(self) -> list[tuple[str, str]]:
        return [(c, label(c)) for c in self.columns]


@dataclass
class Section:
    key: str
    fields: list[Field] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return SECTION_TITLES.get(self.key, label(self.key))


def _field(key: str, row: Row) -> Field:
    return Field(key, row.path, format_value(row.value), row.unit, row.source, row.note)


_ARRAY = re.compile(r"^(?P<array>[^\[]+)\[(?P<identity>[^\]]*)\]\.(?P<leaf>.+)$")


def sections(protocol: Protocol) -> list[Section]:
    """The rows of ``protocol`` (all but the header keys) grouped for display, in file order."""
    out: dict[str, Section] = {}
    entries: dict[tuple[str, str, str], tuple[Entry, list[Row]]] = {}
    for row in protocol.rows:
        if row.path in HEADER_KEYS:
            continue
        head = re.split(r"[.\[]", row.path, maxsplit=1)[0]
        section = out.setdefault(head, Section(head))
        match = _ARRAY.match(row.path)
        if match is None:
            section.fields.append(_field(row.path[len(head) + 1:] or head, row))
            continue
        array, identity, leaf = match["array"], match["identity"], match["leaf"]
        table = section.tables.setdefault(array, Table(array, [], []))
        if leaf not in table.columns:
            table.columns.append(leaf)
        key = (head, array, identity)
        if key not in entries:
            entries[key] = (Entry(identity, "", {}), [])
            table.entries.append(entries[key][0])
        entry, rows = entries[key]
        entry.cells[leaf] = _field(leaf, row)
        rows.append(row)
    for entry, rows in entries.values():
        # The source most of the entry's values share goes in the entry's source column;
        # a value with a source of its own (a rule's age threshold) shows it in its cell.
        sources = Counter(r.source for r in rows if r.source)
        entry.source = sources.most_common(1)[0][0] if sources else ""
        for cell in entry.cells.values():
            if cell.source == entry.source:
                cell.source = ""
    for section in out.values():
        for table in section.tables.values():
            cols = table.columns
            if "lower" in cols and "upper" in cols and cols.index("upper") < cols.index("lower"):
                cols.remove("lower")
                cols.insert(cols.index("upper"), "lower")
    return list(out.values())


@dataclass
class DiffLine:
    path: str
    change: str
    old: Field | None
    new: Field | None


def diff_lines(rows: tuple[DiffRow, ...]) -> list[DiffLine]:
    return [DiffLine(r.path, r.change,
                     None if r.old is None else _field(r.path, r.old),
                     None if r.new is None else _field(r.path, r.new)) for r in rows]
