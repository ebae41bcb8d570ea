"""Writes to infusion sessions. Each runs in one transaction and leaves an audit entry.

Every write is one bedside command decided by the core (``clinical.bedside.decide``)
against the whole picture: the signed order, the protocol version, the day's facts and
the session so far. This module only locks, gathers the facts, calls the core, stores what
it decided (entries, alarms, limit decisions), audits and answers. A refusal is raised as
:class:`~ketamine_clinic.errors.Refusal` with the core's sentences; the limit decisions of
a refused rate are kept for quality review.

Concurrency: every write locks the session row (``select_for_update``), so writers of one
session queue up. A command that is known before the session is read and needs none of
the day's facts (an observation such as a vital-sign set) is decided before the lock
(:func:`_decided_early`); under the lock the write checks that the session is still as it
was read and otherwise derives and decides again, so the decision stored is always the one
the locked record gives. A state change may carry ``expected_version`` (the version the
nurse's page showed): if someone else changed the state in between, the change is refused
and the message says what happened.

The module stays whole (about 620 lines): every write goes through the same lock, early
decision, store and audit steps here, and split by command those shared steps would be
spread over several files.

Retries: every write takes an ``idempotency_key``. A key already stored for the same
session and kind returns the stored entry (``Written.replayed``) and writes nothing; a key
used for something else is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.contrib.auth import authenticate
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from ketamine_clinic.clinical import clock
from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.bedside import decisions as cmd
from ketamine_clinic.clinical.bedside.alarms import watch
from ketamine_clinic.clinical.bedside.model import Accepted, NewAlarm, Refused
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.errors import Refusal, UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib import idempotency
from ketamine_clinic.web.lib.inputs import required_text
from ketamine_clinic.web.orders.models import LimitEvent, Order
from ketamine_clinic.web.orders.services import limit_event_record
from ketamine_clinic.web.sessions import hooks, selectors
from ketamine_clinic.web.sessions.facts import day_facts
from ketamine_clinic.web.sessions.models import (
    Alarm,
    AlarmAcknowledgement,
    InfusionSession,
    TimelineEntry,
)
from ketamine_clinic.web.sessions.schemas import KINDS, OBSERVATION_KINDS, STATE_KINDS, Payload
from ketamine_clinic.web.sessions.summaries import changes_summary, outcome_summaries_refresh


@dataclass(frozen=True)
class Written:
    """What a session write answers: the entry it stored (the first, when it stored
    several), or with ``replayed`` the entry a retry of the same request found stored."""

    entry: TimelineEntry
    replayed: bool = False


@dataclass(frozen=True)
class Discharged(Written):
    """A discharge, with the series' follow-ups it scheduled (none on a replay)."""

    follow_ups: tuple[hooks.FollowUpBooked, ...] = ()


