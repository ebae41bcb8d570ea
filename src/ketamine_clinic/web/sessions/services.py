"""Writes to infusion sessions. Each runs in one transaction and leaves an audit entry.

Concurrency: every write first locks the session row (``select_for_update``), so writers
of one session queue up instead of interleaving; each then re-derives the state from the
timeline and decides. Observations from two nurses are both kept. A state change may
carry ``expected_version`` (the version the nurse's page showed): if someone else changed
the state in between, the change is refused and the message says what happened.

Retries: every write takes an ``idempotency_key``. A key already stored for the same
session and kind returns the stored entry (marked ``replayed``) and writes nothing; a key
used for something else is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical import scales, units
from ketamine_clinic.clinical.discharge import Override, no_driving_until, score_discharge
from ketamine_clinic.clinical.dosing import check_rate
from ketamine_clinic.clinical.limit_checks import Override as LimitOverride
from ketamine_clinic.clinical.limit_checks import accept
from ketamine_clinic.clinical.session import (
    SessionEvent,
    SessionState,
    TransitionContext,
    TransitionRefused,
    transition,
)
from ketamine_clinic.clinical.units import parse_rate
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.orders.models import LimitEvent, Order
from ketamine_clinic.web.orders.services import limit_event_record
from ketamine_clinic.web.outcomes.services import followups_schedule
from ketamine_clinic.web.sessions import selectors
from ketamine_clinic.web.sessions.models import (
    Alarm,
    AlarmAcknowledgement,
    InfusionSession,
    TimelineEntry,
)
from ketamine_clinic.web.sessions.rules import order_dosing
from ketamine_clinic.web.sessions.schemas import (
    CORRECTABLE_KINDS,
    KINDS,
    OBSERVATION_KINDS,
    RETRACTABLE_KINDS,
    STATE_KINDS,
    Payload,
)

# A minute's grace for clocks that disagree slightly between a device and the server.
CLOCK_GRACE = timedelta(minutes=1)

VITAL_LABELS = {
    "systolic_bp_mmhg": "Systolic BP", "diastolic_bp_mmhg": "Diastolic BP",
    "heart_rate_per_min": "Heart rate", "respiratory_rate_per_min": "Respiratory rate",
    "spo2_percent": "SpO2", "etco2_mmhg": "End-tidal CO2", "temperature_c": "Temperature",
}


def _actor_at(actor: Actor, session: InfusionSession) -> Actor:
    return Actor(user=actor.user, client_address=actor.client_address,
                 site_code=session.site.code)


def _require_text(field: str, value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise UsageError(field, "is required")
    return value


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
    if timezone.is_naive(scheduled_for):
        raise UsageError("scheduled_for", "must carry a time zone")
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
            created_by=actor.user)
        audit_record(actor=_actor_at(actor, session), action="session.schedule",
                     object_type="session", object_id=session.pk,
                     detail={"patient": order.patient_id, "order": order.pk,
                             "visit": session.visit_number})
    return session


# --------------------------------------------------------------------------- the core write


@dataclass
class _Locked:
    session: InfusionSession
    snap: selectors.Snapshot
    again: TimelineEntry | None = None  # the stored answer to a retried request


def _lock(session: InfusionSession, now: datetime, key: str | None = None,
          kind: str | tuple[str, ...] = "") -> _Locked:
    """Lock the session row (writers queue here), then look for a retried request."""
    locked = (InfusionSession.objects.select_for_update()
              .select_related("order", "order__protocol_version", "patient", "site", "series")
              .get(pk=session.pk))
    again = _replayed(locked, key, kind) if kind else None
    snap = selectors.snapshot(locked, now=now, gates=False) if again is None else None
    return _Locked(locked, snap, again)  # type: ignore[arg-type]


def _replayed(session: InfusionSession, key: str | None,
              kind: str | tuple[str, ...]) -> TimelineEntry | None:
    if not key:
        return None
    found = TimelineEntry.objects.filter(idempotency_key=key).first()
    if found is None:
        return None
    kinds = (kind,) if isinstance(kind, str) else kind
    if found.session_id != session.pk or found.kind not in kinds:
        raise UsageError("idempotency_key", "this key was already used for another request")
    found.replayed = True  # type: ignore[attr-defined]
    return found


def _check_time(field: str, at: datetime, snap: selectors.Snapshot) -> datetime:
    if timezone.is_naive(at):
        raise UsageError(field, "must carry a time zone")
    if at > snap.now + CLOCK_GRACE:
        raise UsageError(field, "is in the future")
    checkins = snap.of_kind("check_in")
    if checkins and at < checkins[0].occurred_at:
        raise UsageError(field, "is before the patient was checked in "
                                f"({timezone.localtime(checkins[0].occurred_at):%H:%M})")
    return at


def _state_check(snap: selectors.Snapshot, expected_version: int | None) -> None:
    """Refuse a state change decided on a stale page, saying what changed since."""
    if expected_version is None or expected_version == snap.session.version:
        return
    last = max((e for e in snap.views if e.entry.kind in STATE_KINDS or
                e.entry.kind == "premedication"), key=lambda v: v.entry.pk, default=None)
    who = ""
    if last is not None:
        e = last.entry
        who = (f": {e.recorded_by.get_full_name() or e.recorded_by.username} recorded "
               f"{e.kind.replace('_', ' ')} at {timezone.localtime(e.recorded_at):%H:%M}")
    raise UsageError("expected_version",
                     f"the session changed since you loaded it (now {snap.state.value}{who}); "
                     "review and try again")


def _append(locked: _Locked, *, actor: Actor, kind: str, payload: dict[str, Any],
            occurred_at: datetime, idempotency_key: str | None, device_id: str = "",
            corrects: TimelineEntry | None = None, reason: str = "",
            new_state: SessionState | None = None) -> TimelineEntry:
    session = locked.session
    try:
        with transaction.atomic():
            entry = TimelineEntry.objects.create(
                session=session, kind=kind, occurred_at=occurred_at, recorded_by=actor.user,
                payload=payload, corrects=corrects, correction_reason=reason,
                idempotency_key=idempotency_key or None, device_id=device_id[:80])
    except IntegrityError as exc:
        raise UsageError("idempotency_key", "this key was already used") from exc
    if new_state is not None:
        session.state = new_state.value
        session.version += 1
        session.save(update_fields=["state", "version"])
    audit_record(actor=_actor_at(actor, session), action=f"session.{kind}",
                 object_type="session", object_id=session.pk,
                 detail={"patient": session.patient_id, "entry": entry.pk,
                         "corrects": corrects.pk if corrects else None,
                         "device": device_id or None})
    return entry


def _transition(locked: _Locked, event: SessionEvent, **ctx: Any) -> SessionState:
    context = TransitionContext(premedication_required=locked.snap.rules.premedication_required,
                                **ctx)
    return transition(locked.snap.state, event, context)


# --------------------------------------------------------------------------- observations


def session_observe(*, actor: Actor, session: InfusionSession, kind: str,
                    data: Mapping[str, Any], occurred_at: datetime | None = None,
                    idempotency_key: str | None = None,
                    device_id: str = "") -> TimelineEntry:
    """Record an observation: vital signs, a sedation / dissociation / pain score, an
    adverse event, a note, or a medication given.

    Vital signs raise an alarm for each protocol threshold crossed (unless that alarm is
    already raised and not yet acknowledged). The first premedication after the
    pre-assessment moves the session to ``premedication_given``.
    """
    if kind not in OBSERVATION_KINDS:
        raise UsageError("kind", f"{kind!r} is not an observation "
                                 f"({', '.join(OBSERVATION_KINDS)})")
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(session, now, idempotency_key, kind)
        if locked.again is not None:
            return locked.again
        snap = locked.snap
        if snap.state.is_final:
            raise UsageError("kind", f"the session is {snap.state.value}: nothing more can "
                                     "be charted (add a correction to an entry instead)")
        at = _check_time("occurred_at", occurred_at or now, snap)
        payload, new_state = _observation_payload(locked, kind, dict(data), at)
        entry = _append(locked, actor=actor, kind=kind, payload=payload, occurred_at=at,
                        idempotency_key=idempotency_key, device_id=device_id,
                        new_state=new_state)
        if kind == "vitals":
            _raise_vital_alarms(locked, entry)
    return entry


def _observation_payload(locked: _Locked, kind: str, data: dict[str, Any],
                         at: datetime) -> tuple[dict[str, Any], SessionState | None]:
    snap, rules = locked.snap, locked.snap.rules
    new_state = None
    if kind == "vitals":
        payload = _payload(kind, data)
        selectors.vital_signs_of(_fake(payload, at))  # plausibility, diastolic < systolic
    elif kind == "sedation":
        data.setdefault("scale", rules.sedation_scale)
        if data["scale"] != rules.sedation_scale:
            raise UsageError("scale", f"the protocol scores sedation with "
                                      f"{scales.get_scale(rules.sedation_scale).short}")
        scored = scales.score(rules.sedation_scale, data.get("score"))
        payload = _payload(kind, {"scale": data["scale"], "score": scored.value})
        payload["result"] = scored.to_dict()
    elif kind == "dissociation":
        items = {int(k): v for k, v in (data.get("items") or {}).items()}
        scored = scales.score_items(rules.dissociation_scale, items)
        payload = _payload(kind, {"scale": rules.dissociation_scale,
                                  "items": {str(k): v for k, v in scored.items},
                                  "total": scored.value})
        payload["result"] = scored.to_dict()
    elif kind == "pain":
        if not data.get("phase"):
            data["phase"] = _pain_phase(snap.state)
        scored = scales.score("pain_nrs", data.get("nrs"))
        payload = _payload(kind, {"nrs": scored.value, "phase": data["phase"]})
    elif kind in ("premedication", "rescue_medication"):
        payload = _payload(kind, data)
        if kind == "premedication" and snap.state is SessionState.PRE_ASSESSMENT_COMPLETE:
            new_state = _transition(locked, SessionEvent.GIVE_PREMEDICATION)
    else:
        payload = _payload(kind, data)
    return payload, new_state


def _pain_phase(state: SessionState) -> str:
    if state in selectors.PRE_START_STATES:
        return "pre"
    if state in (SessionState.INFUSING, SessionState.PAUSED):
        return "during"
    return "recovery"


def _fake(payload: dict[str, Any], at: datetime) -> TimelineEntry:
    return TimelineEntry(kind="vitals", occurred_at=at, payload=payload)


def _raise_vital_alarms(locked: _Locked, entry: TimelineEntry) -> list[Alarm]:
    vs = selectors.vital_signs_of(entry)
    open_keys = {(a.detail.get("vital"), a.detail.get("bound"))
                 for a in locked.snap.unacknowledged if a.kind.startswith("vital_")}
    raised = []
    for alarm in mon.vital_alarms(vs, locked.snap.rules.vital_thresholds):
        if (alarm.vital, alarm.bound) in open_keys:
            continue  # the same alarm is still waiting for a nurse
        sign = "<" if alarm.bound == "low" else ">"
        message = (f"{VITAL_LABELS.get(alarm.vital, alarm.vital)} {alarm.value:g} {sign} "
                   f"{alarm.threshold:g} at {timezone.localtime(alarm.at):%H:%M}")
        raised.append(Alarm.objects.create(
            session=locked.session, entry=entry, kind=f"vital_{alarm.bound}",
            message=message[:300], detail={**alarm.to_dict(), "protocol": locked.snap.rules.ref},
            raised_at=entry.occurred_at))
    return raised


# --------------------------------------------------------------------------- state changes


def session_event(*, actor: Actor, session: InfusionSession, event: str,
                  data: Mapping[str, Any] | None = None, occurred_at: datetime | None = None,
                  expected_version: int | None = None,
                  idempotency_key: str | None = None) -> TimelineEntry:
    """Record a state change: check in, pre-assessment, pause, resume, stop, begin
    recovery, transfer (with a reason), abandon (with a reason).

    Starting the infusion goes through :func:`session_rate_set` (it needs a rate check),
    discharge through :func:`session_discharge` (it needs the gate).
    """
    kinds = {v: k for k, v in STATE_KINDS.items()}
    kind = kinds.get(event, event)
    if kind in ("infusion_start", "discharge") or kind not in STATE_KINDS:
        raise UsageError("event", f"{event!r} is not recorded here")
    data = dict(data or {})
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(session, now, idempotency_key, kind)
        if locked.again is not None:
            return locked.again
        snap = locked.snap
        _state_check(snap, expected_version)
        at = _check_time("occurred_at", occurred_at or now, snap)
        if kind in ("transfer", "abandon"):
            data["reason"] = _require_text("reason", str(data.get("reason", "")))
        if kind == "resume" and data.get("rate_mg_per_h") is not None:
            raise UsageError("rate_mg_per_h", "resume at the rate before the pause, then "
                                              "change the rate (a change is checked)")
        new_state = _transition(locked, SessionEvent(STATE_KINDS[kind]),
                                reason=str(data.get("reason", "")))
        if kind in ("pause", "resume", "stop"):
            # The core refuses an impossible pump history (e.g. a pause dated before the
            # last rate change); a stop stores the exact totals it closes with.
            events = [*snap.rate_events, _rate_event(kind, at)]
            totals = mon.infusion_totals(events, weight_kg=snap.weight_kg,
                                         concentration_mg_per_ml=snap.concentration_mg_per_ml,
                                         at=max(at, now) if kind != "stop" else None)
            if kind == "stop":
                data["totals"] = totals.to_dict()
                data["prediction"] = _prediction_at_stop(snap, events, at)
        if kind == "check_in" and not data.get("chair"):
            data["chair"] = locked.session.chair
        payload = _payload(kind, data)
        entry = _append(locked, actor=actor, kind=kind, payload=payload, occurred_at=at,
                        idempotency_key=idempotency_key, new_state=new_state)
        if kind == "check_in" and payload.get("chair") and payload["chair"] != session.chair:
            locked.session.chair = payload["chair"]
            locked.session.save(update_fields=["chair"])
    return entry


def _prediction_at_stop(snap: selectors.Snapshot, events: list[mon.RateEvent],
                        at: datetime) -> dict[str, Any]:
    """The PK prediction at the end of the infusion, kept with the stop (model, version,
    patient and the rate segments it was computed from)."""
    from dataclasses import replace

    from ketamine_clinic.web.sessions.pk_bridge import predicted_concentration

    totals = mon.infusion_totals(events, weight_kg=snap.weight_kg,
                                 concentration_mg_per_ml=snap.concentration_mg_per_ml)
    return predicted_concentration(replace(snap, totals=totals, now=at)).to_dict()


def _rate_event(kind: str, at: datetime) -> mon.RateEvent:
    if kind == "pause":
        return mon.RateEvent.pause(at)
    if kind == "resume":
        return mon.RateEvent.resume(at)
    return mon.RateEvent.stop(at)


# --------------------------------------------------------------------------- rates


def _series_given_mg(session: InfusionSession) -> Fraction:
    """Ketamine given in the series' other sessions (their stop entries' exact totals)."""
    total = Fraction(0)
    stops = TimelineEntry.objects.filter(session__series_id=session.series_id, kind="stop",
                                         corrects__isnull=True).exclude(session=session)
    for stop in stops:
        exact_total = stop.payload.get("totals", {}).get("total_mg_exact")
        if exact_total:
            total += Fraction(exact_total)
    return total


def _limit_message(check: dict[str, Any]) -> str:
    side = "above" if check["side"] == "upper" else "below"
    return (f"{check['limit']} {check['value']:g} is {side} the {check['kind']} limit "
            f"{check['bound']:g} ({check['source']})")


def _store_limit_events(session: InfusionSession, actor: Actor, acceptance: Any,
                        protocol_version: Any) -> None:
    limit_event_record(actor=actor, acceptance=acceptance, protocol_version=protocol_version,
                       context=LimitEvent.Context.RATE_CHANGE, order=session.order,
                       session_id=session.pk, detail={"session": session.pk})


def session_rate_set(*, actor: Actor, session: InfusionSession, rate: str,
                     occurred_at: datetime | None = None, override_code: str = "",
                     override_text: str = "", confirmed: Sequence[str] = (),
                     expected_version: int | None = None,
                     idempotency_key: str | None = None) -> TimelineEntry:
    """Start the infusion, or change its rate, after the one shared rate check.

    ``rate`` is typed in any form ("0.5 mg/kg/h", "60 mg/h", "25 mL/h"). The rate is
    judged by ``clinical.dosing.check_rate`` against the protocol and the signed order
    (hard limits block; an exceeded soft limit needs ``override_code`` and
    ``override_text``; a wrong-unit guard that asks needs its code in ``confirmed``).
    Blocks and unresolved soft-limit hits are kept as ``LimitEvent`` rows even though
    nothing is charted.
    """
    now = timezone.now()
    refused: tuple[Any, str] | None = None
    with transaction.atomic():
        # A retry of the start finds the session infusing: either kind answers it.
        locked = _lock(session, now, idempotency_key, ("infusion_start", "rate_change"))
        if locked.again is not None:
            return locked.again
        snap = locked.snap
        starting = snap.state in (SessionState.PRE_ASSESSMENT_COMPLETE,
                                  SessionState.PREMEDICATION_GIVEN)
        kind = "infusion_start" if starting else "rate_change"
        _state_check(snap, expected_version)
        if snap.state is SessionState.PAUSED:
            raise UsageError("event", "the infusion is paused: resume it first")
        if not starting and snap.state is not SessionState.INFUSING:
            raise UsageError("event", f"cannot change the rate of a session that is "
                                      f"{snap.state.value}")
        at = _check_time("occurred_at", occurred_at or now, snap)
        new_state = None
        if starting:
            gate = selectors.start_gate_for(snap)
            new_state = _transition(locked, SessionEvent.START_INFUSION, start_gate=gate)
        parsed = parse_rate(rate, field="rate")
        dosing = order_dosing(locked.session.order)
        previous = None
        since = None
        given = Fraction(0)
        remaining_h = dosing.planned_duration_h
        if snap.totals is not None:
            events = [*snap.rate_events, mon.RateEvent.rate_change(at, 1)]
            mon.infusion_totals(events, weight_kg=snap.weight_kg,  # refuses a bad history
                                concentration_mg_per_ml=snap.concentration_mg_per_ml, at=at)
            upto = mon.infusion_totals(snap.rate_events, weight_kg=snap.weight_kg,
                                       concentration_mg_per_ml=snap.concentration_mg_per_ml,
                                       at=at)
            previous = upto.current_rate_mg_per_h
            set_at = max(e.at for e in snap.rate_events
                         if e.kind in (mon.RateEventKind.START, mon.RateEventKind.RATE_CHANGE,
                                       mon.RateEventKind.RESUME))
            since = units.min_from_h(units.h_from_timedelta(at - set_at))
            given = upto.total_mg
            assert snap.planned_end is not None
            remaining_h = units.h_from_timedelta(max(snap.planned_end - at, timedelta(0)))
        check = check_rate(
            parsed, rules=dosing.rules, weight_kg=dosing.weight_kg,
            concentration_mg_per_ml=dosing.concentration_mg_per_ml,
            previous_rate_mg_per_h=previous, minutes_since_last_change=since,
            session_given_mg=given, session_remaining_h=remaining_h,
            series_given_mg=_series_given_mg(locked.session),
            extra_limits=dosing.extra_limits,
            reference_rates_mg_per_h=dosing.ordered_rates_mg_per_h)
        overrides = []
        if override_code or override_text.strip():
            overrides = [LimitOverride(c.limit.quantity, override_code, override_text)
                         for c in check.needs_override]
            if not overrides:
                raise UsageError("override_code", "no soft limit is exceeded: nothing to "
                                                  "override")
        asking = {c.code for c in check.needs_confirmation}
        acceptance = accept(check.limit_checks, check.cross_checks, overrides=overrides,
                            confirmed=[c for c in confirmed if c in asking])
        if not acceptance.accepted:
            refused = (acceptance, _refusal(check, acceptance))
        else:
            forms = check.forms
            payload = _payload(kind, {
                "rate_mg_per_h": float(forms.rate_mg_per_h),
                "pump_rate_ml_per_h": float(forms.pump_rate_ml_per_h),
                "rate_mg_per_kg_per_h": float(forms.rate_mg_per_kg_per_h),
                "rate_mg_per_h_exact": str(forms.rate_mg_per_h),
                "rate_entered": rate.strip(),
                "rate_check": check.to_dict(),
                "acceptance": acceptance.to_dict(),
                "override_code": override_code if overrides else "",
                "override_text": override_text.strip() if overrides else "",
                "confirmed": sorted(asking),
            })
            entry = _append(locked, actor=actor, kind=kind, payload=payload, occurred_at=at,
                            idempotency_key=idempotency_key, new_state=new_state)
            _store_limit_events(locked.session, actor, acceptance,
                                locked.session.order.protocol_version)
            return entry
    # Refused: nothing is charted, but the limit decisions are kept for quality review.
    acceptance, message = refused
    with transaction.atomic():
        _store_limit_events(session, actor, acceptance, session.order.protocol_version)
        audit_record(actor=_actor_at(actor, session), action="session.rate_refused",
                     object_type="session", object_id=session.pk,
                     detail={"patient": session.patient_id, "rate": rate,
                             "outcome": acceptance.outcome.value})
    raise UsageError("rate", message)


def _refusal(check: Any, acceptance: Any) -> str:
    forms = check.forms
    head = (f"{float(forms.rate_mg_per_kg_per_h):.3g} mg/kg/h = "
            f"{float(forms.rate_mg_per_h):.4g} mg/h = {float(forms.pump_rate_ml_per_h):.4g} mL/h")
    blocks = [c.to_dict() for c in check.limit_checks if c.blocks]
    if blocks:
        return f"{head}: blocked — " + "; ".join(_limit_message(b) for b in blocks)
    parts = []
    if acceptance.missing_overrides:
        parts.append("needs an override (reason code and text): " + "; ".join(
            _limit_message(c.to_dict()) for c in acceptance.missing_overrides))
    if acceptance.missing_confirmations:
        parts.append("confirm the rate: " + "; ".join(
            c.message for c in acceptance.missing_confirmations))
    return f"{head}: " + " — ".join(parts)


# --------------------------------------------------------------------------- corrections


def session_entry_correct(*, actor: Actor, session: InfusionSession, entry: TimelineEntry,
                          reason: str, data: Mapping[str, Any] | None = None,
                          occurred_at: datetime | None = None, entered_in_error: bool = False,
                          idempotency_key: str | None = None) -> TimelineEntry:
    """Correct an entry (a new entry of the same kind that replaces it) or mark it entered
    in error. The original stays, struck through; a reason is required."""
    reason = _require_text("reason", reason)
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(session, now)
        kind = "entered_in_error" if entered_in_error else entry.kind
        again = _replayed(locked.session, idempotency_key, kind)
        if again is not None:
            return again
        snap = locked.snap
        if entry.session_id != locked.session.pk:
            raise UsageError("entry", "belongs to another session")
        allowed = RETRACTABLE_KINDS if entered_in_error else CORRECTABLE_KINDS
        if entry.kind not in allowed:
            raise UsageError("entry", f"a {entry.kind.replace('_', ' ')} entry cannot be "
                                      f"{'retracted' if entered_in_error else 'corrected'}; "
                                      "add a note instead")
        view = next(v for v in snap.views if v.entry.pk == entry.pk)
        if view.status != "effective":
            hint = f" (correct entry {view.replaced_by} instead)" if view.replaced_by else ""
            raise UsageError("entry", f"this entry is {view.status.replace('_', ' ')}{hint}")
        at = _check_time("occurred_at", occurred_at or entry.occurred_at, snap)
        if entered_in_error:
            payload: dict[str, Any] = {}
        else:
            merged = {**entry.payload, **dict(data or {})}
            payload = _corrected_payload(locked, entry, merged, at)
        probe = TimelineEntry(pk=-1, session=locked.session, kind=kind, occurred_at=at,
                              payload=payload, corrects=entry, correction_reason=reason)
        # The corrected record must still make sense: fold it and recompute the dose.
        after = selectors.snapshot(locked.session, now=now, rules=snap.rules, gates=False,
                                   extra_entries=[_probe(probe)])
        del after
        result = _append(locked, actor=actor, kind=kind, payload=payload, occurred_at=at,
                         idempotency_key=idempotency_key, corrects=entry, reason=reason)
        if kind == "vitals":
            _raise_vital_alarms(locked, result)
    return result


def _probe(entry: TimelineEntry) -> TimelineEntry:
    entry.pk = 2**62  # sorts after every stored entry
    entry.id = entry.pk
    return entry


def _corrected_payload(locked: _Locked, entry: TimelineEntry, merged: dict[str, Any],
                       at: datetime) -> dict[str, Any]:
    kind = entry.kind
    if kind in OBSERVATION_KINDS:
        merged.pop("result", None)
        if kind == "dissociation":
            merged = {"items": merged.get("items", {})}
        payload, _ = _observation_payload(locked, kind, merged, at)
        return payload
    if kind in ("infusion_start", "rate_change"):
        # What the pump actually ran: the three forms recomputed from the corrected rate,
        # the original check kept with it.
        dosing = order_dosing(locked.session.order)
        parsed = parse_rate(str(merged.get("rate_entered") or ""), field="rate")
        from ketamine_clinic.clinical.units import rate_forms

        forms = rate_forms(parsed, weight_kg=dosing.weight_kg,
                           concentration_mg_per_ml=dosing.concentration_mg_per_ml)
        merged.update({"rate_mg_per_h": float(forms.rate_mg_per_h),
                       "pump_rate_ml_per_h": float(forms.pump_rate_ml_per_h),
                       "rate_mg_per_kg_per_h": float(forms.rate_mg_per_kg_per_h),
                       "rate_mg_per_h_exact": str(forms.rate_mg_per_h)})
        return _payload(kind, merged)
    if kind == "recovery_score":
        raise UsageError("entry", "record a new recovery assessment instead")
    return _payload(kind, merged)


# --------------------------------------------------------------------------- alarms


def alarm_acknowledge(*, actor: Actor, alarm: Alarm, response: str) -> AlarmAcknowledgement:
    """A nurse acknowledges an alarm with the response taken. A retry by the same nurse
    with the same response returns the stored acknowledgement."""
    response = _require_text("response", response)
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
        ack = AlarmAcknowledgement.objects.create(alarm=alarm, by=actor.user,
                                                  response=response)
        audit_record(actor=_actor_at(actor, session), action="session.alarm_ack",
                     object_type="alarm", object_id=alarm.pk,
                     detail={"session": session.pk, "patient": session.patient_id})
    return ack


def session_watch(*, session: InfusionSession, now: datetime | None = None,
                  snap: selectors.Snapshot | None = None) -> list[Alarm]:
    """Raise the alarms that time alone sets off: vital signs overdue against the
    protocol's monitoring interval, and the session-total limit reached. Each is raised
    once (per due time / per limit) and kept until acknowledged.

    ``snap`` (a snapshot already derived, e.g. for the board) saves deriving it again;
    nothing is written, and no row locked, unless an alarm is due.
    """
    if snap is None:
        snap = selectors.snapshot(session, now=now or timezone.now(), gates=False)
    now = snap.now
    raised: list[Alarm] = []
    raised_keys = {(a.kind, a.detail.get("due_at")) for a in snap.alarms}
    wants = []
    if snap.overdue is not None and snap.overdue.overdue:
        due = snap.overdue.due_at
        wants.append(("overdue", {"due_at": due.isoformat(), **snap.overdue.to_dict()},
                      f"Vital signs overdue since {timezone.localtime(due):%H:%M} "
                      f"(every {snap.rules.monitoring_interval / timedelta(minutes=1):g} min)"))
    if snap.limit_check is not None and snap.totals is not None:
        for finding in snap.limit_check.findings:
            limit = finding.check.limit
            if limit.upper is None:
                continue
            scale = snap.weight_kg if limit.quantity.endswith("per_kg") else 1
            if snap.totals.total_mg / scale >= Fraction(str(limit.upper)):
                wants.append(("dose_limit", {"due_at": limit.quantity, "limit":
                                             finding.check.to_dict()},
                              f"Session total reached the {limit.kind.value} limit "
                              f"{limit.quantity} {limit.upper:g} ({limit.source})"))
    wants = [w for w in wants if (w[0], w[1]["due_at"]) not in raised_keys]
    if not wants:
        return raised
    with transaction.atomic():
        InfusionSession.objects.select_for_update().get(pk=session.pk)
        for kind, detail, message in wants:
            if Alarm.objects.filter(session=session, kind=kind,
                                    detail__due_at=detail["due_at"]).exists():
                continue
            raised.append(Alarm.objects.create(session=session, kind=kind,
                                               message=message[:300], detail=detail,
                                               raised_at=now))
    return raised


# --------------------------------------------------------------------------- recovery


def session_recovery_score(*, actor: Actor, session: InfusionSession, observed: Mapping[str, int],
                           score_name: str | None = None, occurred_at: datetime | None = None,
                           idempotency_key: str | None = None) -> TimelineEntry:
    """Score a recovery assessment item by item against the pre-infusion baseline.

    The vital-sign items are computed from the latest vital signs recorded since the
    infusion stopped and the last set before it started; the others are the nurse's.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(session, now, idempotency_key, "recovery_score")
        if locked.again is not None:
            return locked.again
        snap = locked.snap
        if snap.state is not SessionState.RECOVERING:
            raise UsageError("event", f"recovery is scored while recovering; the session is "
                                      f"{snap.state.value}")
        at = _check_time("occurred_at", occurred_at or now, snap)
        name = score_name or snap.rules.discharge_score
        if snap.baseline_vitals is None:
            raise UsageError("vitals", "no pre-infusion vital signs to compare with")
        recent = [e for e in snap.of_kind("vitals") if snap.stopped_at is not None
                  and snap.stopped_at <= e.occurred_at <= at]
        if not recent:
            raise UsageError("vitals", "record a set of vital signs in recovery first")
        current = recent[-1]
        result = score_discharge(
            name, baseline=selectors.vital_signs_of(snap.baseline_vitals),
            current=selectors.vital_signs_of(current), observed=dict(observed),
            threshold=snap.rules.discharge_threshold if name == snap.rules.discharge_score
            else None)
        payload = _payload("recovery_score", {
            "score_name": name, "items": {i.key: i.points for i in result.items},
            "total": result.total, "observed": dict(observed),
            "vitals_entry_id": current.pk, "baseline_entry_id": snap.baseline_vitals.pk,
            "result": {**result.to_dict(), "protocol": snap.rules.ref},
        })
        return _append(locked, actor=actor, kind="recovery_score", payload=payload,
                       occurred_at=at, idempotency_key=idempotency_key)


