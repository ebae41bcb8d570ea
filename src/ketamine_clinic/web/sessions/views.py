"""Session pages: the bedside chart, its live region, the quick-entry forms, recovery and
discharge, and the clinic-wide board. Views validate and translate; services write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketamine_clinic.clinical.bedside.words import rate as rate_words
from ketamine_clinic.clinical.discharge import Override, second_score_key
from ketamine_clinic.clinical.session import SessionState
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report
from ketamine_clinic.web.sessions import chart, hooks, selectors, services
from ketamine_clinic.web.sessions.forms import (
    AckForm,
    AdverseEventForm,
    CorrectionForm,
    DischargeForm,
    DissociationForm,
    GiveForm,
    NoteForm,
    PainForm,
    PreAssessmentForm,
    RateForm,
    ReasonForm,
    RecoveryForm,
    SedationForm,
    StateChange,
    VitalsForm,
)
from ketamine_clinic.web.sessions.models import Alarm, InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.pk_bridge import predicted_concentration
from ketamine_clinic.web.sessions.schemas import CORRECTABLE_KINDS, STATE_KINDS

OBSERVATION_FORMS: dict[str, type[forms.Form]] = {
    "vitals": VitalsForm, "sedation": SedationForm, "dissociation": DissociationForm,
    "pain": PainForm, "adverse_event": AdverseEventForm, "note": NoteForm,
}
EVENT_FORMS: dict[str, type[forms.Form]] = {
    "check_in": StateChange, "pre_assessment": PreAssessmentForm, "pause": ReasonForm,
    "resume": StateChange, "stop": ReasonForm, "begin_recovery": StateChange,
    "transfer": ReasonForm, "abandon": ReasonForm,
}
# The open page refreshes its live region every 15 s. One audit entry per user and session
# in this window records that the user had the session open; an entry per poll would bury
# the trail in repeats. A display choice of this page, not a clinical number.
LIVE_AUDIT_WINDOW = timedelta(minutes=5)

EVENT_LABELS = {
    "check_in": "Check in", "pre_assessment": "Complete pre-assessment",
    "pause": "Pause infusion", "resume": "Resume infusion", "stop": "Stop infusion",
    "begin_recovery": "Begin recovery", "transfer": "Transfer to emergency care",
    "abandon": "Abandon session",
}


def _actor(request: AuthedHttpRequest, session: InfusionSession | None = None) -> Actor:
    return Actor.from_request(request, session.site.code if session else "")


def _session(request: AuthedHttpRequest, session_id: int) -> InfusionSession:
    """The session for a write or a fragment; the view records the read where it is one."""
    return selectors.session_get_unaudited(request.user, session_id, _actor(request))


def _forms(snap: selectors.Snapshot, physician: bool) -> dict[str, forms.Form]:
    rules = snap.rules
    version = {"expected_version": snap.session.version}
    pre = {"escort_name": selectors.escort_on_record(snap)
           or snap.session.patient.escort_name}
    return {
        "vitals": VitalsForm(), "sedation": SedationForm(scale=rules.sedation_scale),
        "dissociation": DissociationForm(scale=rules.dissociation_scale), "pain": PainForm(),
        "adverse_event": AdverseEventForm(), "note": NoteForm(),
        "rate": RateForm(initial=version),
        "check_in": StateChange(initial=version),
        "pre_assessment": PreAssessmentForm(initial={**version, **pre}),
        "pause": ReasonForm(initial=version), "resume": StateChange(initial=version),
        "stop": ReasonForm(initial=version), "begin_recovery": StateChange(initial=version),
        "transfer": ReasonForm(initial=version), "abandon": ReasonForm(initial=version),
        "recovery": RecoveryForm(score=rules.discharge_score),
        "recovery_alt": RecoveryForm(score=_second_score(rules), prefix="alt"),
        "discharge": DischargeForm(initial={**version, "escort_name": pre["escort_name"]},
                                   physician=physician),
    }


def _second_score(rules: Any) -> str:
    """The second recovery form's score (``clinical.discharge.second_score_key``)."""
    return second_score_key(str(rules.discharge_score), rules.home_score or None)


