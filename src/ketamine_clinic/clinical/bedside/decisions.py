"""Every bedside command decided against the whole picture.

``decide(view, command)`` judges one command (check in, pre-assess, observe, give a drug,
set the rate, pause, resume, stop, begin recovery, score recovery, discharge, transfer,
abandon, correct an entry) against the signed order, the protocol version, the day's facts
and the session so far, and returns :class:`Accepted` (the entries and alarms to store and
the new state) or :class:`Refused` (sentences saying why and what to do). The web layer
locks, maps rows, calls it, stores and answers; it decides nothing itself.

Why one module (over 600 lines): it is the single dispatch of every bedside command, one
function per command sharing the refusal and acceptance helpers; the gates, alarms,
medication and words it calls are already modules of their own (:mod:`.gates`,
:mod:`.alarms`, :mod:`.medication`, :mod:`.words`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical import clock, scales, units
from ketamine_clinic.clinical import discharge as dis
from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.bedside import words
from ketamine_clinic.clinical.bedside.alarms import action, observation_alarms
from ketamine_clinic.clinical.bedside.gates import discharge_gate_of, start_gate_of
from ketamine_clinic.clinical.bedside.medication import GiveRequest, judge_give
from ketamine_clinic.clinical.bedside.model import (
    Accepted,
    Entry,
    NewAlarm,
    NewEntry,
    Refused,
)
from ketamine_clinic.clinical.bedside.view import (
    PRE_START_STATES,
    SessionView,
    evolve,
    vital_signs_of,
)
from ketamine_clinic.clinical.dosing import RateCheck, check_rate
from ketamine_clinic.clinical.limit_checks import Acceptance, LimitCheck, Override, accept
from ketamine_clinic.clinical.session import (
    SessionEvent,
    SessionState,
    TransitionContext,
    TransitionRefused,
    allowed_events,
    transition,
)
from ketamine_clinic.errors import UsageError

# The override reason a physician's bedside co-signature is recorded under.
PHYSICIAN_REASON_CODE = "physician-at-bedside"

STATE_WORDS = {
    SessionState.SCHEDULED: "scheduled", SessionState.CHECKED_IN: "checked in",
    SessionState.PRE_ASSESSMENT_COMPLETE: "assessed, waiting for premedication or the start",
    SessionState.PREMEDICATION_GIVEN: "premedicated", SessionState.INFUSING: "infusing",
    SessionState.PAUSED: "paused", SessionState.STOPPED: "stopped",
    SessionState.RECOVERING: "in recovery", SessionState.DISCHARGED: "discharged",
    SessionState.TRANSFERRED: "transferred", SessionState.ABANDONED: "abandoned",
}
OBSERVATIONS = ("vitals", "sedation", "dissociation", "pain", "adverse_event", "note")
# A drug given is not corrected in place (a corrected dose would bypass the order's
# checks): it is marked entered in error and given again from the order.
CORRECTABLE = (*OBSERVATIONS, "pre_assessment", "infusion_start", "rate_change",
               "recovery_score")
RETRACTABLE = (*OBSERVATIONS, "premedication", "rescue_medication", "rate_change",
               "recovery_score")


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class CheckIn:
    at: datetime
    chair: str = ""


@dataclass(frozen=True)
class PreAssess:
    at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Observe:
    at: datetime
    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Give:
    """A premedication or as-needed drug given from the signed order."""

    at: datetime
    drug: str
    dose: Fraction
    unit: str
    route: str
    indication: str = ""


@dataclass(frozen=True)
class SetRate:
    """Start the infusion or change its rate. ``physician`` is the name of a physician who
    co-signed at the bedside (or gave the command); ``physician_reason`` their reason."""

    at: datetime
    rate: str
    override_code: str = ""
    override_text: str = ""
    confirmed: tuple[str, ...] = ()
    physician: str = ""
    physician_reason: str = ""


@dataclass(frozen=True)
class Pause:
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Resume:
    at: datetime


@dataclass(frozen=True)
class Stop:
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class BeginRecovery:
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ScoreRecovery:
    at: datetime
    observed: Mapping[str, int]
    score_name: str = ""


@dataclass(frozen=True)
class Discharge:
    at: datetime
    escort_name: str
    instructions_given: bool
    overrides: Mapping[str, str] = field(default_factory=dict)
    physician: str = ""


@dataclass(frozen=True)
class Transfer:
    at: datetime
    reason: str
    destination: str = ""


@dataclass(frozen=True)
class Abandon:
    at: datetime
    reason: str


@dataclass(frozen=True)
class Correct:
    """Replace entry ``entry_id`` with corrected data, or mark it entered in error."""

    at: datetime
    entry_id: int
    reason: str
    data: Mapping[str, Any] = field(default_factory=dict)
    entered_in_error: bool = False


Command = (CheckIn | PreAssess | Observe | Give | SetRate | Pause | Resume | Stop
           | BeginRecovery | ScoreRecovery | Discharge | Transfer | Abandon | Correct)


class _Refuse(Exception):
    def __init__(self, field: str, *reasons: str, acceptance: Acceptance | None = None,
                 codes: tuple[str, ...] = ()):
        super().__init__(" ".join(reasons))
        self.refused = Refused(tuple(reasons), field, acceptance, codes)


def needs_day_facts(command: Command) -> bool:
    """Whether judging ``command`` reads the patient's facts of the day (consent, screening,
    tests, allergies, the series' earlier sessions). An observation reads none of them,
    only the clinic's time zone, so that a vital-sign set from a monitor does not make the
    shell gather them again on every write."""
    return not isinstance(command, Observe)


def decide(view: SessionView, command: Command) -> Accepted | Refused:
    """Judge ``command`` against ``view`` (see the module docstring)."""
    try:
        _check_time(view, command.at)
        if view.state.is_final and not isinstance(command, Correct):
            raise _Refuse("event", f"The session is {STATE_WORDS[view.state]}: nothing more "
                                   "can be charted (correct an entry instead).")
        handler = _HANDLERS[type(command)]
        result: Accepted | Refused = handler(view, command)
        return result
    except _Refuse as refusal:
        return refusal.refused
    except UsageError as exc:
        return Refused((_sentence(exc.problem),), exc.field)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _check_time(view: SessionView, at: datetime) -> None:
    if not clock.is_aware(at):
        raise _Refuse("occurred_at", "The time must carry a time zone.")
    if clock.ahead_of(at, view.now):
        raise _Refuse("occurred_at", f"{words.clock(at, view.facts.time_zone)} is in the "
                                     "future: enter the time it happened.")
    checked_in = view.checked_in_at
    if checked_in is not None and at < checked_in:
        raise _Refuse("occurred_at", f"{words.clock(at, view.facts.time_zone)} is before the "
                      f"patient was checked in at {words.clock(checked_in, view.facts.time_zone)}.")


def _move(view: SessionView, event: SessionEvent, **ctx: Any) -> SessionState:
    context = TransitionContext(premedication_required=view.rules.premedication_required,
                                **ctx)
    try:
        return transition(view.state, event, context)
    except TransitionRefused as exc:
        if exc.missing:
            raise _Refuse("event", *(_sentence(m.message) for m in exc.missing),
                          codes=tuple(m.code for m in exc.missing)) from exc
        what = event.value.replace("_", " ")
        if view.state is SessionState.PRE_ASSESSMENT_COMPLETE \
                and event is SessionEvent.START_INFUSION:
            raise _Refuse("event", "The protocol requires premedication before the "
                                   "infusion: give it from the order first.") from exc
        possible = ", ".join(e.value.replace("_", " ") for e in
                             allowed_events(view.state, view.rules.premedication_required))
        raise _Refuse("event", f"The session is {STATE_WORDS[view.state]}: '{what}' is not "
                               f"possible now (possible now: {possible}).") from exc


# --------------------------------------------------------------------------- simple events


def _check_in(view: SessionView, c: CheckIn) -> Accepted:
    state = _move(view, SessionEvent.CHECK_IN)
    return Accepted((NewEntry("check_in", c.at, {"chair": c.chair.strip()}),), state=state)


def _pre_assess(view: SessionView, c: PreAssess) -> Accepted:
    state = _move(view, SessionEvent.COMPLETE_PRE_ASSESSMENT)
    return Accepted((NewEntry("pre_assessment", c.at, dict(c.data)),), state=state)


def _pause(view: SessionView, c: Pause) -> Accepted:
    state = _move(view, SessionEvent.PAUSE)
    _pump_history(view, mon.RateEvent.pause(c.at))
    return Accepted((NewEntry("pause", c.at, {"reason": c.reason.strip()}),), state=state)


def _resume(view: SessionView, c: Resume) -> Accepted:
    state = _move(view, SessionEvent.RESUME)
    _pump_history(view, mon.RateEvent.resume(c.at))
    return Accepted((NewEntry("resume", c.at, {}),), state=state)


def _stop(view: SessionView, c: Stop) -> Accepted:
    state = _move(view, SessionEvent.STOP)
    totals = _pump_history(view, mon.RateEvent.stop(c.at), closed=True)
    return Accepted((NewEntry("stop", c.at, {"reason": c.reason.strip(),
                                             "totals": totals.to_dict()}),), state=state)


def _pump_history(view: SessionView, event: mon.RateEvent,
                  closed: bool = False) -> mon.InfusionTotals:
    """The totals with ``event`` added (up to now, or to the stop when ``closed``): the
    core refuses an impossible pump history (a pause dated before the last rate change)."""
    events = [*view.rate_events, event]
    until = None if closed else max(event.at, view.now)
    try:
        return mon.infusion_totals(events, weight_kg=view.order.weight_kg,
                                   concentration_mg_per_ml=view.order.concentration_mg_per_ml,
                                   at=until)
    except UsageError as exc:
        raise _Refuse("occurred_at", f"{words.clock(event.at, view.facts.time_zone)} does not "
                      f"fit the pump record: {exc.problem}.") from exc


def _begin_recovery(view: SessionView, c: BeginRecovery) -> Accepted:
    state = _move(view, SessionEvent.BEGIN_RECOVERY)
    return Accepted((NewEntry("begin_recovery", c.at, {"note": c.note.strip()}),), state=state)


def _exit(view: SessionView, c: Transfer | Abandon) -> Accepted:
    reason = c.reason.strip()
    if not reason:
        raise _Refuse("reason", "Write the reason.")
    event = SessionEvent.TRANSFER if isinstance(c, Transfer) else SessionEvent.ABANDON
    state = _move(view, event, reason=reason)
    payload: dict[str, Any] = {"reason": reason}
    if isinstance(c, Transfer):
        payload["destination"] = c.destination.strip()
    return Accepted((NewEntry(event.value, c.at, payload),), state=state)


# --------------------------------------------------------------------------- observations


def _pain_phase(state: SessionState) -> str:
    if state in PRE_START_STATES:
        return "pre"
    if state in (SessionState.INFUSING, SessionState.PAUSED):
        return "during"
    return "recovery"


def observation_payload(view: SessionView, kind: str, data: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """The stored payload of an observation, scored by the core."""
    rules = view.rules
    payload = dict(data)
    if kind == "vitals":
        vital_signs_of(Entry(0, kind, view.now, payload))  # impossible values refused
    elif kind == "sedation":
        scale = str(payload.get("scale") or rules.sedation_scale)
        if scale != rules.sedation_scale:
            raise _Refuse("scale", f"The protocol scores sedation with "
                                   f"{scales.get_scale(rules.sedation_scale).short}.")
        scored = scales.score(scale, payload.get("score"))
        payload = {"scale": scale, "score": scored.value, "result": scored.to_dict()}
    elif kind == "dissociation":
        items = {int(k): v for k, v in (payload.get("items") or {}).items()}
        scored = scales.score_items(rules.dissociation_scale, items)
        payload = {"scale": rules.dissociation_scale,
                   "items": {str(k): v for k, v in scored.items}, "total": scored.value,
                   "result": scored.to_dict()}
    elif kind == "pain":
        scored = scales.score("pain_nrs", payload.get("nrs"))
        payload = {"nrs": scored.value, "phase": payload.get("phase") or _pain_phase(view.state)}
    return payload


def _observe(view: SessionView, c: Observe) -> Accepted:
    if c.kind not in OBSERVATIONS:
        raise _Refuse("kind", f"{c.kind.replace('_', ' ')} is not an observation; drugs are "
                              "given from the order.")
    if view.state is SessionState.SCHEDULED:
        raise _Refuse("event", "Check the patient in first.")
    payload = observation_payload(view, c.kind, c.data)
    alarms = observation_alarms(view, c.kind, payload, c.at)
    return Accepted((NewEntry(c.kind, c.at, payload),), alarms=alarms)


# --------------------------------------------------------------------------- medication


def _give(view: SessionView, c: Give) -> Accepted:
    if view.state in (SessionState.SCHEDULED, SessionState.CHECKED_IN):
        raise _Refuse("event", "Complete the pre-assessment before any drug is given.")
    line, reasons = judge_give(view, GiveRequest(c.drug, c.dose, c.unit, c.route, c.at))
    if reasons:
        raise _Refuse("drug", *reasons)
    assert line is not None
    state = None
    if line.kind == "premedication":
        if view.state in PRE_START_STATES:
            gate = start_gate_of(replace(view, now=c.at))
            if gate.missing:
                raise _Refuse("drug", *(_sentence(m.message) for m in gate.missing),
                              codes=tuple(m.code for m in gate.missing))
        if view.state is SessionState.PRE_ASSESSMENT_COMPLETE:
            state = _move(view, SessionEvent.GIVE_PREMEDICATION)
    kind = "premedication" if line.kind == "premedication" else "rescue_medication"
    same_kind = [ln for ln in view.order.lines if ln.kind == line.kind]
    payload = {
        "drug": line.drug, "order_line": same_kind.index(line), "dose": float(c.dose),
        "unit": line.unit, "route": line.route,
        "indication": c.indication.strip() or line.indication,
        "ordered_dose": float(line.dose),
        "dose_number": len([e for e in view.given(line.drug) if e.at <= c.at]) + 1,
        "max_doses": line.max_doses,
    }
    return Accepted((NewEntry(kind, c.at, payload),), state=state)


# --------------------------------------------------------------------------- rates


def _limit_sentence(check: LimitCheck, order_limits: Sequence[Any]) -> str:
    """``"the rate of 120 mg/h is above the signed order's limit of 100 mg/h [signed
    order]"``."""
    lim = check.limit
    side = "above" if check.side == "upper" else "below"
    unit = _UNITS.get(lim.quantity, "")
    places = 2 if "per_kg" in lim.quantity else 1
    value = f"{words.num(check.value, places)} {unit}".strip()
    bound = f"{words.num(check.bound, places)} {unit}".strip()
    what = _QUANTITY_WORDS.get(lim.quantity, lim.quantity.replace("_", " "))
    whose = "the signed order's limit" if lim in order_limits else f"the {lim.kind.value} limit"
    return f"{what} of {value} is {side} {whose} of {bound} {words.tag(lim.source)}".strip()