def session_discharge(*, actor: Actor, session: InfusionSession, escort_name: str,
                      instructions_given: bool, overrides: Mapping[str, str] | None = None,
                      occurred_at: datetime | None = None, expected_version: int | None = None,
                      idempotency_key: str | None = None) -> TimelineEntry:
    """Discharge through the gate. ``overrides`` maps a failed gate item to a physician's
    written reason; only a physician may give them.

    The series' follow-ups due so far are scheduled with the discharge (outcomes'
    ``followups_schedule``); the new ones are on the returned entry as ``follow_ups``.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if (v or "").strip()}
    user = actor.user
    if overrides and not (user is not None and user.can(Capability.OVERRIDE_DISCHARGE)):
        raise UsageError("overrides", "only a physician may discharge against a failed item")
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(session, now, idempotency_key, "discharge")
        if locked.again is not None:
            return locked.again
        snap = locked.snap
        _state_check(snap, expected_version)
        at = _check_time("occurred_at", occurred_at or now, snap)
        name = user.display_name if user is not None else ""
        gate = selectors.discharge_gate_for(
            snap, escort_name=escort_name, instructions_given=instructions_given,
            overrides=[Override(item, name, reason) for item, reason in overrides.items()])
        try:
            new_state = _transition(locked, SessionEvent.DISCHARGE, discharge_gate=gate)
        except TransitionRefused as exc:
            raise UsageError("discharge", "; ".join(m.message for m in exc.missing)
                             or exc.problem) from exc
        advice = no_driving_until(timezone.localtime(snap.stopped_at)) if snap.stopped_at \
            else None
        payload = _payload("discharge", {
            "escort_name": escort_name.strip(), "instructions_given": instructions_given,
            "gate": gate.to_dict(),
            "overrides": [{"item": k, "reason": v, "physician": name}
                          for k, v in overrides.items()],
            "no_driving_until": advice.to_dict() if advice else {},
        })
        entry = _append(locked, actor=actor, kind="discharge", payload=payload,
                        occurred_at=at, idempotency_key=idempotency_key, new_state=new_state)
        # The follow-ups this visit makes due (day 1 after it; the series-end points once
        # the series is complete), in the same transaction. The outcomes schedule adds only
        # points not yet scheduled, so its own page's button never makes a second row.
        entry.follow_ups = followups_schedule(  # type: ignore[attr-defined]
            actor=actor, series=locked.session.series)
    return entry
