"""Alarms: vital signs beyond the protocol's bounds or risen against the patient's own
pre-infusion set, end-tidal CO2 missing where capnography is required, sedation deeper
than the protocol allows, vital signs overdue and the session total reached.

Each alarm is a sentence: the value, the limit, its source and what to do. Physically
possible but critical values reach this module (only impossible ones are refused at
entry), so the worst readings alarm instead of being lost.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from ketamine_clinic.clinical import monitoring as mon
from ketamine_clinic.clinical.bedside import words
from ketamine_clinic.clinical.bedside.model import NewAlarm
from ketamine_clinic.clinical.bedside.rules import SessionRules
from ketamine_clinic.clinical.bedside.view import (
    MONITORED_STATES,
    SessionView,
    vital_signs_of,
)
from ketamine_clinic.clinical.scales import get_scale
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.reference import read_toml


@cache
def _actions() -> dict[str, str]:
    return {str(k): str(v) for k, v in read_toml("alarm_actions.toml")["action"].items()}


def action(key: str) -> str:
    """What to do for an alarm (``reference/alarm_actions.toml``)."""
    return _actions().get(key, "tell the physician")


def _bound_alarm(vs: mon.VitalSigns, th: mon.VitalThreshold, tz: str) -> list[NewAlarm]:
    value = vs.value(th.vital)
    if value is None:
        return []
    out = []
    for bound, limit, beyond in (("low", th.low, value < (th.low or 0)),
                                 ("high", th.high, value > (th.high or 0))):
        if limit is None or not beyond:
            continue
        side = "below" if bound == "low" else "above"
        message = (f"{words.vital(th.vital, value)} at {words.clock(vs.at, tz)} is {side} the "
                   f"alarm limit of {words.vital_value(th.vital, limit)} {words.tag(th.source)}: "
                   f"{action(f'{th.vital}.{bound}')}.")
        out.append(NewAlarm(f"vital_{bound}:{th.vital}", f"vital_{bound}", message, vs.at,
                            {"vital": th.vital, "bound": bound, "value": value,
                             "threshold": limit, "source": th.source}))
    return out


def vital_alarms(vs: mon.VitalSigns, *, baseline: mon.VitalSigns | None, rules: SessionRules,
                 during_infusion: bool, time_zone: str) -> tuple[NewAlarm, ...]:
    """Every alarm one set of vital signs raises."""
    out: list[NewAlarm] = []
    for th in rules.vital_thresholds:
        out.extend(_bound_alarm(vs, th, time_zone))
    if baseline is not None and baseline.at < vs.at:
        for rise in rules.rise_alarms:
            now, before = vs.value(rise.vital), baseline.value(rise.vital)
            if now is None or not before:
                continue
            change = (exact(now, field="value") - exact(before, field="baseline")) \
                / exact(before, field="baseline") * 100
            if change > rise.percent:
                message = (f"{words.vital(rise.vital, now)} at {words.clock(vs.at, time_zone)} "
                           f"is {words.num(change)}% above the pre-infusion "
                           f"{words.vital_value(rise.vital, before)}; the alarm is set at a "
                           f"rise of {words.num(rise.percent)}% {words.tag(rise.source)}: "
                           f"{action(f'{rise.vital}.rise')}.")
                out.append(NewAlarm(f"vital_rise:{rise.vital}", "vital_rise", message, vs.at,
                                    {"vital": rise.vital, "value": now, "baseline": before,
                                     "rise_percent": float(round(change, 1)),
                                     "threshold_percent": float(rise.percent),
                                     "source": rise.source}))
    if during_infusion and rules.capnography_required and vs.etco2_mmhg is None:
        out.append(NewAlarm(
            "etco2_missing", "etco2_missing",
            f"No end-tidal CO2 in the set at {words.clock(vs.at, time_zone)}: the protocol "
            f"requires continuous capnography during the infusion {words.tag('S40')}: "
            f"{action('etco2_missing')}.", vs.at, {"vital": "etco2_mmhg"}))
    return tuple(out)


def sedation_alarm(score: int, *, at: datetime, rules: SessionRules,
                   time_zone: str) -> NewAlarm | None:
    """An alarm when the sedation score is at or below the protocol's alarm level."""
    rule = rules.sedation_alarm_at_or_below
    if rule is None or score > rule.value:
        return None
    short = _scale_short(rules.sedation_scale)
    return NewAlarm(
        "sedation_deep", "sedation_deep",
        f"{short} {score} at {words.clock(at, time_zone)} is at or below the alarm level of "
        f"{rule.value} {words.tag(rule.source)}: {action('sedation_deep')}.", at,
        {"scale": rules.sedation_scale, "score": score, "alarm_at_or_below": rule.value,
         "source": rule.source})


def _scale_short(key: str) -> str:
    return get_scale(key).short


def observation_alarms(view: SessionView, kind: str, payload: dict[str, object],
                       at: datetime) -> tuple[NewAlarm, ...]:
    """The alarms one new observation raises (none that is already open)."""
    tz = view.facts.time_zone
    found: tuple[NewAlarm, ...] = ()
    if kind == "vitals":
        from ketamine_clinic.clinical.bedside.model import Entry

        vs = vital_signs_of(Entry(0, kind, at, payload))
        base = view.baseline_vitals
        found = vital_alarms(vs, baseline=None if base is None else vital_signs_of(base),
                             rules=view.rules, during_infusion=view.state in MONITORED_STATES,
                             time_zone=tz)
    elif kind == "sedation":
        score = payload.get("score")
        if isinstance(score, int):
            alarm = sedation_alarm(score, at=at, rules=view.rules, time_zone=tz)
            found = () if alarm is None else (alarm,)
    open_keys = view.open_alarm_keys
    return tuple(a for a in found if a.key not in open_keys)


def watch(view: SessionView) -> tuple[NewAlarm, ...]:
    """Alarms that time alone sets off: vital signs overdue, and a session-total limit
    reached. Each is raised once (per due time, per limit)."""
    tz = view.facts.time_zone
    raised = {a.key for a in view.alarms}
    out: list[NewAlarm] = []
    if view.overdue is not None and view.overdue.overdue:
        due = view.overdue.due_at
        key = f"overdue:{due.isoformat()}"
        out.append(NewAlarm(
            key, "overdue",
            f"Vital signs were due at {words.clock(due, tz)} (every "
            f"{words.minutes(view.rules.monitoring_interval)}) and none are charted since "
            f"{words.clock(view.overdue.reference, tz)}: {action('overdue')}.", view.now,
            {"due_at": due.isoformat(), **view.overdue.to_dict()}))
    if view.limit_check is not None and view.totals is not None:
        for finding in view.limit_check.findings:
            limit = finding.check.limit
            if limit.upper is None:
                continue
            per_kg = limit.quantity.endswith("per_kg")
            given = view.totals.total_mg / (view.order.weight_kg if per_kg else 1)
            if given < limit.upper:
                continue
            unit = "mg/kg" if per_kg else "mg"
            out.append(NewAlarm(
                f"dose_limit:{limit.quantity}:{limit.kind.value}", "dose_limit",
                f"The session total of {words.num(given, 2 if per_kg else 0)} {unit} has "
                f"reached the {limit.kind.value} limit of {words.num(limit.upper, 2)} {unit} "
                f"{words.tag(limit.source)}: {action('dose_limit')}.", view.now,
                {"due_at": limit.quantity, "limit": finding.check.to_dict()}))
    return tuple(a for a in out if a.key not in raised)
