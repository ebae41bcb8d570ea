"""The session derived from its record: one fold of the timeline into a
:class:`SessionView` (state, exact dose, limits, baseline, scores, overdue checks).

:func:`evolve` is the only derivation of a session's state; the pages, the board, the API
and every decision read the view it returns.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.bedside.model import DayFacts, Entry, SignedOrder, StoredAlarm
from ketamine_clinic.clinical.bedside.rules import SessionRules
from ketamine_clinic.clinical.session import (
    GateResult,
    SessionEvent,
    SessionState,
    TransitionContext,
    allowed_events,
    transition,
)

# Kinds that change the session's state, with the state-machine event each one is.
STATE_KINDS: Mapping[str, str] = {
    "check_in": "check_in",
    "pre_assessment": "complete_pre_assessment",
    "infusion_start": "start_infusion",
    "pause": "pause",
    "resume": "resume",
    "stop": "stop",
    "begin_recovery": "begin_recovery",
    "discharge": "discharge",
    "transfer": "transfer",
    "abandon": "abandon",
}
RATE_KINDS = ("infusion_start", "rate_change", "pause", "resume", "stop")
MEDICATION_KINDS = ("premedication", "rescue_medication")
PRE_START_STATES = frozenset({SessionState.SCHEDULED, SessionState.CHECKED_IN,
                              SessionState.PRE_ASSESSMENT_COMPLETE,
                              SessionState.PREMEDICATION_GIVEN})
# Vital signs are due every monitoring interval while the infusion runs or is paused.
MONITORED_STATES = frozenset({SessionState.INFUSING, SessionState.PAUSED})


def vital_signs_of(entry: Entry) -> mon.VitalSigns:
    p = entry.payload
    return mon.VitalSigns(
        at=entry.at,
        systolic_bp_mmhg=p.get("systolic_bp_mmhg"),
        diastolic_bp_mmhg=p.get("diastolic_bp_mmhg"),
        heart_rate_per_min=p.get("heart_rate_per_min"),
        respiratory_rate_per_min=p.get("respiratory_rate_per_min"),
        spo2_percent=p.get("spo2_percent"),
        etco2_mmhg=p.get("etco2_mmhg"),
        temperature_c=p.get("temperature_c"),
        on_oxygen=bool(p.get("on_oxygen", False)),
    )


def rate_event_of(entry: Entry) -> mon.RateEvent:
    p, at = entry.payload, entry.at
    if entry.kind == "infusion_start":
        return mon.RateEvent.start(at, p.get("rate_mg_per_h_exact") or p["rate_mg_per_h"])
    if entry.kind == "rate_change":
        return mon.RateEvent.rate_change(at, p.get("rate_mg_per_h_exact") or p["rate_mg_per_h"])
    if entry.kind == "pause":
        return mon.RateEvent.pause(at)
    if entry.kind == "resume":
        return mon.RateEvent.resume(at, p.get("rate_mg_per_h"))
    return mon.RateEvent.stop(at)


@dataclass(frozen=True, slots=True)
class Folded:
    """An entry with what corrections made of it: ``status`` is effective, superseded,
    entered_in_error or retraction; ``about`` the kind it is about."""

    entry: Entry
    status: str
    replaced_by: int | None
    about: str


def fold(entries: Sequence[Entry]) -> tuple[Folded, ...]:
    """Every entry with its correction status, in record order (core
    ``fold_corrections``)."""
    kinds = {e.id: e.kind for e in entries}
    ordered = sorted(entries, key=lambda x: x.id)
    core = []
    for e in ordered:
        retraction = e.kind == "entered_in_error"
        kind = kinds.get(e.corrects or -1, e.kind) if retraction else e.kind
        core.append(mon.TimelineEntry(
            entry_id=str(e.id), kind=kind, at=e.at,
            payload=None if retraction else e.payload,
            corrects=None if e.corrects is None else str(e.corrects),
            reason=e.reason, entered_in_error=retraction))
    by_id = {e.id: e for e in ordered}
    return tuple(Folded(by_id[int(f.entry.entry_id)], f.status.value,
                        None if f.replaced_by is None else int(f.replaced_by), f.entry.kind)
                 for f in mon.fold_corrections(core))


def replay_state(entries: Iterable[Entry]) -> SessionState:
    """Replay the recorded state changes (record order) through the state machine.

    Gates were judged when each change was recorded; the replay checks the path. The
    first premedication after the pre-assessment is the premedication step.
    """
    return _replay(SessionState.SCHEDULED, sorted(entries, key=lambda x: x.id))


_OPENED = TransitionContext(start_gate=GateResult("start", ()),
                            discharge_gate=GateResult("discharge", ()),
                            premedication_required=False)


def _replay(state: SessionState, ordered: Iterable[Entry]) -> SessionState:
    """``state`` carried on through ``ordered`` (record order, after those that led to it)."""
    for e in ordered:
        if e.corrects is not None:
            continue
        if e.kind == "premedication":
            if state is not SessionState.PRE_ASSESSMENT_COMPLETE:
                continue
            event = SessionEvent.GIVE_PREMEDICATION
        elif e.kind in STATE_KINDS:
            event = SessionEvent(STATE_KINDS[e.kind])
        else:
            continue
        ctx = TransitionContext(start_gate=_OPENED.start_gate,
                                discharge_gate=_OPENED.discharge_gate,
                                premedication_required=False,
                                reason=str(e.payload.get("reason", "")))
        state = transition(state, event, ctx)
    return state


def _is_state_entry(e: Entry) -> bool:
    return e.kind in STATE_KINDS or e.kind == "premedication"


def _time_key(e: Entry) -> tuple[datetime, int]:
    return (e.at, e.id)


@dataclass(frozen=True)
class Record:
    """The session's record folded, before any clock is read: every entry with its
    correction status, the effective entries (clinical time order) and by kind, the state
    the record replays to and the rate events. :func:`evolve` derives the view at ``now``
    from it.

    The shell keeps a session's record between writes; :func:`record_more` folds the
    entries appended since in one step each, and comes to what :func:`record_of` comes to
    over the whole timeline (``tests/clinical/test_bedside_record.py``)."""

    entries: tuple[Entry, ...]
    folded: tuple[Folded, ...]
    effective: tuple[Entry, ...]
    by_kind: Mapping[str, tuple[Entry, ...]]
    state: SessionState
    last_state_entry: Entry | None
    rate_events: tuple[mon.RateEvent, ...]

    @property
    def last_id(self) -> int | None:
        return self.folded[-1].entry.id if self.folded else None


def record_of(entries: Sequence[Entry]) -> Record:
    """The whole timeline folded (any order given; folded in record order)."""
    folded = fold(entries)
    effective = tuple(sorted((f.entry for f in folded if f.status == "effective"
                              and f.entry.kind != "entered_in_error"), key=_time_key))
    by_kind: dict[str, list[Entry]] = {}
    for e in effective:
        by_kind.setdefault(e.kind, []).append(e)
    state_entries = [e for e in entries if _is_state_entry(e)]
    return Record(
        entries=tuple(entries), folded=folded, effective=effective,
        by_kind={k: tuple(v) for k, v in by_kind.items()},
        state=replay_state(entries),
        last_state_entry=max(state_entries, key=lambda e: e.id, default=None),
        rate_events=tuple(rate_event_of(e) for e in effective if e.kind in RATE_KINDS))


def record_more(record: Record, new: Sequence[Entry]) -> Record:
    """``record`` with the entries appended after it (record order, every id above the
    last one folded): each entry that corrects nothing folds in one step (it is effective,
    and changes no earlier entry); a correction or retraction, or entries not after the
    record, fold the whole timeline again (:func:`record_of`)."""
    if not new:
        return record
    last = record.last_id
    for e in new:
        if (e.corrects is not None or e.kind == "entered_in_error" or e.payload is None
                or (last is not None and e.id <= last)):
            return record_of((*record.entries, *new))
        last = e.id
    effective = list(record.effective)
    by_kind = dict(record.by_kind)
    last_state = record.last_state_entry
    for e in new:
        key = _time_key(e)
        effective.insert(bisect_right(effective, key, key=_time_key), e)
        same = by_kind.get(e.kind, ())
        i = bisect_right(same, key, key=_time_key)
        by_kind[e.kind] = (*same[:i], e, *same[i:])
        if _is_state_entry(e):
            last_state = e
    folded = (*record.folded, *(Folded(e, "effective", None, e.kind) for e in new))
    rate_events = record.rate_events
    if any(e.kind in RATE_KINDS for e in new):
        rate_events = tuple(rate_event_of(e) for e in effective if e.kind in RATE_KINDS)
    return Record(entries=(*record.entries, *new), folded=folded, effective=tuple(effective),
                  by_kind=by_kind, state=_replay(record.state, new),
                  last_state_entry=last_state, rate_events=rate_events)


@dataclass(frozen=True)
class SessionView:
    """Everything known about the session at ``now``: derived, never typed."""

    rules: SessionRules
    order: SignedOrder
    facts: DayFacts
    now: datetime
    state: SessionState
    entries: tuple[Entry, ...]
    folded: tuple[Folded, ...]
    effective: tuple[Entry, ...]
    rate_events: tuple[mon.RateEvent, ...]
    totals: mon.InfusionTotals | None
    planned_end: datetime | None
    limit_check: mon.SessionLimitCheck | None
    overdue: mon.OverdueStatus | None
    alarms: tuple[StoredAlarm, ...] = ()
    last_state_entry: Entry | None = None
    _by_kind: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict, repr=False)

    # ---- record
    def of_kind(self, *kinds: str) -> tuple[Entry, ...]:
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], ())
        return tuple(e for e in self.effective if e.kind in kinds)

    def latest(self, kind: str, *, since: datetime | None = None,
               until: datetime | None = None) -> Entry | None:
        found = [e for e in self.of_kind(kind)
                 if (since is None or e.at >= since) and (until is None or e.at <= until)]
        return found[-1] if found else None

    @property
    def started_at(self) -> datetime | None:
        return self.totals.started_at if self.totals else None

    @property
    def stopped_at(self) -> datetime | None:
        return self.totals.stopped_at if self.totals else None

    @property
    def checked_in_at(self) -> datetime | None:
        found = self.of_kind("check_in")
        return found[0].at if found else None

    @property
    def pre_assessment(self) -> Mapping[str, Any]:
        found = self.of_kind("pre_assessment")
        return found[-1].payload if found else {}

    # ---- baseline: the last values before the infusion started
    def _before_start(self, kind: str) -> Entry | None:
        return self.latest(kind, until=self.started_at)

    @property
    def baseline_vitals(self) -> Entry | None:
        return self._before_start("vitals")

    @property
    def latest_vitals(self) -> Entry | None:
        return self.latest("vitals")

    @property
    def baseline_pain(self) -> Entry | None:
        found = [e for e in self.of_kind("pain") if e.payload.get("phase") == "pre"]
        return found[-1] if found else None

    @property
    def baseline_sedation(self) -> Entry | None:
        return self._before_start("sedation") if self.started_at else self.latest("sedation")

    @property
    def baseline_dissociation(self) -> Entry | None:
        return (self._before_start("dissociation") if self.started_at
                else self.latest("dissociation"))

    def given(self, drug: str) -> tuple[Entry, ...]:
        """The doses of ``drug`` given this session (premedication or rescue)."""
        return tuple(e for e in self.of_kind(*MEDICATION_KINDS)
                     if str(e.payload.get("drug", "")).strip().lower() == drug)

    def recovery_scores(self, score_name: str) -> tuple[Entry, ...]:
        return tuple(e for e in self.of_kind("recovery_score")
                     if e.payload.get("score_name") == score_name)

    # ---- alarms and the state machine
    @property
    def unacknowledged(self) -> tuple[StoredAlarm, ...]:
        return tuple(a for a in self.alarms if not a.acknowledged)

    @property
    def open_alarm_keys(self) -> frozenset[str]:
        return frozenset(a.key for a in self.unacknowledged)

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(e.value for e in allowed_events(self.state,
                                                     self.rules.premedication_required))

    @property
    def next_recovery_due(self) -> datetime | None:
        if self.state is not SessionState.RECOVERING:
            return None
        last = self.of_kind("recovery_score")
        since = last[-1].at if last else self.stopped_at
        return None if since is None else since + self.rules.recovery_interval


def evolve(entries: Sequence[Entry] | Record, *, rules: SessionRules, order: SignedOrder,
           facts: DayFacts, now: datetime, alarms: Sequence[StoredAlarm] = ()) -> SessionView:
    """Fold the session's entries (or take their :class:`Record`, folded already) into
    its :class:`SessionView` at ``now``."""
    record = entries if isinstance(entries, Record) else record_of(entries)
    state, effective, rate_events = record.state, record.effective, record.rate_events
    totals = limit_check = planned_end = None
    if rate_events:
        at = max(now, rate_events[-1].at)
        totals = mon.infusion_totals(rate_events, weight_kg=order.weight_kg,
                                     concentration_mg_per_ml=order.concentration_mg_per_ml,
                                     at=at)
        assert totals.started_at is not None
        planned_end = totals.started_at + order.planned_duration + totals.paused_time
        limit_check = mon.check_session_limits(
            rate_events, weight_kg=order.weight_kg,
            concentration_mg_per_ml=order.concentration_mg_per_ml, now=at,
            planned_end=max(planned_end, at), limits=rules.session_limits)
    overdue = None
    started = totals.started_at if totals else None
    if state in MONITORED_STATES and started is not None:
        vitals = record.by_kind.get("vitals", ())
        last = vitals[-1].at if vitals else None
        overdue = mon.vitals_overdue(last, monitoring_since=started,
                                     now=max(now, last or started, started),
                                     interval=rules.monitoring_interval)
    return SessionView(
        rules=rules, order=order, facts=facts, now=now, state=state, entries=record.entries,
        folded=record.folded,
        effective=effective, rate_events=rate_events, totals=totals,
        planned_end=planned_end, limit_check=limit_check, overdue=overdue,
        alarms=tuple(alarms),
        last_state_entry=record.last_state_entry,
        _by_kind=record.by_kind,
    )
