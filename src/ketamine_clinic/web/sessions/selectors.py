"""Reads of infusion sessions, always scoped to the user's sites, and the derived view.

Nothing here is typed by a nurse or decided here: the state, the exact dose, the limits,
alarms, overdue vital signs and both gates come from the bedside core's one derivation
(``clinical.bedside.evolve`` and its gates), every time. This module maps rows to the
core's entries and the core's view back to rows for the pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db import connection
from django.db.models import ManyToManyField, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.bedside import view as core
from ketamine_clinic.clinical.bedside.gates import discharge_gate_of, start_gate_of
from ketamine_clinic.clinical.bedside.model import DayFacts, Entry
from ketamine_clinic.clinical.bedside.view import (
    MONITORED_STATES,
    PRE_START_STATES,
    RATE_KINDS,
    SessionView,
)
from ketamine_clinic.clinical.discharge import DischargeScore, Override
from ketamine_clinic.clinical.session import GateResult, SessionState
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.lib.rows import Columns
from ketamine_clinic.web.orders.models import Order
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.sessions.facts import (
    alarms_as_core,
    day_facts,
    entries_as_core,
    order_verified,
    record_as_core,
    signed_order_of,
    stored_alarms_as_core,
)
from ketamine_clinic.web.sessions.models import Alarm, InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.rules import SessionRules, rules_for_version

__all__ = ["MONITORED_STATES", "PRE_START_STATES", "RATE_KINDS", "order_verified"]


# --------------------------------------------------------------------------- scoping


def sessions_visible_to(user: User) -> QuerySet[InfusionSession]:
    return (InfusionSession.objects.filter(site__in=user.sites.all())
            .select_related("patient", "site", "order", "order__protocol_version", "series"))


def session_get_for(user: User, session_id: int, actor: Actor, *,
                    read: AuditAction) -> InfusionSession:
    """The session if the user works at its site, the read recorded as ``read`` (e.g.
    ``API_SESSION_VIEW``); otherwise 404, and the attempt audited."""
    found = session_get_unaudited(user, session_id, actor)
    session_read_record(actor, found, read)
    return found


def session_get_unaudited(user: User, session_id: int, actor: Actor) -> InfusionSession:
    """The session as ``session_get_for`` finds it, with no read entry: for a write (its
    service records the entry), and for a page that records its read itself, later or only
    on some paths (``session_read_record``: the page shown after a refused write, the live
    region's de-duplicated refresh). A refused access is audited."""
    found = sessions_visible_to(user).filter(pk=session_id).first()
    if found is None:
        audit_record(actor=actor, action=AuditAction.SESSION_ACCESS_DENIED, object_type="session",
                     object_id=session_id)
        raise Http404("No such session")
    return found


def session_get_for_write(user: User, session_id: int, actor: Actor) -> InfusionSession:
    """The session as :func:`session_get_unaudited` finds it (at one of the user's sites, a
    refusal audited), joined only to what a bedside write reads before its lock: the order,
    its protocol version and the site. The patient and the series are read where a write
    asks for them (a write that gathers the day's facts reads the session again, joined to
    both, under its lock).

    One statement in SQL of its own (``lib.rows``): it runs at every bedside write, and
    building the four-model join through the ORM cost more than the rest of a vital-sign
    write's reads together. Its site rule is :func:`sessions_visible_to`'s (the tests hold
    the two to the same sessions for every user). The same statement counts the session's
    alarms (:func:`alarms_counted`), which a vital-sign set decided before the lock reads
    instead of asking the database again whether the session is still as read."""
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_SESSION_SQL, [session_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        audit_record(actor=actor, action=AuditAction.SESSION_ACCESS_DENIED, object_type="session",
                     object_id=session_id)
        raise Http404("No such session")
    session = _W_SESSION.read(row)
    order = _W_ORDER.read(row, _W_SESSION.width)
    order.protocol_version = _W_PROTOCOL.read(row, _W_SESSION.width + _W_ORDER.width)
    session.order = order
    session.site = _W_SITE.read(row, _W_SESSION.width + _W_ORDER.width + _W_PROTOCOL.width)
    setattr(session, _ALARMS_COUNTED, row[-1])  # as annotate() would put it
    return session


_ALARMS_COUNTED = "_alarms_counted"


def alarms_counted(session: InfusionSession) -> int | None:
    """The number of the session's alarms, counted by the statement that read the session
    (:func:`session_get_for_write`); None for a session read otherwise."""
    count = vars(session).get(_ALARMS_COUNTED)
    return count if isinstance(count, int) else None


_W_SESSION = Columns(InfusionSession, "s")
_W_ORDER = Columns(Order, "o")
_W_PROTOCOL = Columns(ProtocolVersion, "p")
_W_SITE = Columns(Site, "t")


def _write_session_sql() -> str:
    sites = User._meta.get_field("sites")
    assert isinstance(sites, ManyToManyField)
    through = User.sites.through._meta.db_table
    tables = {c.alias: c.model._meta.db_table for c in (_W_SESSION, _W_ORDER, _W_PROTOCOL,
                                                        _W_SITE)}
    alarms = Alarm._meta.db_table
    return (f'SELECT {_W_SESSION.sql}, {_W_ORDER.sql}, {_W_PROTOCOL.sql}, {_W_SITE.sql}, '
            f'(SELECT COUNT(*) FROM "{alarms}" a WHERE a.session_id = s.id) '
            f'FROM "{tables["s"]}" s JOIN "{tables["o"]}" o ON o.id = s.order_id '
            f'JOIN "{tables["p"]}" p ON p.id = o.protocol_version_id '
            f'JOIN "{tables["t"]}" t ON t.id = s.site_id '
            f'WHERE s.id = %s AND s.site_id IN (SELECT "{sites.m2m_reverse_name()}" '
            f'FROM "{through}" WHERE "{sites.m2m_column_name()}" = %s)')


_WRITE_SESSION_SQL = _write_session_sql()


def session_read_record(actor: Actor, session: InfusionSession, action: AuditAction,
                        detail: dict[str, Any] | None = None) -> None:
    """Record a read of the session, filed under the session's site."""
    audit_read(actor=actor, action=action, object_type="session", object_id=session.pk,
               site_code=session.site.code, patient_id=session.patient_id, detail=detail)


def viewed_recently(user: User, session: InfusionSession, *, within: timedelta) -> bool:
    """Whether ``user`` has a ``session.view`` or ``session.view_live`` audit entry for
    ``session`` dated within ``within`` of now."""
    return AuditEntry.objects.filter(
        object_type="session", object_id=str(session.pk), user_id_value=user.pk,
        action__in=(AuditAction.SESSION_VIEW, AuditAction.SESSION_VIEW_LIVE),
        at__gte=timezone.now() - within).exists()


def board_seen_recently(user: User, session_ids: list[int], *, within: timedelta) -> bool:
    """Whether ``user``'s newest ``session.board`` audit entry, dated within ``within`` of
    now, lists exactly these sessions (a refresh that shows nobody new is not audited
    again; a new patient on the board is)."""
    last = (AuditEntry.objects.filter(action=AuditAction.SESSION_BOARD, user_id_value=user.pk,
                                      at__gte=timezone.now() - within)
            .order_by("-at", "-id").values_list("detail", flat=True).first())
    return last is not None and sorted(last.get("sessions", [])) == sorted(session_ids)


# --------------------------------------------------------------------------- the derived view


@dataclass(frozen=True)
class EntryView:
    """One timeline row as shown: the stored entry and what corrections made of it."""

    entry: TimelineEntry
    status: str  # effective, superseded, entered_in_error, retraction
    replaced_by: int | None
    target_kind: str  # the kind it is about (a retraction's target kind)

    @property
    def struck(self) -> bool:
        return self.status in ("superseded", "entered_in_error")


def _core(entry: TimelineEntry) -> Entry:
    return entries_as_core([entry])[0]


def vital_signs_of(entry: TimelineEntry) -> mon.VitalSigns:
    return core.vital_signs_of(_core(entry))


def rate_event_of(entry: TimelineEntry) -> mon.RateEvent:
    return core.rate_event_of(_core(entry))


def fold(entries: Sequence[TimelineEntry]) -> list[EntryView]:
    """Every row with its correction status (the core's fold), in record order."""
    rows = {e.pk: e for e in entries}
    return [EntryView(rows[f.entry.id], f.status, f.replaced_by, f.about)
            for f in core.fold(entries_as_core(entries))]


@dataclass
class Snapshot:
    """The core's :class:`SessionView` of one session, with its rows for the pages."""

    session: InfusionSession
    view: SessionView
    rows: Mapping[int, TimelineEntry]
    alarms: list[Alarm]
    start_gate: GateResult | None = None
    discharge_gate: GateResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- the core's view, as the pages read it
    @property
    def rules(self) -> SessionRules:
        return self.view.rules

    @property
    def now(self) -> datetime:
        return self.view.now

    @property
    def state(self) -> SessionState:
        return self.view.state

    @property
    def totals(self) -> mon.InfusionTotals | None:
        return self.view.totals

    @property
    def planned_end(self) -> datetime | None:
        return self.view.planned_end

    @property
    def limit_check(self) -> mon.SessionLimitCheck | None:
        return self.view.limit_check

    @property
    def overdue(self) -> mon.OverdueStatus | None:
        return self.view.overdue

    @property
    def rate_events(self) -> list[mon.RateEvent]:
        return list(self.view.rate_events)

    @property
    def weight_kg(self) -> Fraction:
        return self.view.order.weight_kg

    @property
    def concentration_mg_per_ml(self) -> Fraction:
        return self.view.order.concentration_mg_per_ml

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.view.allowed

    @property
    def started_at(self) -> datetime | None:
        return self.view.started_at

    @property
    def stopped_at(self) -> datetime | None:
        return self.view.stopped_at

    @property
    def next_recovery_due(self) -> datetime | None:
        return self.view.next_recovery_due

    # ---- rows
    def _row(self, entry: Entry | None) -> TimelineEntry | None:
        return None if entry is None else self.rows[entry.id]

    @property
    def views(self) -> list[EntryView]:
        return [EntryView(self.rows[f.entry.id], f.status, f.replaced_by, f.about)
                for f in self.view.folded]

    @property
    def effective(self) -> list[TimelineEntry]:
        return [self.rows[e.id] for e in self.view.effective]

    def of_kind(self, *kinds: str) -> list[TimelineEntry]:
        return [self.rows[e.id] for e in self.view.of_kind(*kinds)]

    @property
    def baseline_vitals(self) -> TimelineEntry | None:
        return self._row(self.view.baseline_vitals)

    @property
    def latest_vitals(self) -> TimelineEntry | None:
        return self._row(self.view.latest_vitals)

    @property
    def recovery(self) -> TimelineEntry | None:
        found = self.view.recovery_scores(self.rules.gate_score)
        return self.rows[found[-1].id] if found else None

    @property
    def recovery_score(self) -> DischargeScore | None:
        row = self.recovery
        return None if row is None else DischargeScore.from_dict(row.payload["result"])

    @property
    def unacknowledged(self) -> list[Alarm]:
        return [a for a in self.alarms if not _acked(a)]


def _acked(alarm: Alarm) -> bool:
    try:
        return alarm.ack is not None
    except Alarm.ack.RelatedObjectDoesNotExist:
        return False


def entries_of(session: InfusionSession) -> list[TimelineEntry]:
    cache = getattr(session, "_prefetched_objects_cache", {})
    if "entries" in cache:
        return list(cache["entries"])
    return list(session.entries.select_related("recorded_by").order_by("id"))


def alarms_of(session: InfusionSession) -> list[Alarm]:
    cache = getattr(session, "_prefetched_objects_cache", {})
    if "alarms" in cache:
        return list(cache["alarms"])
    return list(session.alarms.select_related("ack", "ack__by", "entry")
                .order_by("-raised_at", "-id"))


def with_timeline(qs: QuerySet[InfusionSession]) -> QuerySet[InfusionSession]:
    """Prefetch what a snapshot reads (for the board: a fixed number of queries)."""
    return qs.prefetch_related(
        Prefetch("entries", TimelineEntry.objects.select_related("recorded_by").order_by("id")),
    ).prefetch_related(
        Prefetch("alarms", Alarm.objects.select_related("ack", "ack__by")
                 .order_by("-raised_at", "-id")),
    )


def session_rules(session: InfusionSession) -> SessionRules:
    return rules_for_version(session.order.protocol_version)


def light_facts(session: InfusionSession) -> DayFacts:
    """The facts a view needs when no gate is judged (the board, the live region)."""
    return DayFacts(consent_on_file=False, screening_problem="not gathered for this view",
                    time_zone=session.site.time_zone or timezone.get_current_timezone_name())


def snapshot(session: InfusionSession, *, now: datetime | None = None,
             rules: SessionRules | None = None, gates: bool = True,
             facts: DayFacts | None = None,
             extra_entries: Sequence[TimelineEntry] = ()) -> Snapshot:
    """The session's view at ``now`` (the core's ``evolve``), and its gates when asked."""
    now = now or timezone.now()
    rules = rules or session_rules(session)
    rows = [*entries_of(session), *extra_entries]
    alarms = alarms_of(session)
    if facts is None:
        facts = day_facts(session, rules, now) if gates else light_facts(session)
    view = core.evolve(entries_as_core(rows), rules=rules, order=signed_order_of(session.order),
                       facts=facts, now=now, alarms=alarms_as_core(alarms))
    snap = Snapshot(session=session, view=view, rows={e.pk: e for e in rows}, alarms=alarms)
    if gates and view.state in PRE_START_STATES:
        snap.start_gate = start_gate_of(view)
    if gates and view.state is SessionState.RECOVERING:
        snap.discharge_gate = discharge_gate_of(view)
    return snap


class RowsOnDemand(Mapping[int, TimelineEntry]):
    """A session's timeline rows, each read when first asked for: a write needs one or
    two of them (the entry corrected, the last state change), not the whole record."""

    def __init__(self, session: InfusionSession, ids: Sequence[int]) -> None:
        self._session = session
        self._ids = tuple(ids)
        self._read: dict[int, TimelineEntry] = {}

    def __getitem__(self, entry_id: int) -> TimelineEntry:
        row: TimelineEntry | None = self._read.get(entry_id)
        if row is None:
            row = (TimelineEntry.objects.select_related("recorded_by")
                   .get(session=self._session, pk=entry_id))
            self._read[entry_id] = row
        return row

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def snapshot_for_write(session: InfusionSession, *, now: datetime, rules: SessionRules,
                       facts: DayFacts, fresh: bool = False,
                       alarm_count: int | None = None) -> Snapshot:
    """The view a write is decided on: the same derivation as :func:`snapshot` (the core's
    ``evolve`` over every entry and alarm), read as plain values instead of rows (the
    record this process folded before is kept, and the rows since are folded onto it:
    ``facts.record_as_core``; ``fresh`` reads and folds them all); the rows are read on
    demand and the alarm rows not at all (``alarms`` is empty). ``alarm_count``: the
    number of the session's alarms the caller has just read, when it has; with none
    stored there is nothing to read (a write decided on this view compares the count
    again under its lock)."""
    record = record_as_core(session.pk, fresh=fresh)
    alarms = () if alarm_count == 0 else stored_alarms_as_core(session.pk)
    view = core.evolve(record, rules=rules, order=signed_order_of(session.order), facts=facts,
                       now=now, alarms=alarms)
    return Snapshot(session=session, view=view,
                    rows=RowsOnDemand(session, [e.id for e in record.entries]), alarms=[])


# --------------------------------------------------------------------------- gates


def start_gate_for(snap: Snapshot) -> GateResult:
    return snap.start_gate or start_gate_of(snap.view)


def escort_on_record(snap: Snapshot) -> str:
    return str(snap.view.pre_assessment.get("escort_name", ""))


def discharge_gate_for(snap: Snapshot, *, escort_name: str | None = None,
                       instructions_given: bool = False,
                       overrides: Sequence[Override] = ()) -> GateResult:
    """The discharge gate at ``snap.now`` (the core's ``discharge_gate_of``)."""
    return discharge_gate_of(snap.view, escort_name=escort_name,
                             instructions_given=instructions_given, overrides=overrides)


# --------------------------------------------------------------------------- board


def board_sessions(user: User, now: datetime | None = None) -> list[Snapshot]:
    """Every chair of the user's sites today: open sessions and today's others."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    qs = sessions_visible_to(user).filter(scheduled_for__gte=start, scheduled_for__lt=end)
    open_elsewhere = sessions_visible_to(user).exclude(
        state__in=["scheduled", "discharged", "transferred", "abandoned"]).exclude(
        scheduled_for__gte=start, scheduled_for__lt=end)
    rows = [*with_timeline(qs), *with_timeline(open_elsewhere)]
    return [snapshot(s, now=now, gates=False) for s in
            sorted(rows, key=lambda s: (s.chair or "~", s.scheduled_for))]


def patient_sessions(patient: Any) -> QuerySet[InfusionSession]:
    return (InfusionSession.objects.filter(patient=patient)
            .select_related("order", "series").order_by("-scheduled_for", "-id"))


def derived_state(entries: Sequence[TimelineEntry]) -> SessionState:
    """The state the recorded entries replay to (the core's ``replay_state``)."""
    return core.replay_state(entries_as_core(entries))
