"""What the outcome report needs from each charted session, worked out from its timeline.

The report reads one summary per session instead of the whole timeline (issue 17): the web
layer stores these summaries beside the timeline and works them out again from the
session's entries whenever an entry that changes them is appended (a start, a pain score,
an adverse event, a correction or a retraction). The definitions are those of the report
(``web/outcomes/selectors.py``), which reads the timeline itself in its exact path:

* a session is **given** once an ``infusion_start`` was charted;
* the **pain before** is the first effective ``pain`` entry of phase ``pre`` (in clinical
  time, then in the order recorded), the **pain at the end** the last of phase ``end``;
* **adverse events** are the effective ``adverse_event`` entries, counted by type;
* **effective**: no later entry (a correction or a retraction) points at it;
* within a series, the **first** and **last given** sessions are the given ones with the
  lowest and highest visit number.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The timeline kinds a summary is worked out from; an entry that corrects another (of any
# kind, a retraction too) changes what is effective.
SUMMARY_KINDS = ("infusion_start", "pain", "adverse_event")


@dataclass(frozen=True, slots=True)
class ChartedSession:
    session_id: int
    series_id: int
    visit_number: int


@dataclass(frozen=True, slots=True)
class ChartedEntry:
    session_id: int
    entry_id: int
    kind: str
    occurred_at: datetime
    corrects_id: int | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: int
    series_id: int
    started: bool
    first_given: bool
    last_given: bool
    pain_before_nrs: float | None
    pain_at_end_nrs: float | None
    adverse_events: Mapping[str, int] = field(default_factory=dict)  # type -> count

    @property
    def adverse_event_count(self) -> int:
        return sum(self.adverse_events.values())


def session_summaries(sessions: Iterable[ChartedSession],
                      entries: Iterable[ChartedEntry]) -> list[SessionSummary]:
    """One summary per session given, from its entries (any order; entries of kinds other
    than :data:`SUMMARY_KINDS` only matter when they correct one). Pass every session of
    a series together: the first and last given sessions are decided within the series."""
    sessions = list(sessions)
    known = {s.session_id for s in sessions}
    mine = [e for e in entries if e.session_id in known]
    corrected = {e.corrects_id for e in mine if e.corrects_id is not None}
    started: set[int] = set()
    pre: dict[int, tuple[tuple[datetime, int], float]] = {}
    end: dict[int, tuple[tuple[datetime, int], float]] = {}
    events: dict[int, Counter[str]] = defaultdict(Counter)
    for e in mine:
        if e.kind == "infusion_start":
            started.add(e.session_id)
        if e.entry_id in corrected:
            continue
        if e.kind == "adverse_event":
            events[e.session_id][str(e.payload.get("type"))] += 1
        elif e.kind == "pain" and e.payload.get("nrs") is not None:
            at, nrs = (e.occurred_at, e.entry_id), float(e.payload["nrs"])
            phase = e.payload.get("phase")
            if phase == "pre" and (e.session_id not in pre or at < pre[e.session_id][0]):
                pre[e.session_id] = (at, nrs)
            elif phase == "end" and (e.session_id not in end or at > end[e.session_id][0]):
                end[e.session_id] = (at, nrs)
    visits: dict[int, list[int]] = defaultdict(list)
    for s in sessions:
        if s.session_id in started:
            visits[s.series_id].append(s.visit_number)
    out = []
    for s in sessions:
        given = visits.get(s.series_id, [])
        out.append(SessionSummary(
            session_id=s.session_id, series_id=s.series_id,
            started=s.session_id in started,
            first_given=s.session_id in started and s.visit_number == min(given),
            last_given=s.session_id in started and s.visit_number == max(given),
            pain_before_nrs=pre[s.session_id][1] if s.session_id in pre else None,
            pain_at_end_nrs=end[s.session_id][1] if s.session_id in end else None,
            adverse_events=dict(sorted(events[s.session_id].items()))
            if s.session_id in events else {}))
    return out


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """What the outcome report needs of a series' given sessions, from their summaries:
    how many, the pain before the first and at the end of the last, the last one, the
    adverse events of all of them, counted by type, and the (pain before, pain at the
    end) of each with both, one pair after the other (for the immediate responses)."""

    series_id: int
    given_sessions: int
    pain_before_first_nrs: float | None
    pain_at_end_last_nrs: float | None
    last_given_session_id: int | None
    adverse_events: Mapping[str, int]
    immediate_pairs_nrs: tuple[float, ...] = ()


def series_summaries(summaries: Iterable[SessionSummary]) -> list[SeriesSummary]:
    """One summary per series with a given session, from its sessions' summaries (pass all
    of a series' summaries together), ordered by series."""
    given: dict[int, list[SessionSummary]] = defaultdict(list)
    for s in summaries:
        if s.started:
            given[s.series_id].append(s)
    out = []
    for series_id, mine in sorted(given.items()):
        first = [s for s in mine if s.first_given]
        last = [s for s in mine if s.last_given]
        events: Counter[str] = Counter()
        for s in mine:
            events.update(s.adverse_events)
        out.append(SeriesSummary(
            series_id=series_id, given_sessions=len(mine),
            pain_before_first_nrs=first[0].pain_before_nrs if first else None,
            pain_at_end_last_nrs=last[0].pain_at_end_nrs if last else None,
            last_given_session_id=last[0].session_id if last else None,
            adverse_events=dict(sorted(events.items())),
            immediate_pairs_nrs=tuple(
                nrs for g in mine if g.pain_before_nrs is not None
                and g.pain_at_end_nrs is not None
                for nrs in (g.pain_before_nrs, g.pain_at_end_nrs))))
    return out


