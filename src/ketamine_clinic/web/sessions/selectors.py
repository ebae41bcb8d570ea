"""Reads of infusion sessions, always scoped to the user's sites, and the derived view.

Nothing here is typed by a nurse: the state, the exact dose, the limits, alarms, overdue
vital signs and both gates are computed from the append-only timeline by the pure core
(``clinical.session``, ``clinical.monitoring``, ``clinical.discharge``), every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.discharge import (
    DischargeGateInput,
    DischargeScore,
    Override,
    discharge_gate,
    get_score_definition,
    score_discharge,
)
from ketamine_clinic.clinical.session import (
    GateItem,
    GateResult,
    SessionEvent,
    SessionState,
    StartGateInput,
    TransitionContext,
    allowed_events,
    replay,
    start_gate,
)
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.protocols import selectors as protocols
from ketamine_clinic.web.sessions.models import Alarm, InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.rules import SessionRules, rules_for_version
from ketamine_clinic.web.sessions.schemas import STATE_KINDS

RATE_KINDS = ("infusion_start", "rate_change", "pause", "resume", "stop")
# Vital signs are due every monitoring interval while the infusion runs or is paused; in
# recovery the protocol's assessment interval paces the recovery scores instead.
MONITORED_STATES = frozenset({SessionState.INFUSING, SessionState.PAUSED})
PRE_START_STATES = frozenset({SessionState.SCHEDULED, SessionState.CHECKED_IN,
                              SessionState.PRE_ASSESSMENT_COMPLETE,
                              SessionState.PREMEDICATION_GIVEN})


# --------------------------------------------------------------------------- scoping


def sessions_visible_to(user: User) -> QuerySet[InfusionSession]:
    return (InfusionSession.objects.filter(site__in=user.sites.all())
            .select_related("patient", "site", "order", "order__protocol_version", "series"))


def session_get_for(user: User, session_id: int, actor: Actor) -> InfusionSession:
    """The session if the user works at its site; otherwise 404, and the attempt audited."""
    found = sessions_visible_to(user).filter(pk=session_id).first()
    if found is None:
        audit_record(actor=actor, action="session.access_denied", object_type="session",
                     object_id=session_id)
        raise Http404("No such session")
    return found


def viewed_recently(user: User, session: InfusionSession, *, within: timedelta) -> bool:
    """Whether ``user`` has a ``session.view`` or ``session.view_live`` audit entry for
    ``session`` dated within ``within`` of now."""
    return AuditEntry.objects.filter(
        object_type="session", object_id=str(session.pk), user_id_value=user.pk,
        action__in=("session.view", "session.view_live"),
        at__gte=timezone.now() - within).exists()


def order_verified(order: Any) -> bool:
    return (order.status == "active" and order.signed_by_id is not None
            and order.verified_by_id is not None and order.verified_by_id != order.signed_by_id)


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


def vital_signs_of(entry: TimelineEntry) -> mon.VitalSigns:
    p = entry.payload
    return mon.VitalSigns(
        at=entry.occurred_at,
        systolic_bp_mmhg=p.get("systolic_bp_mmhg"),
        diastolic_bp_mmhg=p.get("diastolic_bp_mmhg"),
        heart_rate_per_min=p.get("heart_rate_per_min"),
        respiratory_rate_per_min=p.get("respiratory_rate_per_min"),
        spo2_percent=p.get("spo2_percent"),
        etco2_mmhg=p.get("etco2_mmhg"),
        temperature_c=p.get("temperature_c"),
        on_oxygen=bool(p.get("on_oxygen", False)),
    )


def rate_event_of(entry: TimelineEntry) -> mon.RateEvent:
    p, at = entry.payload, entry.occurred_at
    if entry.kind == "infusion_start":
        return mon.RateEvent.start(at, p.get("rate_mg_per_h_exact") or p["rate_mg_per_h"])
    if entry.kind == "rate_change":
        return mon.RateEvent.rate_change(at, p.get("rate_mg_per_h_exact")
                                         or p["rate_mg_per_h"])
    if entry.kind == "pause":
        return mon.RateEvent.pause(at)
    if entry.kind == "resume":
        return mon.RateEvent.resume(at, p.get("rate_mg_per_h"))
    return mon.RateEvent.stop(at)


def fold(entries: Sequence[TimelineEntry]) -> list[EntryView]:
    """Every entry with its correction status (core ``fold_corrections``), record order."""
    kinds = {e.pk: e.kind for e in entries}
    core = []
    for e in sorted(entries, key=lambda x: x.pk):
        retraction = e.kind == "entered_in_error"
        kind = kinds.get(e.corrects_id, e.kind) if retraction else e.kind
        core.append(mon.TimelineEntry(
            entry_id=str(e.pk), kind=kind, at=e.occurred_at,
            payload=None if retraction else e.payload,
            corrects=None if e.corrects_id is None else str(e.corrects_id),
            reason=e.correction_reason, entered_in_error=retraction))
    by_id = {e.pk: e for e in entries}
    return [EntryView(by_id[int(f.entry.entry_id)], f.status.value,
                      None if f.replaced_by is None else int(f.replaced_by), f.entry.kind)
            for f in mon.fold_corrections(core)]


def derived_state(entries: Iterable[TimelineEntry]) -> SessionState:
    """Replay the recorded state changes (in record order) through the state machine.

    Gates were checked when each change was recorded; the replay checks the path.
    """
    open_start = GateResult("start", ())
    open_discharge = GateResult("discharge", ())
    events: list[tuple[SessionEvent, TransitionContext]] = []
    state = SessionState.SCHEDULED
    for e in sorted(entries, key=lambda x: x.pk):
        if e.corrects_id is not None:
            continue
        if e.kind == "premedication":
            if state is not SessionState.PRE_ASSESSMENT_COMPLETE:
                continue
            event = SessionEvent.GIVE_PREMEDICATION
        elif e.kind in STATE_KINDS:
            event = SessionEvent(STATE_KINDS[e.kind])
        else:
            continue
        # The premedication requirement, like the gates, was checked when the start was
        # recorded (records loaded from elsewhere may chart premedication differently).
        ctx = TransitionContext(start_gate=open_start, discharge_gate=open_discharge,
                                premedication_required=False,
                                reason=str(e.payload.get("reason", "")))
        events.append((event, ctx))
        state = replay(events[-1:], start=state)
    return state


@dataclass
class Snapshot:
    """Everything the session page, the board and the API show, derived at ``now``."""

    session: InfusionSession
    rules: SessionRules
    now: datetime
    state: SessionState
    views: list[EntryView]
    effective: list[TimelineEntry]
    rate_events: list[mon.RateEvent]
    totals: mon.InfusionTotals | None
    planned_end: datetime | None
    limit_check: mon.SessionLimitCheck | None
    alarms: list[Alarm]
    overdue: mon.OverdueStatus | None
    baseline_vitals: TimelineEntry | None
    latest_vitals: TimelineEntry | None
    start_gate: GateResult | None = None
    discharge_gate: GateResult | None = None
    recovery: TimelineEntry | None = None
    recovery_score: DischargeScore | None = None
    weight_kg: Fraction = Fraction(0)
    concentration_mg_per_ml: Fraction = Fraction(0)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unacknowledged(self) -> list[Alarm]:
        return [a for a in self.alarms if not _acked(a)]

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(e.value for e in allowed_events(self.state,
                                                     self.rules.premedication_required))

    @property
    def started_at(self) -> datetime | None:
        return self.totals.started_at if self.totals else None

    @property
    def stopped_at(self) -> datetime | None:
        return self.totals.stopped_at if self.totals else None

    def of_kind(self, *kinds: str) -> list[TimelineEntry]:
        return [e for e in self.effective if e.kind in kinds]

    @property
    def next_recovery_due(self) -> datetime | None:
        if self.state is not SessionState.RECOVERING:
            return None
        last = self.recovery.occurred_at if self.recovery else None
        since = last or self.stopped_at
        return None if since is None else since + self.rules.recovery_interval


def _acked(alarm: Alarm) -> bool:
    try:
        return alarm.ack is not None
    except Alarm.ack.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
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
        Prefetch("alarms", Alarm.objects.select_related("ack", "ack__by")
                 .order_by("-raised_at", "-id")),
    )


def session_rules(session: InfusionSession) -> SessionRules:
    return rules_for_version(session.order.protocol_version)


def snapshot(session: InfusionSession, *, now: datetime | None = None,
             rules: SessionRules | None = None, gates: bool = True,
             extra_entries: Sequence[TimelineEntry] = ()) -> Snapshot:
    """Derive the session's state, dose, limits, alarms and gates at ``now``."""
    now = now or timezone.now()
    rules = rules or session_rules(session)
    entries = [*entries_of(session), *extra_entries]
    views = fold(entries)
    effective = sorted((v.entry for v in views if v.status == "effective"
                        and v.entry.kind != "entered_in_error"),
                       key=lambda e: (e.occurred_at, e.pk))
    state = derived_state(entries)
    order = session.order
    weight = Fraction(str(order.dosing_weight_kg))
    conc = Fraction(str(order.bag_drug_mg)) / Fraction(str(order.bag_volume_ml))
    rate_entries = [e for e in effective if e.kind in RATE_KINDS]
    rate_events = [rate_event_of(e) for e in rate_entries]
    totals = limit_check = planned_end = None
    if rate_events:
        at = max(now, rate_events[-1].at)
        totals = mon.infusion_totals(rate_events, weight_kg=weight,
                                     concentration_mg_per_ml=conc, at=at)
        assert totals.started_at is not None
        planned_end = (totals.started_at + timedelta(minutes=order.planned_duration_min)
                       + totals.paused_time)
        limit_check = mon.check_session_limits(
            rate_events, weight_kg=weight, concentration_mg_per_ml=conc, now=at,
            planned_end=max(planned_end, at), limits=rules.session_limits)
    vitals = [e for e in effective if e.kind == "vitals"]
    started = totals.started_at if totals else None
    baseline = None
    if vitals:
        before = [e for e in vitals if started is None or e.occurred_at <= started]
        baseline = before[-1] if before else None
    overdue = None
    if state in MONITORED_STATES and started is not None:
        last = vitals[-1].occurred_at if vitals else None
        overdue = mon.vitals_overdue(last, monitoring_since=started,
                                     now=max(now, last or started, started),
                                     interval=rules.monitoring_interval)
    snap = Snapshot(
        session=session, rules=rules, now=now, state=state, views=views, effective=effective,
        rate_events=rate_events, totals=totals, planned_end=planned_end,
        limit_check=limit_check, alarms=alarms_of(session), overdue=overdue,
        baseline_vitals=baseline, latest_vitals=vitals[-1] if vitals else None,
        weight_kg=weight, concentration_mg_per_ml=conc,
    )
    scores = [e for e in effective if e.kind == "recovery_score"
              and e.payload.get("score_name") == rules.discharge_score]
    if scores:
        snap.recovery = scores[-1]
        snap.recovery_score = rescore(snap, scores[-1])
    if gates and state in PRE_START_STATES:
        snap.start_gate = start_gate_for(snap)
    if gates and state is SessionState.RECOVERING:
        snap.discharge_gate = discharge_gate_for(snap)
    return snap


