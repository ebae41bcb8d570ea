"""Gathering what the bedside core reads from stored rows: the signed order, the day's
facts and the timeline as core entries. No decisions here."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from django.utils import timezone

from ketamine_clinic.clinical.bedside.model import (
    DayFacts,
    Entry,
    MedicationLine,
    SignedOrder,
    StoredAlarm,
    TestResult,
)
from ketamine_clinic.clinical.bedside.rules import SessionRules
from ketamine_clinic.clinical.bedside.view import Record, record_more, record_of
from ketamine_clinic.clinical.limit_checks import Override
from ketamine_clinic.clinical.session import SessionState
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.web.orders.dosing import order_rate_rules
from ketamine_clinic.web.patients.models import TEST_KINDS, MeasurementKind, TestOutcome
from ketamine_clinic.web.protocols import selectors as protocols
from ketamine_clinic.web.sessions import hooks
from ketamine_clinic.web.sessions.models import Alarm, AlarmAcknowledgement, TimelineEntry


def order_verified(order: Any) -> bool:
    return (order.status == "active" and order.signed_by_id is not None
            and order.verified_by_id is not None and order.verified_by_id != order.signed_by_id)


def _lines(order: Any) -> tuple[MedicationLine, ...]:
    protocol = order.protocol_version.protocol()
    known = {("premedication", m.drug): m for m in protocol.premedications}
    known |= {("rescue", m.drug): m for m in protocol.rescue_medications}
    out = []
    for kind, rows in (("premedication", order.premedications),
                       ("rescue", order.rescue_medications)):
        for row in rows or ():
            m = known.get((kind, row["drug"]))
            max_doses = row.get("max_doses")
            if max_doses is None:
                max_doses = 1 if m is None or m.times is None else int(m.times.value)
            interval = row.get("min_interval_min")
            if interval is None and m is not None and m.min_interval_min is not None:
                interval = float(m.min_interval_min.value)
            out.append(MedicationLine(
                drug=str(row["drug"]), dose=exact(row["dose"], field="dose"),
                unit=str(row["unit"]), route=str(row["route"]), kind=kind,
                indication=str(row.get("indication", "")), max_doses=int(max_doses),
                min_interval=None if interval is None else timedelta(minutes=float(interval)),
                source=str(row.get("source", ""))))
    return tuple(out)


_orders: OrderedDict[tuple[int, str, int | None], SignedOrder] = OrderedDict()
_ORDERS_KEPT = 512  # cache size, not clinical


def signed_order_of(order: Any) -> SignedOrder:
    """The signed order as the core reads it (derived once per signed order)."""
    key = (order.pk, str(order.signed_at), order.verified_by_id)
    found = _orders.get(key)
    if found is not None:
        _orders.move_to_end(key)
        return found

    r = order_rate_rules(order)
    signed = order.signed_by
    made = SignedOrder(
        order_id=order.pk, verified=order_verified(order), weight_kg=r.weight_kg,
        concentration_mg_per_ml=r.concentration_mg_per_ml,
        planned_duration=timedelta(minutes=order.planned_duration_min),
        max_rate_mg_per_h=r.check.maximum.rate_mg_per_h,
        titration_rates_mg_per_h=r.ordered_rates_mg_per_h, order_limits=r.extra_limits,
        signed_overrides=tuple(Override(o["quantity"], o["reason_code"], o["free_text"])
                               for o in order.overrides or ()),
        lines=_lines(order),
        signed_by="" if signed is None else (signed.get_full_name() or signed.username))
    if order.status == "active":
        _orders[key] = made
        while len(_orders) > _ORDERS_KEPT:
            _orders.popitem(last=False)
    return made


def entries_as_core(rows: Any) -> tuple[Entry, ...]:
    return tuple(Entry(id=e.pk, kind=e.kind, at=e.occurred_at, payload=e.payload,
                       corrects=e.corrects_id, reason=e.correction_reason,
                       recorded_at=e.recorded_at) for e in rows)


def alarms_as_core(rows: Any) -> tuple[StoredAlarm, ...]:
    out = []
    for a in rows:
        try:
            acked = a.ack is not None
        except a.__class__.ack.RelatedObjectDoesNotExist:
            acked = False
        out.append(StoredAlarm(_alarm_key(a.kind, a.detail, a.pk), a.kind, a.message,
                               a.raised_at, acked))
    return tuple(out)


def _alarm_key(kind: str, detail: Any, pk: int) -> str:
    if detail.get("key"):
        return str(detail["key"])
    if kind.startswith("vital_") and detail.get("vital"):
        return f"{kind}:{detail['vital']}"
    if kind == "overdue":
        return f"overdue:{detail.get('due_at')}"
    return f"{kind}:{detail.get('due_at', pk)}"


# The records this process folded last, by session: entries are append-only, so a write
# reads only the rows added since and the core folds them onto the kept record (a long
# session is hundreds of rows, read and folded at every write).
_timelines: OrderedDict[int, Record] = OrderedDict()
_TIMELINES_KEPT = 256  # cache size, not clinical


def _as_entries(rows: Any) -> tuple[Entry, ...]:
    return tuple(Entry(id=e.pk, kind=e.kind, at=e.occurred_at, payload=e.payload,
                       corrects=e.corrects_id, reason=e.correction_reason,
                       recorded_at=e.recorded_at) for e in rows)


# The write path's reads, each run at every write, as SQL of their own through ``raw()``
# (the fields' own conversions apply: aware datetimes, parsed JSON): building the same
# query through the ORM costs more than running it.
def _entries_sql() -> str:
    t = TimelineEntry._meta.db_table
    return (f'SELECT id, kind, occurred_at, payload, corrects_id, correction_reason, '
            f'recorded_at FROM "{t}" WHERE session_id = %s AND id >= %s ORDER BY id')


def _alarms_sql() -> str:
    a, k = Alarm._meta.db_table, AlarmAcknowledgement._meta.db_table
    return (f'SELECT a.id, a.kind, a.message, a.detail, a.raised_at, k.id AS acknowledgement '
            f'FROM "{a}" a LEFT JOIN "{k}" k ON k.alarm_id = a.id WHERE a.session_id = %s '
            f'ORDER BY a.raised_at DESC, a.id DESC')


_ENTRIES_SQL = _entries_sql()
_ALARMS_SQL = _alarms_sql()


def _entries_from(session_id: int, first_id: int) -> tuple[Entry, ...]:
    """The session's entries from ``first_id`` on (0: all), in id order."""
    return _as_entries(TimelineEntry.objects.raw(_ENTRIES_SQL, [session_id, first_id]))