_UNITS = {q: unit for q, (_, unit) in words.QUANTITY_WORDS.items()}
_QUANTITY_WORDS = {q: f"the {label}" for q, (label, _) in words.QUANTITY_WORDS.items()}
_QUANTITY_WORDS.update({"titration_interval_min": "the time since the last change",
                        "session_total_mg": "the projected session total",
                        "session_total_mg_per_kg": "the projected session total",
                        "series_total_mg": "the projected series total",
                        "series_total_mg_per_kg": "the projected series total"})


def _rate_check(view: SessionView, c: SetRate, starting: bool) -> RateCheck:
    parsed = units.parse_rate(c.rate, field="rate")
    order = view.order
    previous = since = None
    given = Fraction(0)
    remaining_h = units.h_from_timedelta(order.planned_duration)
    if view.totals is not None and not starting:
        _pump_history(view, mon.RateEvent.rate_change(c.at, 1))
        upto = mon.infusion_totals(view.rate_events, weight_kg=order.weight_kg,
                                   concentration_mg_per_ml=order.concentration_mg_per_ml,
                                   at=c.at)
        previous = upto.current_rate_mg_per_h
        set_at = max(e.at for e in view.rate_events
                     if e.kind in (mon.RateEventKind.START, mon.RateEventKind.RATE_CHANGE,
                                   mon.RateEventKind.RESUME))
        since = units.min_from_h(units.h_from_timedelta(c.at - set_at))
        given = upto.total_mg
        assert view.planned_end is not None
        remaining_h = units.h_from_timedelta(max(view.planned_end - c.at, timedelta(0)))
    return check_rate(
        parsed, rules=view.rules.dosing, weight_kg=order.weight_kg,
        concentration_mg_per_ml=order.concentration_mg_per_ml,
        previous_rate_mg_per_h=previous, minutes_since_last_change=since,
        session_given_mg=given, session_remaining_h=remaining_h,
        series_given_mg=view.facts.series_given_mg, extra_limits=order.order_limits,
        reference_rates_mg_per_h=order.titration_rates_mg_per_h)