# --------------------------------------------------------------------------- gates


def start_gate_for(snap: Snapshot) -> GateResult:
    session = snap.session
    pre = snap.of_kind("pre_assessment")
    pa = pre[-1].payload if pre else {}
    pain_pre = [e for e in snap.of_kind("pain") if e.payload.get("phase") == "pre"]
    patient = session.patient
    pregnancy_required = snap.rules.pregnancy_status_required and patient.sex_at_birth in (
        "female", "intersex")
    recorded_pregnancy = pa.get("pregnancy_status") not in (None, "")
    if not recorded_pregnancy:
        today_start = timezone.localtime(snap.now).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
        recorded_pregnancy = patient.measurements.filter(
            kind="pregnancy_status", entered_in_error_at__isnull=True,
            measured_at__gte=today_start).exists()
    # documents.selectors reads sessions through this module: import it here, not above.
    from ketamine_clinic.web.documents.selectors import consent_current

    pv = session.order.protocol_version
    screening_problem = screening_not_current(patient, pv, session.series,
                                              timezone.localdate(snap.now))
    facts = StartGateInput(
        consent_on_file=consent_current(patient, pv) is not None,
        screening_current=screening_problem is None,
        order_verified=order_verified(session.order),
        pre_infusion_vitals_recorded=bool(snap.of_kind("vitals")),
        pre_infusion_pain_recorded=bool(pain_pre),
        pregnancy_status_required=pregnancy_required,
        pregnancy_status_recorded=recorded_pregnancy,
        escort_name=str(pa.get("escort_name", "")),
        iv_access_documented=bool(pa.get("iv_access_documented", False)),
    )
    gate = start_gate(facts)
    if screening_problem is None:
        return gate
    return reworded(gate, "screening_current",
                    lambda item: f"{item.message}: {screening_problem}")


