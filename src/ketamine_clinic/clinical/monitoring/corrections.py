"""Timeline corrections: an append-only timeline folded into its effective record (a
correction replaces the entry it points at; an entry entered in error drops out).
"""


from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- corrections

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class TimelineEntry(Generic[P]):
    """One append-only entry of the session timeline.

    A correction is an entry with ``corrects`` set to the id of the entry it replaces,
    the same ``kind`` and a ``reason``. A retraction ("entered in error") has
    ``entered_in_error=True``, ``corrects`` set and no payload.
    """

    entry_id: str
    kind: str
    at: datetime
    payload: P | None
    corrects: str | None = None
    reason: str = ""
    entered_in_error: bool = False


class EntryStatus(enum.Enum):
    EFFECTIVE = "effective"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered_in_error"
    RETRACTION = "retraction"  # the marker entry that retracted another


@dataclass(frozen=True, slots=True)
class FoldedEntry(Generic[P]):
    entry: TimelineEntry[P]
    status: EntryStatus
    replaced_by: str | None = None  # the correction or retraction that replaced it
    replaces: tuple[str, ...] = field(default=())  # ids this entry replaces, oldest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry.entry_id,
            "kind": self.entry.kind,
            "at": self.entry.at.isoformat(),
            "status": self.status.value,
            "replaced_by": self.replaced_by,
            "replaces": list(self.replaces),
            "reason": self.entry.reason,
        }


def fold_corrections(entries: Sequence[TimelineEntry[P]]) -> tuple[FoldedEntry[P], ...]:
    """Mark every entry of an append-only timeline effective, superseded, entered in
    error, or retraction marker; in record order (the order they were appended).

    A correction or retraction must point at an earlier entry of the same kind that is
    still effective (to change a corrected value, correct the correction), and must give
    a reason. Nothing is dropped: the originals stay, marked.
    """
    state: dict[str, FoldedEntry[P]] = {}
    order: list[str] = []
    for i, e in enumerate(entries):
        where = f"entries[{i}]"
        if e.entry_id in state:
            raise UsageError(where, f"duplicate entry id {e.entry_id!r}")
        if e.corrects is None:
            if e.entered_in_error:
                raise UsageError(where, "an entered-in-error marker must name the entry")
            if e.payload is None:
                raise UsageError(where, "an entry needs a payload")
            state[e.entry_id] = FoldedEntry(e, EntryStatus.EFFECTIVE)
            order.append(e.entry_id)
            continue
        target = state.get(e.corrects)
        if target is None:
            raise UsageError(where, f"corrects unknown or later entry {e.corrects!r}")
        if not e.reason.strip():
            raise UsageError(where, "a correction needs a reason")
        if target.status is not EntryStatus.EFFECTIVE:
            hint = f" (correct {target.replaced_by!r} instead)" if target.replaced_by else ""
            raise UsageError(where, f"entry {e.corrects!r} is {target.status.value}{hint}")
        if target.entry.kind != e.kind:
            raise UsageError(where, f"a {e.kind} entry cannot correct a {target.entry.kind} entry")
        if e.entered_in_error:
            state[e.corrects] = FoldedEntry(
                target.entry, EntryStatus.ENTERED_IN_ERROR, e.entry_id, target.replaces
            )
            state[e.entry_id] = FoldedEntry(e, EntryStatus.RETRACTION, None, (e.corrects,))
        else:
            if e.payload is None:
                raise UsageError(where, "a correction needs the corrected payload")
            state[e.corrects] = FoldedEntry(
                target.entry, EntryStatus.SUPERSEDED, e.entry_id, target.replaces
            )
            state[e.entry_id] = FoldedEntry(
                e, EntryStatus.EFFECTIVE, None, (*target.replaces, e.corrects)
            )
        order.append(e.entry_id)
    return tuple(state[i] for i in order)


def effective_entries(entries: Sequence[TimelineEntry[P]]) -> tuple[TimelineEntry[P], ...]:
    """The derived view: only effective entries, in clinical time order (``at``), ties in
    record order."""
    folded = fold_corrections(entries)
    alive = [f.entry for f in folded if f.status is EntryStatus.EFFECTIVE]
    return tuple(sorted(alive, key=lambda e: e.at))  # sorted() is stable


def effective_payloads(entries: Sequence[TimelineEntry[P]], kind: str) -> tuple[P, ...]:
    """Payloads of the effective entries of one ``kind``, in time order."""
    out: list[P] = []
    for e in effective_entries(entries):
        if e.kind == kind and e.payload is not None:
            out.append(e.payload)
    return tuple(out)