def _titration_refusals(view: SessionView, c: SetRate) -> list[str]:
    """An increase needs fresh sedation and dissociation scores, a patient responsive
    enough, and the titration target not yet reached."""
    rules, tz = view.rules, view.facts.time_zone
    out = []
    set_at = max((e.at for e in view.rate_events), default=None)
    sed_scale = scales.get_scale(rules.sedation_scale)
    sed = view.latest("sedation", since=set_at)
    if sed is None:
        out.append(f"Score sedation ({sed_scale.short}) after the last rate change before "
                   "raising the rate.")
    elif rules.sedation_stop_below is not None \
            and int(sed.payload["score"]) < rules.sedation_stop_below.value:
        out.append(f"{sed_scale.short} {sed.payload['score']} at {words.clock(sed.at, tz)} is "
                   f"below {rules.sedation_stop_below.value} "
                   f"{words.tag(rules.sedation_stop_below.source)}: do not raise the rate; "
                   "keep it or lower it and watch the airway.")
    target = rules.titration_target
    if target is not None:
        scale = scales.get_scale(target.scale)
        dis_entry = view.latest("dissociation", since=set_at)
        if dis_entry is None:
            out.append(f"Score dissociation ({scale.short}) after the last rate change "
                       "before raising the rate.")
        elif int(dis_entry.payload["total"]) >= target.low:
            out.append(f"{scale.short} {dis_entry.payload['total']} at "
                       f"{words.clock(dis_entry.at, tz)} has reached the titration target of "
                       f"{target.low} or more {words.tag(target.source)}: keep the rate.")
    return out