def screening_not_current(patient: Any, protocol_version: Any, series: Any,
                          today: date) -> str | None:
    """``None`` when a current screening lets the patient be treated in ``series`` (the
    protocols area's ``screening_current``); otherwise why not, in words."""
    if protocols.screening_current(patient, protocol_version, series=series,
                                   today=today) is not None:
        return None
    status = protocols.screening_latest_status(patient, protocol_version, series=series,
                                               today=today)
    if status is None:
        return (f"the patient was never screened under {protocol_version.name} "
                f"v{protocol_version.version}")
    return "; ".join(status.blocking) or "the newest screening does not allow treatment"


def reworded(gate: GateResult, code: str,
             message: Callable[[GateItem], str]) -> GateResult:
    """The gate with the item ``code`` (missing or overridden) saying ``message(item)``."""

    def named(item: GateItem) -> GateItem:
        return GateItem(item.code, message(item)) if item.code == code else item

    return GateResult(gate.gate, tuple(named(m) for m in gate.missing),
                      tuple(named(m) for m in gate.overridden), gate.inputs)


def rescore(snap: Snapshot, entry: TimelineEntry) -> DischargeScore:
    """Recompute a stored recovery score from the vital-sign entries it names (the same
    inputs give the same result; the stored ``result`` is the record)."""
    p = entry.payload
    by_id = {e.pk: e for e in snap.effective}
    base = by_id.get(p.get("baseline_entry_id")) or snap.baseline_vitals
    cur = by_id.get(p.get("vitals_entry_id")) or snap.latest_vitals
    if base is None or cur is None:
        raise UsageError("vitals", "the vital signs this score was computed from are gone")
    return score_discharge(p["score_name"], baseline=vital_signs_of(base),
                           current=vital_signs_of(cur), observed=p.get("observed", {}),
                           threshold=snap.rules.discharge_threshold
                           if p["score_name"] == snap.rules.discharge_score else None)


