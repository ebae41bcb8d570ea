"""A protocol as flat rows (key path, value, unit, source) and the diff of two versions by
key path, for the rendered page, ``protocols show`` and the review of a new version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ketamine_clinic.clinical.protocol.model import DiffRow, Protocol, Row

# --------------------------------------------------------------------------- rows and diffs

# Array-of-table entries are named by these keys, so that a diff matches "the glycopyrrolate
# premedication" rather than "premedication number 0".
_IDENTITY_KEYS = ("id", "vital", "drug")


def _identity(item: Mapping[str, Any], index: int) -> str:
    for key in _IDENTITY_KEYS:
        if isinstance(item.get(key), str):
            return str(item[key])
    if "quantity" in item and "kind" in item:
        return f"{item['quantity']}/{item['kind']}"
    return str(index)


def _scalar(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _flatten(data: Mapping[str, Any], path: str, inherited: str) -> Iterator[Row]:
    source = str(data.get("source", inherited))
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        if key in ("source", "note") and path:
            continue
        if isinstance(value, dict):
            if "value" in value or "values" in value:
                raw = value.get("value", value.get("values"))
                yield Row(here, _scalar(raw), str(value.get("unit", "")),
                          str(value.get("source", source)), str(value.get("note", "")))
            else:
                yield from _flatten(value, here, source)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                yield from _flatten(item, f"{here}[{_identity(item, i)}]", source)
        else:
            yield Row(here, _scalar(value), "", source if path else "")


def protocol_rows(protocol: Protocol) -> tuple[Row, ...]:
    """Every leaf of ``protocol`` as (key path, value, unit, source) rows, in file order."""
    return protocol.rows


def protocol_diff(old: Protocol, new: Protocol, *, include_unchanged: bool = False
                  ) -> tuple[DiffRow, ...]:
    """Key paths whose value, unit or source differ between two versions.

    Rows are in ``new``'s order, with paths only in ``old`` placed after them.
    """
    before = {row.path: row for row in old.rows}
    after = {row.path: row for row in new.rows}
    out = []
    for path, row in after.items():
        prior = before.get(path)
        if prior is None:
            out.append(DiffRow(path, "added", None, row))
        elif prior != row:
            out.append(DiffRow(path, "changed", prior, row))
        elif include_unchanged:
            out.append(DiffRow(path, "same", prior, row))
    out += [DiffRow(path, "removed", row, None) for path, row in before.items()
            if path not in after]
    return tuple(out)