def _set_rate(view: SessionView, c: SetRate) -> Accepted | Refused:
    starting = view.state in (SessionState.PRE_ASSESSMENT_COMPLETE,
                              SessionState.PREMEDICATION_GIVEN)
    if view.state is SessionState.PAUSED:
        raise _Refuse("event", "The infusion is paused: resume it first, then change the rate.")
    if not starting and view.state is not SessionState.INFUSING:
        raise _Refuse("event", f"The session is {STATE_WORDS[view.state]}: the rate cannot "
                               "be set now.")
    state = None
    if starting:
        gate = start_gate_of(replace(view, now=c.at))
        state = _move(view, SessionEvent.START_INFUSION, start_gate=gate)
    check = _rate_check(view, c, starting)
    forms = check.forms
    head = words.rate(forms.rate_mg_per_h, forms.rate_mg_per_kg_per_h, forms.pump_rate_ml_per_h)
    increase = check.step_mg_per_h is not None and check.step_mg_per_h > 0
    order_limits = view.order.order_limits
    if check.blocked:
        blocks = "; ".join(_limit_sentence(x, order_limits) for x in check.limit_checks
                           if x.blocks)
        acceptance = accept(check.limit_checks, check.cross_checks)
        return Refused((f"{head}: {blocks}. A hard limit cannot be overridden: choose a lower "
                        "rate, or ask the physician to change the order.",), "rate", acceptance)
    if increase:
        refusals = _titration_refusals(view, c)
        if refusals:
            raise _Refuse("rate", f"{head}: not allowed.", *refusals)
    overrides, needs_physician = _overrides_for(view, c, check, increase or starting)
    if needs_physician:
        sentences = "; ".join(_limit_sentence(x, order_limits) for x in needs_physician)
        acceptance = accept(check.limit_checks, check.cross_checks, overrides=overrides,
                            confirmed=[x for x in c.confirmed])
        return Refused((f"{head}: {sentences}. A physician must change the order or co-sign "
                        "this rate at the bedside.",), "rate", acceptance)
    asking = {x.code for x in check.needs_confirmation}
    acceptance = accept(check.limit_checks, check.cross_checks, overrides=overrides,
                        confirmed=[x for x in c.confirmed if x in asking])
    if not acceptance.accepted:
        parts = [x.message for x in acceptance.missing_confirmations]
        parts += [_limit_sentence(x, order_limits) for x in acceptance.missing_overrides]
        return Refused((f"{head}: confirm the rate — " + "; ".join(parts) + ".",), "rate",
                       acceptance)
    kind = "infusion_start" if starting else "rate_change"
    payload = {
        "rate_mg_per_h": float(forms.rate_mg_per_h),
        "pump_rate_ml_per_h": float(forms.pump_rate_ml_per_h),
        "rate_mg_per_kg_per_h": float(forms.rate_mg_per_kg_per_h),
        "rate_mg_per_h_exact": str(forms.rate_mg_per_h),
        "rate_entered": c.rate.strip(),
        "rate_check": check.to_dict(),
        "acceptance": acceptance.to_dict(),
        "override_code": ",".join(sorted({o.reason_code for o in overrides})),
        "override_text": "; ".join(dict.fromkeys(o.free_text for o in overrides)),
        "confirmed": sorted(asking),
        "physician": c.physician.strip(),
    }
    return Accepted((NewEntry(kind, c.at, payload),), state=state, acceptance=acceptance)