def escort_on_record(snap: Snapshot) -> str:
    pre = snap.of_kind("pre_assessment")
    return str(pre[-1].payload.get("escort_name", "")) if pre else ""


def discharge_gate_for(snap: Snapshot, *, escort_name: str | None = None,
                       instructions_given: bool = False,
                       overrides: Sequence[Override] = ()) -> GateResult:
    """The discharge gate at ``snap.now``; with no score recorded yet, the score item
    says so (a zero-point placeholder stands in for the score the core needs)."""
    score = snap.recovery_score
    placeholder = score is None
    if score is None:
        definition = get_score_definition(snap.rules.discharge_score)
        threshold = snap.rules.discharge_threshold or definition.threshold
        score = DischargeScore(definition, (), threshold, "protocol", snap.now,
                               {"note": "no recovery assessment recorded"})
    facts = DischargeGateInput(
        score=score,
        infusion_stopped_at=snap.stopped_at,
        now=snap.now,
        minimum_observation=snap.rules.minimum_observation,
        unacknowledged_alarms=tuple(a.message for a in snap.unacknowledged),
        escort_name=escort_on_record(snap) if escort_name is None else escort_name,
        instructions_given=instructions_given,
        overrides=tuple(overrides),
    )
    gate = discharge_gate(facts)
    if not placeholder:
        return gate
    return reworded(gate, "discharge_score",
                    lambda _: f"no {score.definition.short} assessment recorded yet")


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