def _live_context(request: AuthedHttpRequest, snap: selectors.Snapshot) -> dict[str, Any]:
    prediction = predicted_concentration(snap)
    rate_per_kg = (snap.totals.current_rate_mg_per_h / snap.weight_kg
                   if snap.totals is not None else None)
    return {
        "snap": snap, "session": snap.session, "prediction": prediction,
        "rate_mg_per_kg_per_h": rate_per_kg, "correctable": CORRECTABLE_KINDS,
        "figure_json": chart.figure_json(snap, prediction),
        "views": sorted(snap.views, key=lambda v: (v.entry.occurred_at, v.entry.pk),
                        reverse=True),
        "ack_form": AckForm(),
    }


def _page(request: AuthedHttpRequest, session: InfusionSession,
          bound: dict[str, forms.Form] | None = None, status: int = 200) -> HttpResponse:
    services.session_watch(session=session)
    snap = selectors.snapshot(session)
    physician = request.user.can(Capability.OVERRIDE_DISCHARGE)
    page_forms = _forms(snap, physician)
    page_forms.update(bound or {})
    events = [k for k in ("check_in", "pre_assessment", "pause", "resume", "stop",
                          "begin_recovery") if STATE_KINDS[k] in snap.allowed]
    context = {
        **_live_context(request, snap), "forms": page_forms, "events": events,
        "event_labels": EVENT_LABELS, "physician": physician,
        "show_rate": snap.state in (SessionState.PRE_ASSESSMENT_COMPLETE,
                                    SessionState.PREMEDICATION_GIVEN, SessionState.INFUSING),
        "refusals": [err for form in (bound or {}).values()
                     for errs in form.errors.values() for err in errs],
        "mar": _mar(snap, bound),
        "allergies": snap.view.facts.allergies,
        "record_links": hooks.record_links(session),
        "recovery_forms": [("Leaving the chair", page_forms["recovery"]),
                           ("Going home" if snap.rules.home_score else "Alternative score",
                            page_forms["recovery_alt"])],
    }
    if bound is not None:
        # The page again after a refused write, with the form's errors: a read of the
        # session like the first look, which session_get_for records.
        selectors.session_read_record(_actor(request), session, AuditAction.SESSION_VIEW)
    return render(request, "sessions/session_detail.html", context, status=status)