def _overrides_for(view: SessionView, c: SetRate, check: RateCheck, raising: bool
                   ) -> tuple[list[Override], list[LimitCheck]]:
    """The overrides that cover the exceeded soft limits, and the limits only a physician
    can lift.

    * Above the signed order (its maximum, step or interval): a physician's bedside
      co-signature, never a nurse's text.
    * A protocol soft limit on a rate inside the signed order: the override the physician
      signed on the order carries over (nothing more is asked).
    * A lowered rate: the nurse may record her own reason (a decrease is never held back).
    """
    order = view.order
    exceeded = [x for x in check.needs_override]
    outside_order = [x for x in exceeded if x.limit in order.order_limits]
    physician = c.physician.strip()
    by_quantity: dict[str, Override] = {}
    uncovered: list[LimitCheck] = []
    signed = {o.quantity: o for o in order.signed_overrides}
    for x in exceeded:
        q = x.limit.quantity
        if q in by_quantity:
            continue
        if physician:
            reason = c.physician_reason.strip() or c.override_text.strip()
            if not reason:
                raise _Refuse("physician_reason", "The physician's co-signature needs a "
                                                  "written reason.")
            by_quantity[q] = Override(q, PHYSICIAN_REASON_CODE,
                                      f"{reason} (co-signed at the bedside by {physician})")
        elif not outside_order and q in signed and raising:
            o = signed[q]
            by_quantity[q] = Override(q, o.reason_code,
                                      f"{o.free_text} (carried from the signed order)")
        elif not raising and (c.override_code or c.override_text.strip()):
            by_quantity[q] = Override(q, c.override_code, c.override_text.strip())
        else:
            uncovered.append(x)
    if not raising and uncovered and not outside_order:
        # A decrease below a protocol minimum: the nurse records why.
        return list(by_quantity.values()), []
    return list(by_quantity.values()), uncovered


