"""The session's record folded one appended entry at a time (``bedside.view.record_more``,
what a write folds onto the record kept from the write before) comes to exactly what
folding the whole timeline comes to (``record_of``), and so does the view derived from
it, over random timelines with corrections, retractions, back-dated entries, pauses and
rate changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical.bedside.model import Entry
from ketamine_clinic.clinical.bedside.view import evolve, record_more, record_of
from ketamine_clinic.errors import UsageError
from tests.clinical.bedside_world import VITALS, world

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# Checked in, assessed, premedicated, infusing: the path every timeline below starts on.
OPENING = [("check_in", {}), ("vitals", VITALS), ("pre_assessment", {}),
           ("premedication", {"drug": "glycopyrrolate"}), ("infusion_start",
                                                              {"rate_mg_per_h": "60"})]

step = st.one_of(
    st.tuples(st.just("vitals"), st.integers(50, 150), st.integers(-3, 0)),
    st.tuples(st.just("pain"), st.integers(0, 10), st.integers(-3, 0)),
    st.tuples(st.just("rate_change"), st.sampled_from(["30", "45", "60", "80"]), st.just(0)),
    st.tuples(st.just("pause_resume"), st.just(0), st.just(0)),
    st.tuples(st.just("correct"), st.integers(0, 10_000), st.integers(50, 150)),
    st.tuples(st.just("retract"), st.integers(0, 10_000), st.just(0)),
)


def _timeline(steps: list[tuple[str, Any, int]]) -> list[Entry]:
    """Entries in record order (ids rising); a correction or retraction points at an entry
    still effective of a kind that may be corrected."""
    out: list[Entry] = []
    # Effective vitals and pain scores, correctable (a rate change corrected or charted late
    # could fall into a pause, which the infusion's own check refuses).
    alive: list[Entry] = []
    minute, paused = 0.0, False

    def add(kind: str, payload: dict[str, Any], back: int = 0, corrects: int | None = None,
            reason: str = "") -> Entry:
        e = Entry(id=len(out) + 1, kind=kind, at=T0 + timedelta(minutes=minute + back),
                  payload=payload, corrects=corrects, reason=reason)
        out.append(e)
        return e

    for kind, payload in OPENING:
        minute += 5
        add(kind, payload)
    for kind, value, extra in steps:
        minute += 1
        if kind == "pause_resume":
            add("resume" if paused else "pause", {})
            paused = not paused
        elif kind in ("correct", "retract"):
            if not alive:
                continue
            target = alive.pop(value % len(alive))
            if kind == "retract":
                add("entered_in_error", {}, corrects=target.id, reason="another patient's")
                continue
            body = ({**target.payload, "heart_rate_per_min": extra} if target.kind == "vitals"
                    else {"nrs": extra % 11})
            alive.append(add(target.kind, body, corrects=target.id, reason="typed wrong"))
        elif kind == "rate_change" and paused:
            continue
        else:
            body = ({**VITALS, "heart_rate_per_min": value} if kind == "vitals"
                    else {"nrs": value} if kind == "pain" else {"rate_mg_per_h": value})
            e = add(kind, body, back=extra)
            if kind != "rate_change":
                alive.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=0, max_size=40), st.integers(0, 60))
def test_folding_one_entry_at_a_time_comes_to_the_full_fold(steps: list[Any],
                                                            cut: int) -> None:
    entries = _timeline(steps)
    full = record_of(entries)
    one_by_one = record_of(entries[:1])
    for e in entries[1:]:
        one_by_one = record_more(one_by_one, [e])
    assert one_by_one == full
    k = cut % (len(entries) + 1)
    assert record_more(record_of(entries[:k]), entries[k:]) == full
    w = world()
    now = entries[-1].at + timedelta(minutes=3)
    kw: dict[str, Any] = {"rules": w.rules, "order": w.order, "facts": w.facts, "now": now}
    assert evolve(one_by_one, **kw) == evolve(entries, **kw)


def test_a_correction_folds_the_whole_timeline_again() -> None:
    """A correction changes an earlier entry's status: the record after it is the full
    fold's (the superseded set no longer effective, the correction in its place)."""
    entries = _timeline([("vitals", 80, 0), ("vitals", 90, 0), ("correct", 0, 120)])
    record = record_more(record_of(entries[:-1]), entries[-1:])
    assert record == record_of(entries)
    statuses = {f.entry.id: f.status for f in record.folded}
    assert statuses[entries[-1].corrects or 0] == "superseded"
    assert [e.payload["heart_rate_per_min"] for e in record.by_kind["vitals"]][-1] == 120


def test_an_entry_not_after_the_record_is_folded_with_the_whole_timeline_and_refused() -> None:
    """An entry whose id is not above the record's last (the same row twice) is not taken
    as one more step: the whole timeline is folded, and the fold refuses the duplicate."""
    entries = _timeline([("vitals", 80, 0), ("pain", 4, 0)])
    with pytest.raises(UsageError, match="duplicate entry id"):
        record_of([*entries, entries[-1]])
    with pytest.raises(UsageError, match="duplicate entry id"):
        record_more(record_of(entries), entries[-1:])