@capability_required(Capability.VIEW_PATIENTS)
def session_detail(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    return _page(request, selectors.session_get_for(request.user, session_id, _actor(request),
                                                    read=AuditAction.SESSION_VIEW))


@capability_required(Capability.VIEW_PATIENTS)
def session_live(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    """The region the page refreshes in place: state, dose, alarms, chart and timeline."""
    session = _session(request, session_id)
    services.session_watch(session=session)
    snap = selectors.snapshot(session)
    if not selectors.viewed_recently(request.user, session,
                                     within=LIVE_AUDIT_WINDOW):
        selectors.session_read_record(_actor(request), session, AuditAction.SESSION_VIEW_LIVE)
    return render(request, "sessions/session_detail.html#live",
                  {**_live_context(request, snap), "oob": True})


@dataclass
class MarRow:
    """One line of the signed order's medication record, with its doses so far."""

    line: Any
    given: list[Any]
    form: forms.Form

    @property
    def left(self) -> int:
        return max(self.line.max_doses - len(self.given), 0)


def _mar(snap: selectors.Snapshot, bound: dict[str, forms.Form] | None) -> list[MarRow]:
    rows = []
    for i, line in enumerate(snap.view.order.lines):
        prefix = f"give{i}"
        form = (bound or {}).get(prefix) or GiveForm(prefix=prefix, initial={
            "drug": line.drug, "unit": line.unit, "route": line.route,
            "dose": Decimal(str(float(line.dose))),
            "indication": line.indication})
        rows.append(MarRow(line, [snap.rows[e.id] for e in snap.view.given(line.drug)], form))
    return rows


def _done(request: AuthedHttpRequest, session: InfusionSession, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("session_detail", session_id=session.pk)


@require_POST
@capability_required(Capability.CHART_SESSION)
def session_observe(request: AuthedHttpRequest, session_id: int, kind: str) -> HttpResponse:
    session = _session(request, session_id)
    if kind not in OBSERVATION_FORMS:
        raise Http404
    rules = selectors.session_rules(session)
    kwargs: dict[str, Any] = {}
    if kind == "sedation":
        kwargs["scale"] = rules.sedation_scale
    elif kind == "dissociation":
        kwargs["scale"] = rules.dissociation_scale
    form = OBSERVATION_FORMS[kind](request.POST, **kwargs)
    if form.is_valid():
        data = dict(form.cleaned_data)
        key, at = data.pop("idempotency_key"), data.pop("occurred_at")
        if kind == "dissociation":
            data = {"items": form.items()}  # type: ignore[attr-defined]
        data = {k: v for k, v in data.items() if v not in (None, "")}
        try:
            services.session_observe(actor=_actor(request, session), session=session,
                                     kind=kind, data=data, occurred_at=at,
                                     idempotency_key=key)
        except UsageError as exc:
            form_error(form, exc)
        else:
            return _done(request, session, f"{kind.replace('_', ' ').capitalize()} recorded.")
    return _page(request, session, {kind: form}, status=400)


@require_POST
@capability_required(Capability.CHART_SESSION)
def session_give(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    """A dose from one line of the order's medication record (the line's form prefix)."""
    session = _session(request, session_id)
    prefix = next((k.split("-")[0] for k in request.POST if k.startswith("give")), "give0")
    form = GiveForm(request.POST, prefix=prefix)
    if form.is_valid():
        d = form.cleaned_data
        try:
            entry = services.session_give(
                actor=_actor(request, session), session=session, drug=d["drug"],
                dose=d["dose"], unit=d["unit"], route=d["route"],
                indication=d["indication"], occurred_at=d["occurred_at"],
                idempotency_key=d["idempotency_key"]).entry
        except UsageError as exc:
            form_error(form, exc)
        else:
            p = entry.payload
            return _done(request, session, f"{p['drug'].capitalize()} {p['dose']:g} "
                                           f"{p['unit']} {p['route']} recorded.")
    return _page(request, session, {prefix: form}, status=400)


@require_POST
@capability_required(Capability.CHART_SESSION)
def session_rate(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    form = RateForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            physician = None
            if d["physician_username"] or d["physician_password"]:
                physician = services.physician_cosigner(request, d["physician_username"],
                                                        d["physician_password"])
            entry = services.session_rate_set(
                actor=_actor(request, session), session=session, rate=d["rate"],
                occurred_at=d["occurred_at"], override_code=d["override_code"],
                override_text=d["override_text"],
                confirmed=("pump_rate_equals_mg_per_h", "usual_rate_ratio")
                if d["confirm"] else (),
                expected_version=d["expected_version"], idempotency_key=d["idempotency_key"],
                physician=physician, physician_reason=d["physician_reason"]).entry
        except UsageError as exc:
            form_error(form, exc)
        else:
            p = entry.payload
            return _done(request, session, "Rate " + rate_words(
                Fraction(p["rate_mg_per_h_exact"]), Fraction(str(p["rate_mg_per_kg_per_h"])),
                Fraction(str(p["pump_rate_ml_per_h"]))) + " recorded.")
    return _page(request, session, {"rate": form}, status=400)


@require_POST
@capability_required(Capability.CHART_SESSION)
def session_event(request: AuthedHttpRequest, session_id: int, event: str) -> HttpResponse:
    session = _session(request, session_id)
    if event not in EVENT_FORMS:
        raise Http404
    form = EVENT_FORMS[event](request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        key, at = data.pop("idempotency_key"), data.pop("occurred_at")
        version = data.pop("expected_version")
        if event in ("pause", "stop", "abandon"):
            data.pop("destination", None)
        data = {k: v for k, v in data.items() if v not in (None, "")}
        if event == "pre_assessment":
            data["iv_access_documented"] = bool(form.cleaned_data["iv_access_documented"])
        try:
            services.session_event(actor=_actor(request, session), session=session,
                                   event=event, data=data, occurred_at=at,
                                   expected_version=version, idempotency_key=key)
        except UsageError as exc:
            form_error(form, exc)
        else:
            return _done(request, session, f"{EVENT_LABELS[event]}: recorded.")
    return _page(request, session, {event: form}, status=400)


@capability_required(Capability.CHART_SESSION)
def session_correct(request: AuthedHttpRequest, session_id: int, entry_id: int) -> HttpResponse:
    """Correct an entry: the form shows the entry's own fields, prefilled."""
    session = _session(request, session_id)
    entry = TimelineEntry.objects.filter(session=session, pk=entry_id).first()
    if entry is None:
        raise Http404
    rules = selectors.session_rules(session)
    value_form = _value_form(entry, rules, request.POST if request.method == "POST" else None)
    form = CorrectionForm(request.POST or None,
                          initial={"occurred_at": timezone.localtime(entry.occurred_at)})
    if request.method == "POST" and form.is_valid() and (
            form.cleaned_data["entered_in_error"] or value_form is None or value_form.is_valid()):
        d = form.cleaned_data
        data: dict[str, Any] = {}
        if value_form is not None and not d["entered_in_error"]:
            data = {k: v for k, v in value_form.cleaned_data.items()
                    if k not in ("idempotency_key", "occurred_at", "expected_version",
                                 "confirm", "override_code", "override_text")}
            if entry.kind == "dissociation":
                data = {"items": value_form.items()}  # type: ignore[attr-defined]
            if entry.kind == "infusion_start" or entry.kind == "rate_change":
                data = {"rate_entered": data["rate"]}
        try:
            services.session_entry_correct(
                actor=_actor(request, session), session=session, entry=entry,
                reason=d["reason"], data=data, occurred_at=d["occurred_at"],
                entered_in_error=d["entered_in_error"], idempotency_key=d["idempotency_key"])
        except UsageError as exc:
            form_error(form, exc)
        else:
            return _done(request, session, "Correction recorded; the original stays visible.")
    selectors.session_read_record(_actor(request), session, AuditAction.SESSION_VIEW_ENTRY,
                                  detail={"entry": entry.pk})
    return render(request, "sessions/correct.html",
                  {"session": session, "entry": entry, "form": form, "value_form": value_form},
                  status=400 if request.method == "POST" else 200)


def _value_form(entry: TimelineEntry, rules: Any, data: Any) -> forms.Form | None:
    p = entry.payload
    initial: dict[str, Any] = {}
    if entry.kind == "vitals":
        cls: Any = VitalsForm
        initial = dict(p)
    elif entry.kind == "sedation":
        return SedationForm(data, scale=rules.sedation_scale, initial={"score": p["score"]},
                            prefix="v")
    elif entry.kind == "dissociation":
        return DissociationForm(data, scale=rules.dissociation_scale, prefix="v",
                                initial={f"item_{k}": v for k, v in p["items"].items()})
    elif entry.kind == "pain":
        cls, initial = PainForm, dict(p)
    elif entry.kind == "adverse_event":
        cls, initial = AdverseEventForm, dict(p)
    elif entry.kind == "note":
        cls, initial = NoteForm, dict(p)
    elif entry.kind in ("infusion_start", "rate_change"):
        cls, initial = RateForm, {"rate": p.get("rate_entered")}
    elif entry.kind == "pre_assessment":
        cls, initial = PreAssessmentForm, dict(p)
    else:
        return None
    form = cls(data, initial=initial, prefix="v")
    for name in ("idempotency_key", "occurred_at", "expected_version"):
        if name in form.fields:
            form.fields[name].required = False
    return form


@require_POST
@capability_required(Capability.CHART_SESSION)
def alarm_ack(request: AuthedHttpRequest, session_id: int, alarm_id: int) -> HttpResponse:
    session = _session(request, session_id)
    alarm = Alarm.objects.filter(session=session, pk=alarm_id).first()
    if alarm is None:
        raise Http404
    form = AckForm(request.POST)
    if form.is_valid():
        post_and_report(request, lambda: services.alarm_acknowledge(
            actor=_actor(request, session), alarm=alarm, response=form.cleaned_data["response"]),
            done="Alarm acknowledged.", refused="Not acknowledged.")
    else:
        messages.error(request, "Not acknowledged. Say what you did in answer to the alarm.")
    return redirect(f"{session.get_absolute_url()}#alarms")


@require_POST
@capability_required(Capability.CHART_SESSION)
def session_recovery(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    rules = selectors.session_rules(session)
    alt = "alt-score_name" in request.POST
    score = _second_score(rules) if alt else rules.discharge_score
    form = RecoveryForm(request.POST, score=score, prefix="alt" if alt else None)
    if form.is_valid():
        try:
            entry = services.session_recovery_score(
                actor=_actor(request, session), session=session, observed=form.observed(),
                score_name=score, occurred_at=form.cleaned_data["occurred_at"],
                idempotency_key=form.cleaned_data["idempotency_key"]).entry
        except UsageError as exc:
            form_error(form, exc)
        else:
            p = entry.payload
            return _done(request, session, f"{p['result']['name']}: {p['total']}/"
                                           f"{p['result']['maximum']} recorded.")
    return _page(request, session, {"recovery_alt" if alt else "recovery": form}, status=400)


def _discharge_form(request: AuthedHttpRequest) -> DischargeForm:
    physician = request.user.can(Capability.OVERRIDE_DISCHARGE)
    return DischargeForm(request.POST, physician=physician)


@require_POST
@capability_required(Capability.DISCHARGE_PATIENT)
def session_discharge(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    form = _discharge_form(request)
    if form.is_valid():
        d = form.cleaned_data
        try:
            discharged = services.session_discharge(
                actor=_actor(request, session), session=session,
                escort_name=d["escort_name"], instructions_given=d["instructions_given"],
                overrides=form.overrides(), occurred_at=d["occurred_at"],
                expected_version=d["expected_version"], idempotency_key=d["idempotency_key"])
        except UsageError as exc:
            form_error(form, exc)
        else:
            return _done(request, session, "Discharged." + _scheduled(discharged))
    return _page(request, session, {"discharge": form}, status=400)


def _scheduled(discharged: services.Discharged) -> str:
    """What follows "Discharged." on the page: the follow-ups the discharge scheduled."""
    new = discharged.follow_ups
    if not new:
        return ""
    return " Follow-ups scheduled: " + ", ".join(
        f"{f.label} (due {f.due_on.isoformat()})" for f in new) + "."


@require_POST
@capability_required(Capability.DISCHARGE_PATIENT)
def session_discharge_check(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    """What the gate says for the form as it is filled in (nothing is written)."""
    session = _session(request, session_id)
    form = _discharge_form(request)
    form.is_valid()
    d = getattr(form, "cleaned_data", {})
    snap = selectors.snapshot(session, gates=False)

    name = request.user.display_name
    gate = None
    if snap.state is SessionState.RECOVERING:
        overrides = [Override(k, name, v) for k, v in
                     (form.overrides() if hasattr(form, "cleaned_data") else {}).items()]
        try:
            gate = selectors.discharge_gate_for(
                snap, escort_name=d.get("escort_name", ""),
                instructions_given=bool(d.get("instructions_given")), overrides=overrides)
        except UsageError as exc:
            return HttpResponse(f'<p class="errorlist">{exc}</p>', status=400)
    selectors.session_read_record(_actor(request), session, AuditAction.SESSION_DISCHARGE_CHECK)
    return render(request, "sessions/session_detail.html#gate",
                  {"gate": gate, "session": session, "snap": snap})


@capability_required(Capability.VIEW_PATIENTS)
def session_board(request: AuthedHttpRequest) -> HttpResponse:
    rows = selectors.board_sessions(request.user)
    # Overdue vital signs and reached limits become alarms as the board looks at them.
    if any([services.session_watch(session=r.session, snap=r) for r in rows]):
        rows = selectors.board_sessions(request.user)
    shown = [s.session.pk for s in rows]
    # The board refreshes itself every few seconds: a refresh showing the same patients as
    # this user's last audited look (within the live window) adds no audit entry.
    if not (request.htmx and selectors.board_seen_recently(
            request.user, shown, within=LIVE_AUDIT_WINDOW)):
        audit_record(actor=_actor(request), action=AuditAction.SESSION_BOARD,
                     detail={"sessions": shown})
    template = "sessions/board.html#board" if request.htmx else "sessions/board.html"
    return render(request, template, {"rows": rows, "now": timezone.now()})


def patient_sessions_panel(request: AuthedHttpRequest, patient: Any) -> str:
    """The patient page's sessions section (AppConfig.patient_panels)."""
    if not request.user.can(Capability.VIEW_PATIENTS):
        return ""
    sessions = list(selectors.patient_sessions(patient))
    # Visits are booked on the scheduling pages (chair, hours and series checks); a
    # session opens when its booked visit starts.
    if not sessions:
        return ""
    return render_to_string("sessions/patient_panel.html", {
        "patient": patient, "sessions": sessions}, request=request)