# --------------------------------------------------------------------------- recovery


def _score_recovery(view: SessionView, c: ScoreRecovery) -> Accepted:
    rules = view.rules
    if view.state is not SessionState.RECOVERING:
        raise _Refuse("event", f"Recovery is scored in recovery; the session is "
                               f"{STATE_WORDS[view.state]}.")
    name = c.score_name or rules.gate_score
    if name not in (rules.discharge_score, rules.home_score):
        raise _Refuse("score_name", f"The protocol uses "
                      f"{dis.get_score_definition(rules.discharge_score).short}"
                      + (f" and {dis.get_score_definition(rules.home_score).short}"
                         if rules.home_score else "") + ".")
    base = view.baseline_vitals
    if base is None:
        raise _Refuse("vitals", "No pre-infusion vital signs to compare with.")
    stopped = view.stopped_at
    current = view.latest("vitals", since=stopped, until=c.at) if stopped else None
    if current is None:
        raise _Refuse("vitals", "Record a set of vital signs in recovery first.")
    definition = dis.get_score_definition(name)
    pain = None
    if any(i.kind == "pain_against_baseline" for i in definition.items):
        pre, now = view.baseline_pain, view.latest("pain", since=stopped, until=c.at)
        if pre is None or now is None:
            raise _Refuse("pain", f"The {definition.short} judges pain against the "
                          "pre-infusion score: record a pain score in recovery first.")
        pain = dis.PainScores(int(pre.payload["nrs"]), int(now.payload["nrs"]))
    threshold = rules.home_threshold if name == rules.home_score else rules.discharge_threshold
    result = dis.score_discharge(name, baseline=vital_signs_of(base),
                                 current=vital_signs_of(current), observed=dict(c.observed),
                                 threshold=threshold, pain=pain)
    # The score is taken when the nurse assessed, with the latest vital signs.
    result = replace(result, assessed_at=c.at)
    payload = {"score_name": name, "items": {i.key: i.points for i in result.items},
               "total": result.total, "observed": dict(c.observed),
               "vitals_entry_id": current.id, "baseline_entry_id": base.id,
               "result": {**result.to_dict(), "protocol": rules.ref}}
    return Accepted((NewEntry("recovery_score", c.at, payload),))