# --------------------------------------------------------------------------- follow-up answers


@dataclass(frozen=True, slots=True)
class GivenAnswer:
    """One answer at a follow-up (``session_id``: the session it follows, if any)."""

    response_id: int
    point: str
    session_id: int | None
    answered_at: datetime
    corrects_id: int | None
    pain_nrs: float
    mme_per_day: float | None


@dataclass(frozen=True, slots=True)
class FollowUpCell:
    """What counts of a series' answers at one point (after one session, for a point that
    follows each session): the pain of the last effective answer (in time answered, then in
    the order recorded) and the MME of the last that recorded one. The report decides
    between cells that compete for one day (``*_response_id``: their answers, to order)."""

    point: str
    session_id: int | None
    pain_nrs: float
    pain_response_id: int
    mme_per_day: float | None
    mme_response_id: int | None


def follow_up_cells(answers: Iterable[GivenAnswer]) -> list[FollowUpCell]:
    """The cells of one series' answers (pass all of them, corrected ones too), ordered by
    point and session."""
    answers = list(answers)
    corrected = {a.corrects_id for a in answers if a.corrects_id is not None}
    cells: dict[tuple[str, int], list[GivenAnswer]] = defaultdict(list)
    for a in answers:
        if a.response_id not in corrected:
            cells[(a.point, -1 if a.session_id is None else a.session_id)].append(a)
    out = []
    for (point, session), mine in sorted(cells.items()):
        mine.sort(key=lambda a: (a.answered_at, a.response_id))
        last = mine[-1]
        with_mme = [a for a in mine if a.mme_per_day is not None]
        out.append(FollowUpCell(point, None if session < 0 else session, last.pain_nrs,
                                last.response_id,
                                with_mme[-1].mme_per_day if with_mme else None,
                                with_mme[-1].response_id if with_mme else None))
    return out


def follow_up_places(answers: Iterable[GivenAnswer], column: Mapping[str, int],
                     places: Sequence[int], last_given_session_id: int | None
                     ) -> list[float | None]:
    """What the report takes of one series' answers (pass all of them, corrected ones
    too), place by place in ``places`` (``column``: each point's place; -1 the baseline,
    else the follow-up day's column; a point not in it counts nowhere): the pain of the
    last effective answer there, then the MME of the last that recorded one. An answer
    after a session counts at a follow-up day only when that session is the series' last
    given one (``last_given_session_id``); a baseline counts whatever session it follows.
    The same rules as the report's exact path, which reads the answers one by one."""
    answers = list(answers)
    corrected = {a.corrects_id for a in answers if a.corrects_id is not None}
    pain: dict[int, float] = {}
    mme: dict[int, float] = {}
    for a in sorted(answers, key=lambda a: (a.answered_at, a.response_id)):
        place = column.get(a.point)
        if place is None or a.response_id in corrected:
            continue
        if place >= 0 and a.session_id is not None and a.session_id != last_given_session_id:
            continue
        pain[place] = a.pain_nrs
        if a.mme_per_day is not None:
            mme[place] = a.mme_per_day
    return [value for j in places for value in (pain.get(j), mme.get(j))]