def record_as_core(session_id: int, *, fresh: bool = False) -> Record:
    """The session's timeline folded by the core (``bedside.view.Record``).

    The record this process folded last is kept; the rows after its last entry are read
    again with it and folded onto it (``record_more``), and if that row is not the one
    kept (a database restored, a test's rows rolled back and their ids used again) the
    whole timeline is read and folded. ``fresh`` reads and folds the whole timeline. A row
    committed late with an id below the last one kept (two writers of one session at once;
    every write holds the session's lock, so only a writer that does not would do this)
    is not seen here: a write decided on this read compares the count of entries under
    its lock (``services._locked_as_read``); a write decided under the lock reads ``fresh``.
    """
    known = None if fresh else _timelines.get(session_id)
    record = None
    if known is not None and known.folded:
        last = known.folded[-1].entry
        rows = _entries_from(session_id, last.id)
        if rows and rows[0] == last:
            record = record_more(known, rows[1:])
    if record is None:
        record = record_of(_entries_from(session_id, 0))
    _timelines[session_id] = record
    _timelines.move_to_end(session_id)
    while len(_timelines) > _TIMELINES_KEPT:
        _timelines.popitem(last=False)
    return record


def stored_alarms_as_core(session_id: int) -> tuple[StoredAlarm, ...]:
    """The session's alarms as the core reads them (newest first), with whether each is
    acknowledged (the query's ``acknowledgement`` column: the acknowledgement's id)."""
    return tuple(StoredAlarm(_alarm_key(a.kind, a.detail, a.pk), a.kind, a.message, a.raised_at,
                             vars(a)["acknowledgement"] is not None)
                 for a in Alarm.objects.raw(_ALARMS_SQL, [session_id]))


def day_facts(session: Any, rules: SessionRules, now: datetime) -> DayFacts:
    """The patient's facts on the day of ``session``, as the start gate and the checks read
    them."""
    patient, pv, series = session.patient, session.order.protocol_version, session.series
    today = timezone.localdate(now)
    current = protocols.screening_current(patient, pv, series=series, today=today)
    problem = None
    if current is None:
        status = protocols.screening_latest_status(patient, pv, series=series, today=today)
        problem = (f"the patient was never screened under {pv.name} v{pv.version}"
                   if status is None else "; ".join(status.blocking)
                   or "the newest screening does not allow treatment")
    conditions = () if current is None else tuple(
        str(r["rule"]) for r in current.reasons if r.get("severity") == "condition")
    rule = rules.pregnancy_rule
    may_be_pregnant = patient.sex_at_birth in ("female", "intersex") and (
        rule is not None and (rule.threshold_years is None
                              or patient.age_on(today) < rule.threshold_years.value))
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    measurements = list(patient.measurements.filter(entered_in_error_at__isnull=True,
                                                    kind__in=[*TEST_KINDS, "pregnancy_status"]))
    pregnancy = [m for m in measurements if m.kind == MeasurementKind.PREGNANCY_STATUS
                 and m.measured_at >= start]
    pregnancy.sort(key=lambda m: (m.measured_at, m.pk))
    tests = tuple(TestResult(m.kind, timezone.localdate(m.measured_at),
                             m.value_code == TestOutcome.IN_RANGE, m.note)
                  for m in measurements if m.kind in TEST_KINDS)
    others = TimelineEntry.objects.filter(session__series_id=session.series_id,
                                          corrects__isnull=True,
                                          kind__in=("infusion_start", "stop")) \
        .exclude(session_id=session.pk).values_list("kind", "occurred_at", "payload")
    previous, given = [], Fraction(0)
    for kind, at, payload in others:
        if kind == "infusion_start":
            previous.append(timezone.localdate(at))
        elif payload.get("totals", {}).get("total_mg_exact"):
            given += Fraction(payload["totals"]["total_mg_exact"])
    return DayFacts(
        consent_on_file=protocols.consent_current(patient, pv) is not None,
        screening_problem=problem, screening_conditions=conditions,
        may_be_pregnant=may_be_pregnant,
        pregnancy_today=pregnancy[-1].value_code if pregnancy else None,
        allergies=tuple(protocols.allergy_records(patient)),
        tests=tests, previous_sessions=tuple(sorted(previous)), series_given_mg=given,
        today=today, time_zone=session.site.time_zone or timezone.get_current_timezone_name(),
        # Other records are asked only where the discharge gate is judged.
        record_holds=hooks.close_holds(session)
        if session.state == SessionState.RECOVERING.value else ())