def _discharge(view: SessionView, c: Discharge) -> Accepted:
    overrides = {k: v.strip() for k, v in c.overrides.items() if (v or "").strip()}
    if overrides and not c.physician.strip():
        raise _Refuse("overrides", "Only a physician may discharge against a failed item.")
    at_view = replace(view, now=c.at)
    gate = discharge_gate_of(
        at_view, escort_name=c.escort_name, instructions_given=c.instructions_given,
        overrides=[dis.Override(item, c.physician.strip(), reason)
                   for item, reason in overrides.items()])
    state = _move(view, SessionEvent.DISCHARGE, discharge_gate=gate)
    advice = dis.no_driving_until(view.stopped_at) if view.stopped_at else None
    payload = {"escort_name": c.escort_name.strip(), "instructions_given": c.instructions_given,
               "gate": gate.to_dict(),
               "overrides": [{"item": k, "reason": v, "physician": c.physician.strip()}
                             for k, v in overrides.items()],
               "no_driving_until": advice.to_dict() if advice else {}}
    return Accepted((NewEntry("discharge", c.at, payload),), state=state)


# --------------------------------------------------------------------------- corrections


def _correct(view: SessionView, c: Correct) -> Accepted:
    reason = c.reason.strip()
    if not reason:
        raise _Refuse("reason", "A correction needs a reason.")
    target = next((f for f in view.folded if f.entry.id == c.entry_id), None)
    if target is None:
        raise _Refuse("entry", "That entry is not part of this session.")
    entry = target.entry
    allowed = RETRACTABLE if c.entered_in_error else CORRECTABLE
    if entry.kind not in allowed:
        what = "retracted" if c.entered_in_error else "corrected"
        raise _Refuse("entry", f"A {entry.kind.replace('_', ' ')} entry cannot be {what}; "
                               "add a note instead.")
    if target.status != "effective":
        hint = f" (correct entry {target.replaced_by} instead)" if target.replaced_by else ""
        raise _Refuse("entry", f"This entry is {target.status.replace('_', ' ')}{hint}.")
    if c.entered_in_error:
        new = NewEntry("entered_in_error", c.at, {}, corrects=entry.id, reason=reason)
    else:
        merged = {**entry.payload, **dict(c.data)}
        new = NewEntry(entry.kind, c.at, _corrected_payload(view, entry, merged),
                       corrects=entry.id, reason=reason)
    probe = Entry(2**62, new.kind, new.at, new.payload, new.corrects, new.reason)
    try:  # the corrected record must still make sense: fold it and recompute the dose
        evolve((*view.entries, probe), rules=view.rules, order=view.order, facts=view.facts,
               now=view.now)
    except UsageError as exc:
        raise _Refuse("entry", f"The corrected record does not add up: {exc.problem}.") from exc
    alarms: tuple[NewAlarm, ...] = ()
    if new.kind == "vitals":
        alarms = observation_alarms(view, new.kind, dict(new.payload), new.at)
    elif new.kind in ("infusion_start", "rate_change"):
        alarms = _corrected_rate_alarms(view, entry, new)
    return Accepted((new,), alarms=alarms)