def _payload(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` against the kind's payload model; the first problem names the
    field (``payload.<name>``)."""
    model: type[Payload] | None = KINDS.get(kind)
    if model is None:
        raise UsageError("kind", f"unknown entry kind {kind!r}")
    try:
        return model.model_validate(dict(data)).model_dump(mode="json")
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        raise UsageError(loc, str(err.get("msg"))) from exc


# --------------------------------------------------------------------------- scheduling


def session_schedule(*, actor: Actor, order: Order, scheduled_for: datetime,
                     chair: str = "") -> InfusionSession:
    """Book the next visit of an active order's series."""
    if order.status != Order.Status.ACTIVE:
        raise UsageError("order", f"the order is {order.get_status_display().lower()}, "
                                  "not active (signed and verified)")
    clock.aware("scheduled_for", scheduled_for)
    with transaction.atomic():
        series = type(order.series).objects.select_for_update().get(pk=order.series_id)
        if series.ended_at is not None:
            raise UsageError("order", "the series has ended")
        count = InfusionSession.objects.filter(series=series).count()
        if count >= series.planned_sessions:
            raise UsageError("order", f"all {series.planned_sessions} planned sessions of "
                                      "the series are booked")
        session = InfusionSession.objects.create(
            order=order, series=series, patient=order.patient, site=order.patient.site,
            visit_number=count + 1, scheduled_for=scheduled_for, chair=chair.strip(),
            created_by=actor.require_user())
        audit_record(actor=actor.at(session.site.code), action=AuditAction.SESSION_SCHEDULE,
                     object_type="session", object_id=session.pk,
                     detail={"patient": order.patient_id, "order": order.pk,
                             "visit": session.visit_number})
    return session


# --------------------------------------------------------------------------- the core write


def _replayed(session: InfusionSession, key: str | None,
              kinds: Sequence[str]) -> Written | None:
    if not key:
        return None
    # SQL of its own (through raw()): it runs under the write lock.
    hit = next(iter(TimelineEntry.objects.raw(_KEY_SQL, [key])), None)
    return _replay_of(session, None if hit is None else hit.pk, kinds)


def _replay_of(session: InfusionSession, entry_id: int | None,
               kinds: Sequence[str]) -> Written | None:
    """The stored entry ``entry_id`` (the one holding the request's key; None: none) as a
    replay, or refused if it was written for another session or kind."""
    if entry_id is None:
        return None
    found = TimelineEntry.objects.select_related("recorded_by").get(pk=entry_id)
    if found.session_id != session.pk or found.kind not in kinds:
        raise UsageError("idempotency_key", "this key was already used for another request")
    return Written(found, replayed=True)


_KEY_SQL = (f'SELECT id FROM "{TimelineEntry._meta.db_table}" '
            f'WHERE idempotency_key = %s LIMIT 1')


def _state_check(snap: selectors.Snapshot, expected_version: int | None) -> None:
    """Refuse a state change decided on a stale page, saying what changed since."""
    if expected_version is None or expected_version == snap.session.version:
        return
    last = snap.view.last_state_entry
    who = ""
    if last is not None:
        row = snap.rows[last.id]
        who = (f": {row.recorded_by.get_full_name() or row.recorded_by.username} recorded "
               f"{row.kind.replace('_', ' ')} at {timezone.localtime(row.recorded_at):%H:%M}")
    raise UsageError("expected_version",
                     f"the session changed since you loaded it (now {snap.state.value}{who}); "
                     "review and try again")


@dataclass
class _Outcome:
    entry: TimelineEntry | None
    refused: Refused | None = None


def _run(*, actor: Actor, session: InfusionSession, kinds: Sequence[str],
         key: str | None, command: Callable[[selectors.Snapshot], cmd.Command],
         expected_version: int | None = None, device_id: str = "",
         after: Callable[[selectors.Snapshot, TimelineEntry, Accepted], None] | None = None,
         light_command: cmd.Command | None = None) -> Written:
    """Lock, replay check, derive, decide, store. Returns the first stored entry.

    ``light_command``: the command, when it does not depend on the snapshot; the day's
    facts are then gathered only if the core says that judging it reads them, and the
    session is read and the command decided *before* the lock is taken (see
    :func:`_decided_early`)."""
    now = timezone.now()
    early = (_decided_early(session, now, light_command)
             if light_command is not None and not cmd.needs_day_facts(light_command)
             else None)
    with transaction.atomic():
        unchanged, keyed = False, None
        if early is not None:
            # Nothing of the session changed since it was read: the early decision stands.
            unchanged, keyed = _locked_as_read(session, early, key)
        stands = early if unchanged else None
        locked = session if stands is not None else (
            # Only the session row is locked (PostgreSQL refuses FOR UPDATE on the nullable
            # side of the joins).
            InfusionSession.objects.select_for_update(of=("self",))
            .select_related("order", "order__protocol_version", "order__signed_by",
                            "patient", "site", "series")
            .get(pk=session.pk))
        # The entry holding the key: read with the stamp, under the lock, when there was
        # an early decision.
        again = (_replay_of(locked, keyed, kinds) if early is not None
                 else _replayed(locked, key, kinds))
        if again is not None:
            idempotency.claim()
            return again
        if stands is not None:
            snap, result = stands.snap, stands.result
        else:
            rules = selectors.session_rules(locked)
            facts = (day_facts(locked, rules, now) if light_command is None
                     or cmd.needs_day_facts(light_command) else selectors.light_facts(locked))
            snap = selectors.snapshot_for_write(locked, now=now, rules=rules, facts=facts,
                                               fresh=True)
            _state_check(snap, expected_version)
            result = cmd.decide(snap.view, command(snap))
        if isinstance(result, Accepted):
            written = Written(_store(actor, snap, result, key, device_id, after))
            idempotency.claim()
            return written
    assert isinstance(result, Refused)
    _refused(actor, session, result)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Early:
    snap: selectors.Snapshot
    result: Accepted | Refused
    stamp: tuple[object, ...]


def _decided_early(session: InfusionSession, now: datetime,
                   command: cmd.Command) -> _Early | None:
    """Read the session and decide ``command`` without a lock, outside any transaction.

    A bedside write spends most of its time reading the timeline and deriving the view;
    on SQLite a write transaction holds the whole database's write lock, so every chair
    of the clinic would wait for it. Under the lock, :func:`_locked_as_read` checks that the
    session is as it was read (its row, and the number of its entries, alarms and
    acknowledgements: all three are append-only, so an equal count is an equal record);
    if anything changed, the write derives and decides again under the lock. ``None`` (no
    early decision) when the ``session`` given is not the stored one (read before a
    change). A session read by ``selectors.session_get_for_write`` is the stored one as
    that statement found it, with its alarms counted; another is checked here."""
    alarm_count = selectors.alarms_counted(session)
    if alarm_count is None:
        row = _stamp(session)
        if row is None or row[:3] != (session.state, session.version, session.order.status):
            return None
        alarm_count = row[4] if isinstance(row[4], int) else None
    rules = selectors.session_rules(session)
    snap = selectors.snapshot_for_write(session, now=now, rules=rules,
                                        facts=selectors.light_facts(session),
                                        alarm_count=alarm_count)
    alarms = snap.view.alarms
    stamp = (session.state, session.version, session.order.status, len(snap.view.entries),
             len(alarms), sum(1 for a in alarms if a.acknowledged))
    return _Early(snap, cmd.decide(snap.view, command), stamp)


def _locked_as_read(session: InfusionSession, early: _Early,
                    key: str | None) -> tuple[bool, int | None]:
    """Lock the session row; whether it and its record are as ``early`` read them, and the
    id of the entry stored under ``key`` (None: none), read in one statement.

    That statement comes after the one that takes the lock: on PostgreSQL a statement
    reads with the snapshot taken when it began, so counts read by the statement that
    waited for the lock would not see the entries of the writer it waited for (whose
    commit released it), and a decision on the record before them would stand; nor would
    it see that writer's key. (On SQLite the transaction began with the database's write
    lock, and reads after it.) SQL of its own: this runs while the write lock is held, and
    building the same query through the ORM (three counting subqueries) costs far more
    than running it."""
    if connection.features.has_select_for_update:
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_SQL, [session.pk])
    row = _stamp(session, key=key)
    if row is None:
        return False, None
    keyed = row[6]
    return row[:6] == early.stamp, keyed if isinstance(keyed, int) else None


_LOCK_SQL = f'SELECT id FROM "{InfusionSession._meta.db_table}" WHERE id = %s FOR UPDATE'


def _stamp(session: InfusionSession, *, key: str | None = None) -> tuple[object, ...] | None:
    """The session's state, version and order status, the counts of its entries, alarms
    and acknowledgements, and the id of the entry stored under ``key`` (None: none)."""
    with connection.cursor() as cursor:
        cursor.execute(_STAMP_SQL, [session.pk] * 3 + [key or None, session.pk])
        row = cursor.fetchone()
    return None if row is None else tuple(row)


def _stamp_sql() -> str:
    s, o = InfusionSession._meta.db_table, Order._meta.db_table
    e, a = TimelineEntry._meta.db_table, Alarm._meta.db_table
    k = AlarmAcknowledgement._meta.db_table
    return (f'SELECT s.state, s.version, o.status, '
            f'(SELECT COUNT(*) FROM "{e}" WHERE session_id = %s), '
            f'(SELECT COUNT(*) FROM "{a}" WHERE session_id = %s), '
            f'(SELECT COUNT(*) FROM "{k}" k JOIN "{a}" a ON a.id = k.alarm_id '
            f'WHERE a.session_id = %s), '
            f'(SELECT e.id FROM "{e}" e WHERE e.idempotency_key = %s) '
            f'FROM "{s}" s JOIN "{o}" o ON o.id = s.order_id WHERE s.id = %s')


_STAMP_SQL = _stamp_sql()


def _store(actor: Actor, snap: selectors.Snapshot, result: Accepted, key: str | None,
           device_id: str, after: Callable[..., None] | None) -> TimelineEntry:
    session = snap.session
    stored: list[TimelineEntry] = []
    for new in result.entries:
        payload = _payload(new.kind, new.payload)
        if new.kind == "stop":
            payload["prediction"] = _prediction_at_stop(snap, new.at)
        corrects = None if new.corrects is None else snap.rows[new.corrects]
        try:
            # No savepoint of its own: the refusal leaves the write's transaction (or its
            # savepoint, when a caller's transaction holds it), which is rolled back.
            entry = TimelineEntry.objects.create(
                session=session, kind=new.kind, occurred_at=new.at,
                recorded_by=actor.require_user(),
                payload=payload, corrects=corrects, correction_reason=new.reason,
                idempotency_key=(key or None) if not stored else None,
                device_id=device_id[:80])
        except IntegrityError as exc:
            raise UsageError("idempotency_key", "this key was already used") from exc
        stored.append(entry)
        audit_record(actor=actor.at(session.site.code), action=AuditAction(f"session.{new.kind}"),
                     object_type="session", object_id=session.pk,
                     detail={"patient": session.patient_id, "entry": entry.pk,
                             "corrects": new.corrects, "device": device_id or None})
    first = stored[0]
    if any(changes_summary(e.kind, e.corrects_id) for e in stored):
        outcome_summaries_refresh([session.series_id])
    _raise_alarms(snap, result.alarms, first)
    if result.state is not None:
        session.state = result.state.value
        session.version += 1
        session.save(update_fields=["state", "version"])
    if result.acceptance is not None:
        _store_limit_events(session, actor, result.acceptance)
    if after is not None:
        after(snap, first, result)
    return first


def _raise_alarms(snap: selectors.Snapshot, alarms: Sequence[NewAlarm],
                  entry: TimelineEntry | None) -> list[Alarm]:
    return [Alarm.objects.create(
        session=snap.session, entry=entry, kind=a.kind, message=a.message[:300],
        detail={**a.detail, "key": a.key, "protocol": snap.rules.ref}, raised_at=a.at)
        for a in alarms]


def _refused(actor: Actor, session: InfusionSession, refused: Refused) -> None:
    """Nothing is charted; the limit decisions are kept for review, and the refusal is in
    the audit trail. Raises :class:`Refusal`."""
    with transaction.atomic():
        if refused.acceptance is not None:
            _store_limit_events(session, actor, refused.acceptance)
        audit_record(actor=actor.at(session.site.code), action=AuditAction.SESSION_REFUSED,
                     object_type="session", object_id=session.pk,
                     detail={"patient": session.patient_id, "field": refused.field,
                             "reasons": list(refused.reasons)[:5]})
    raise Refusal(refused.field or "event", refused.reasons, refused.codes)


def _store_limit_events(session: InfusionSession, actor: Actor, acceptance: Any) -> None:
    limit_event_record(actor=actor, acceptance=acceptance,
                       protocol_version=session.order.protocol_version,
                       context=LimitEvent.Context.RATE_CHANGE, order=session.order,
                       session_id=session.pk, detail={"session": session.pk})


def _at(value: datetime | None) -> datetime:
    return clock.aware_or_none("occurred_at", value) or timezone.now()


# --------------------------------------------------------------------------- observations


def session_observe(*, actor: Actor, session: InfusionSession, kind: str,
                    data: Mapping[str, Any], occurred_at: datetime | None = None,
                    idempotency_key: str | None = None,
                    device_id: str = "") -> Written:
    """Record an observation: vital signs, a sedation / dissociation / pain score, an
    adverse event or a note; a drug given is recorded through :func:`session_give`
    (``premedication`` and ``rescue_medication`` here are passed on to it).

    The core raises the alarms the observation sets off (a vital sign beyond the protocol,
    a rise over the pre-infusion set, end-tidal CO2 missing, deep sedation).
    """
    if kind in ("premedication", "rescue_medication"):
        d = dict(data)
        return session_give(actor=actor, session=session, drug=str(d.get("drug", "")),
                            dose=d.get("dose"), unit=str(d.get("unit", "")),
                            route=str(d.get("route", "")),
                            indication=str(d.get("indication", "")),
                            occurred_at=occurred_at, idempotency_key=idempotency_key,
                            kinds=(kind,))
    if kind not in OBSERVATION_KINDS:
        raise UsageError("kind", f"{kind!r} is not an observation "
                                 f"({', '.join(OBSERVATION_KINDS)})")
    at = _at(occurred_at)
    raw = dict(data)
    if kind in ("vitals", "adverse_event", "note"):
        raw = _payload(kind, raw)
    observe = cmd.Observe(at, kind, raw)
    return _run(actor=actor, session=session, kinds=(kind,), key=idempotency_key,
                device_id=device_id, command=lambda snap: observe, light_command=observe)


def session_give(*, actor: Actor, session: InfusionSession, drug: str, dose: Any, unit: str,
                 route: str, indication: str = "", occurred_at: datetime | None = None,
                 idempotency_key: str | None = None,
                 kinds: Sequence[str] = ("premedication", "rescue_medication")
                 ) -> Written:
    """Give a premedication or an as-needed drug from the signed order's list; the core
    refuses a drug not on the order, a higher dose, ketamine as a rescue drug, a dose
    beyond the ordered count or interval, and a drug the patient is allergic to."""
    at = _at(occurred_at)
    if dose in (None, ""):
        raise UsageError("dose", "is required")
    number = exact(str(dose), field="dose")
    if number <= 0:
        raise UsageError("dose", "must be above zero")
    return _run(actor=actor, session=session, kinds=tuple(kinds), key=idempotency_key,
                command=lambda snap: cmd.Give(at, drug.strip(), number, unit.strip(),
                                              route.strip(), indication.strip()))


# --------------------------------------------------------------------------- state changes


def session_event(*, actor: Actor, session: InfusionSession, event: str,
                  data: Mapping[str, Any] | None = None, occurred_at: datetime | None = None,
                  expected_version: int | None = None,
                  idempotency_key: str | None = None) -> Written:
    """Record a state change: check in, pre-assessment, pause, resume, stop, begin
    recovery, transfer (with a reason), abandon (with a reason).

    Starting the infusion goes through :func:`session_rate_set` (it needs a rate check),
    discharge through :func:`session_discharge` (it needs the gate).
    """
    kinds = {v: k for k, v in STATE_KINDS.items()}
    kind = kinds.get(event, event)
    if kind in ("infusion_start", "discharge") or kind not in STATE_KINDS:
        raise UsageError("event", f"{event!r} is not recorded here")
    d = dict(data or {})
    if kind in ("transfer", "abandon"):
        d["reason"] = required_text("reason", str(d.get("reason", "")))
    if kind == "resume" and d.get("rate_mg_per_h") is not None:
        raise UsageError("rate_mg_per_h", "resume at the rate before the pause, then "
                                          "change the rate (a change is checked)")
    at = _at(occurred_at)

    def command(snap: selectors.Snapshot) -> cmd.Command:
        # The payload is checked once the state allows the event (else the core says why).
        valid = _payload(kind, d) if STATE_KINDS[kind] in snap.allowed else d
        if kind == "check_in":
            return cmd.CheckIn(at, str(valid.get("chair") or snap.session.chair))
        if kind == "pre_assessment":
            return cmd.PreAssess(at, valid)
        if kind == "pause":
            return cmd.Pause(at, str(valid.get("reason", "")))
        if kind == "resume":
            return cmd.Resume(at)
        if kind == "stop":
            return cmd.Stop(at, str(valid.get("reason", "")))
        if kind == "begin_recovery":
            return cmd.BeginRecovery(at, str(valid.get("note", "")))
        if kind == "transfer":
            return cmd.Transfer(at, valid["reason"], str(valid.get("destination", "")))
        return cmd.Abandon(at, valid["reason"])

    def after(snap: selectors.Snapshot, entry: TimelineEntry, result: Accepted) -> None:
        chair = entry.payload.get("chair")
        if kind == "check_in" and chair and chair != snap.session.chair:
            snap.session.chair = chair
            snap.session.save(update_fields=["chair"])

    written = _run(actor=actor, session=session, kinds=(kind,), key=idempotency_key,
                   expected_version=expected_version, command=command, after=after)
    if kind in ("stop", "transfer", "abandon") and not written.replayed:
        hooks.closed(actor, session)
    return written


def _prediction_at_stop(snap: selectors.Snapshot, at: datetime) -> dict[str, Any]:
    """The PK prediction at the end of the infusion, kept with the stop (model, version,
    patient and the rate segments it was computed from)."""
    # The PK bridge brings numpy and scipy: loaded when an infusion stops, not with the page.
    from ketamine_clinic.web.sessions.pk_bridge import predicted_concentration

    totals = mon.infusion_totals([*snap.rate_events, mon.RateEvent.stop(at)],
                                 weight_kg=snap.weight_kg,
                                 concentration_mg_per_ml=snap.concentration_mg_per_ml)
    stopped = SimpleNamespace(totals=totals, now=at, session=snap.session,
                              weight_kg=snap.weight_kg)
    return predicted_concentration(stopped).to_dict()


# --------------------------------------------------------------------------- rates


def _physician_name(physician: Any) -> str:
    """The co-signing physician's name ("" for none); callers outside the page (the API)
    pass a user, so the role is checked here too."""
    if physician is None:
        return ""
    if not physician.can(Capability.SIGN_ORDER):
        raise UsageError("physician", "the co-signature must be a physician's")
    return str(physician.get_full_name() or physician.username)


def physician_cosigner(request: Any, username: str, password: str) -> Any:
    """The physician whose username and password were typed at the bedside, or a
    :class:`UsageError` naming the field. Failed attempts count against the account's
    lock-out like failed log-ins."""
    user = authenticate(request, username=(username or "").strip(), password=password or "")
    if user is None:
        raise UsageError("physician_username", "the physician's user name or password is "
                                               "not right")
    if not user.can(Capability.SIGN_ORDER):
        raise UsageError("physician_username", "only a physician may co-sign a rate")
    return user


def session_rate_set(*, actor: Actor, session: InfusionSession, rate: str,
                     occurred_at: datetime | None = None, override_code: str = "",
                     override_text: str = "", confirmed: Sequence[str] = (),
                     expected_version: int | None = None,
                     idempotency_key: str | None = None, physician: Any = None,
                     physician_reason: str = "") -> Written:
    """Start the infusion, or change its rate, as the core decides.

    ``rate`` is typed in any form ("0.5 mg/kg/h", "60 mg/h", "25 mL/h"). Inside the signed
    order a rate carries the order's overrides; above it (its maximum, step or interval) a
    physician must co-sign (``physician``: an authenticated physician user, with
    ``physician_reason``). ``override_code``/``override_text`` are a nurse's reason for a
    lowered rate below a protocol minimum; ``confirmed`` the wrong-unit guards confirmed.
    """
    at = _at(occurred_at)
    name = _physician_name(physician)
    return _run(actor=actor, session=session, kinds=("infusion_start", "rate_change"),
                key=idempotency_key, expected_version=expected_version,
                command=lambda snap: cmd.SetRate(at, rate, override_code, override_text,
                                                 tuple(confirmed), name, physician_reason))


# --------------------------------------------------------------------------- corrections


def session_entry_correct(*, actor: Actor, session: InfusionSession, entry: TimelineEntry,
                          reason: str, data: Mapping[str, Any] | None = None,
                          occurred_at: datetime | None = None, entered_in_error: bool = False,
                          idempotency_key: str | None = None) -> Written:
    """Correct an entry (a new entry of the same kind that replaces it) or mark it entered
    in error. The original stays, struck through; a reason is required."""
    reason = required_text("reason", reason)
    if entry.session_id != session.pk:
        raise UsageError("entry", "belongs to another session")
    kind = "entered_in_error" if entered_in_error else entry.kind
    at = occurred_at or entry.occurred_at
    return _run(actor=actor, session=session, kinds=(kind,), key=idempotency_key,
                command=lambda snap: cmd.Correct(at, entry.pk, reason, dict(data or {}),
                                                 entered_in_error))


# --------------------------------------------------------------------------- alarms


def alarm_acknowledge(*, actor: Actor, alarm: Alarm, response: str) -> AlarmAcknowledgement:
    """A nurse acknowledges an alarm with the response taken. A retry by the same nurse
    with the same response returns the stored acknowledgement."""
    response = required_text("response", response)
    with transaction.atomic():
        session = InfusionSession.objects.select_for_update().select_related("site").get(
            pk=alarm.session_id)
        existing = AlarmAcknowledgement.objects.filter(alarm=alarm).select_related("by").first()
        if existing is not None:
            if existing.by_id == getattr(actor.user, "pk", None) and \
                    existing.response == response:
                return existing
            raise UsageError("alarm", f"already acknowledged by {existing.by.get_username()} "
                                      f"at {timezone.localtime(existing.at):%H:%M}")
        ack = AlarmAcknowledgement.objects.create(alarm=alarm, by=actor.require_user(),
                                                  response=response)
        audit_record(actor=actor.at(session.site.code), action=AuditAction.SESSION_ALARM_ACK,
                     object_type="alarm", object_id=alarm.pk,
                     detail={"session": session.pk, "patient": session.patient_id})
    return ack


def session_watch(*, session: InfusionSession, now: datetime | None = None,
                  snap: selectors.Snapshot | None = None) -> list[Alarm]:
    """Raise the alarms that time alone sets off (the core's ``watch``): vital signs
    overdue and a session-total limit reached. Each is raised once and kept until
    acknowledged. Nothing is written, and no row locked, unless an alarm is due."""
    if snap is None:
        snap = selectors.snapshot(session, now=now or timezone.now(), gates=False)
    wants = watch(snap.view)
    if not wants:
        return []
    with transaction.atomic():
        InfusionSession.objects.select_for_update().get(pk=session.pk)
        raised = set(Alarm.objects.filter(session=session, detail__key__in=[a.key for a in wants])
                     .values_list("detail__key", flat=True))
        return _raise_alarms(snap, [a for a in wants if a.key not in raised], None)


# --------------------------------------------------------------------------- recovery


def session_recovery_score(*, actor: Actor, session: InfusionSession, observed: Mapping[str, int],
                           score_name: str | None = None, occurred_at: datetime | None = None,
                           idempotency_key: str | None = None) -> Written:
    """Score a recovery assessment (the phase-I score, or the home-readiness score), item
    by item against the pre-infusion baseline."""
    at = _at(occurred_at)
    return _run(actor=actor, session=session, kinds=("recovery_score",), key=idempotency_key,
                command=lambda snap: cmd.ScoreRecovery(at, dict(observed), score_name or ""))


def session_discharge(*, actor: Actor, session: InfusionSession, escort_name: str,
                      instructions_given: bool, overrides: Mapping[str, str] | None = None,
                      occurred_at: datetime | None = None, expected_version: int | None = None,
                      idempotency_key: str | None = None) -> Discharged:
    """Discharge through the gate. ``overrides`` maps a failed gate item to a physician's
    written reason; only a physician may give them.

    The series' follow-ups due so far are booked with the discharge, in its transaction,
    by the follow-up area's at-discharge hook (``hooks.discharging``); the new ones are the
    result's ``follow_ups``.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if (v or "").strip()}
    user = actor.user
    if overrides and not (user is not None and user.can(Capability.OVERRIDE_DISCHARGE)):
        raise UsageError("overrides", "only a physician may discharge against a failed item")
    at = _at(occurred_at)
    name = user.display_name if user is not None and overrides else ""

    booked: list[hooks.FollowUpBooked] = []

    def after(snap: selectors.Snapshot, entry: TimelineEntry, result: Accepted) -> None:
        # The follow-ups this visit makes due, in the same transaction.
        booked.extend(hooks.discharging(actor, snap.session))

    written = _run(actor=actor, session=session, kinds=("discharge",), key=idempotency_key,
                   expected_version=expected_version, after=after,
                   command=lambda snap: cmd.Discharge(at, escort_name, instructions_given,
                                                      overrides, name))
    if not written.replayed:
        hooks.closed(actor, session)
    return Discharged(written.entry, written.replayed, tuple(booked))