def _corrected_rate_alarms(view: SessionView, entry: Entry, new: NewEntry
                           ) -> tuple[NewAlarm, ...]:
    """A corrected rate is what the pump ran, so it is recorded however high; when it is
    beyond a hard limit, or beyond a soft one the original entry had no physician override
    for, an alarm says so (the step and interval rules judge a change as it is made, not a
    correction of the record)."""
    order = view.order
    check = check_rate(
        units.parse_rate(str(new.payload["rate_entered"]), field="rate"),
        rules=view.rules.dosing, weight_kg=order.weight_kg,
        concentration_mg_per_ml=order.concentration_mg_per_ml, previous_rate_mg_per_h=None,
        minutes_since_last_change=None, session_given_mg=Fraction(0),
        session_remaining_h=None, series_given_mg=None, extra_limits=order.order_limits,
        reference_rates_mg_per_h=order.titration_rates_mg_per_h)
    overridden = bool(str(entry.payload.get("override_code") or ""))
    beyond = [x for x in check.limit_checks
              if x.blocks or (x.needs_override and not overridden)]
    if not beyond:
        return ()
    beyond = [x for x in beyond if x.blocks] or beyond  # the hard limits say enough
    forms = check.forms
    head = words.rate(forms.rate_mg_per_h, forms.rate_mg_per_kg_per_h, forms.pump_rate_ml_per_h)
    sentences = "; ".join(_limit_sentence(x, order.order_limits) for x in beyond)
    when = words.clock(new.at, view.facts.time_zone)
    return (NewAlarm(
        f"corrected_rate:{entry.id}", "corrected_rate",
        f"Corrected record: the pump ran {head} from {when}; {sentences}: "
        f"{action('corrected_rate')}.", new.at,
        {"entry": entry.id, "rate_check": check.to_dict()}),)


def _corrected_payload(view: SessionView, entry: Entry, merged: dict[str, Any]
                       ) -> dict[str, Any]:
    kind = entry.kind
    if kind in OBSERVATIONS:
        merged.pop("result", None)
        if kind == "dissociation":
            merged = {"items": merged.get("items", {})}
        return observation_payload(view, kind, merged)
    if kind in ("infusion_start", "rate_change"):
        # What the pump actually ran: the three forms recomputed from the corrected rate;
        # the original check stays with it.
        parsed = units.parse_rate(str(merged.get("rate_entered") or ""), field="rate")
        forms = units.rate_forms(parsed, weight_kg=view.order.weight_kg,
                                 concentration_mg_per_ml=view.order.concentration_mg_per_ml)
        merged.update({"rate_mg_per_h": float(forms.rate_mg_per_h),
                       "pump_rate_ml_per_h": float(forms.pump_rate_ml_per_h),
                       "rate_mg_per_kg_per_h": float(forms.rate_mg_per_kg_per_h),
                       "rate_mg_per_h_exact": str(forms.rate_mg_per_h)})
        return merged
    if kind == "recovery_score":
        raise _Refuse("entry", "Record a new recovery assessment instead.")
    return merged


_HANDLERS: dict[type, Any] = {
    CheckIn: _check_in, PreAssess: _pre_assess, Observe: _observe, Give: _give,
    SetRate: _set_rate, Pause: _pause, Resume: _resume, Stop: _stop,
    BeginRecovery: _begin_recovery, ScoreRecovery: _score_recovery, Discharge: _discharge,
    Transfer: _exit, Abandon: _exit, Correct: _correct,
}
