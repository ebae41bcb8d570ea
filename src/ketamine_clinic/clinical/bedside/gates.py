"""The gates of a session, judged on its view: before premedication and the start, and
before discharge home. Each unmet item is a sentence saying what is missing and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ketamine_clinic.clinical import discharge as dis
from ketamine_clinic.clinical.allergies import allergy_matches
from ketamine_clinic.clinical.bedside import words
from ketamine_clinic.clinical.bedside.medication import INFUSED_DRUG
from ketamine_clinic.clinical.bedside.model import Entry
from ketamine_clinic.clinical.bedside.view import SessionView, vital_signs_of
from ketamine_clinic.clinical.protocol import Severity
from ketamine_clinic.clinical.scales import get_scale
from ketamine_clinic.clinical.session import GateItem, GateResult, StartGateInput, start_gate

TEST_WORDS = {"ecg": "an ECG", "liver_function_tests": "liver function tests"}


def _pregnancy(view: SessionView) -> list[GateItem]:
    rule = view.rules.pregnancy_rule
    if rule is None or not view.facts.may_be_pregnant:
        return []
    status = view.pre_assessment.get("pregnancy_status") or view.facts.pregnancy_today
    tag = words.tag(rule.source)
    if status in (None, "", "not_applicable"):
        return [GateItem("pregnancy_status_recorded",
                         "Today's pregnancy status is not recorded: the protocol needs it for "
                         f"this patient {tag}. Record it in the pre-assessment.")]
    if status == "pregnant":
        return [GateItem("pregnancy", "The patient is recorded as pregnant today; the protocol "
                         f"excludes pregnancy {tag}. Do not start; tell the physician.")]
    if status == "unknown":
        judged = "excludes" if rule.when_unknown is Severity.EXCLUDE else "needs a physician for"
        return [GateItem("pregnancy", "Pregnancy status is unknown today; the protocol "
                         f"{judged} a possible pregnancy {tag}. Record a pregnancy test "
                         "result before the infusion.")]
    return []


def _baseline_vitals(view: SessionView) -> list[GateItem]:
    base = view.baseline_vitals
    if base is None:
        return []
    vs = vital_signs_of(base)
    tz = view.facts.time_zone
    out = []
    for th in view.rules.start_limits:
        value = vs.value(th.vital)
        if value is None:
            continue
        for bound, side, beyond in (("low", "below", th.low is not None and value < th.low),
                                    ("high", "above", th.high is not None and value > th.high)):
            if not beyond:
                continue
            limit = th.low if bound == "low" else th.high
            assert limit is not None
            out.append(GateItem(
                f"start_limit:{th.vital}",
                f"{words.vital(th.vital, value)} at {words.clock(base.at, tz)} is {side} the "
                f"limit of {words.vital_value(th.vital, limit)} for giving ketamine "
                f"{words.tag(th.source)}: do not premedicate or start; let the patient rest, "
                "take a new set of vital signs and tell the physician."))
    return out


def _allergy(view: SessionView) -> list[GateItem]:
    matches = allergy_matches(view.facts.allergies, INFUSED_DRUG)
    if not matches:
        return []
    return [GateItem("ketamine_allergy",
                     f"{matches[0].message} Ketamine is contraindicated in known "
                     f"hypersensitivity {words.tag('S26-label')}: do not start; tell the "
                     "physician.")]


def _tests(view: SessionView) -> list[GateItem]:
    facts = view.facts
    today = facts.today or view.now.date()
    out = []
    for req in view.rules.tests:
        if not set(req.screening_rules) & set(facts.screening_conditions):
            continue
        what = TEST_WORDS.get(req.test, req.test.replace("_", " "))
        tag = words.tag(req.source)
        results = sorted((r for r in facts.tests if r.test == req.test), key=lambda r: r.on)
        code = f"test:{req.test}"
        if not results:
            out.append(GateItem(code, f"The screening asks for {what} before treatment {tag}; "
                                "none is on record. Record the result before the infusion."))
            continue
        last = results[-1]
        age = (today - last.on).days
        if not last.in_range:
            out.append(GateItem(code, f"The {what} of {last.on:%d %b %Y} were out of range: "
                                f"a physician must review them before treatment {tag}."))
        elif age > req.valid_days.value:
            out.append(GateItem(code, f"The {what} on record are {age} days old; the protocol "
                                f"accepts {words.num(req.valid_days.value)} days "
                                f"{words.tag(req.valid_days.source)}. Repeat them."))
        elif req.recheck_every_sessions is not None:
            since = sum(1 for d in facts.previous_sessions if d >= last.on)
            every = int(req.recheck_every_sessions.value)
            if since >= every:
                out.append(GateItem(code, f"{since} sessions have been given since the {what} "
                                    f"of {last.on:%d %b %Y}; the protocol asks for new results "
                                    f"every {every} sessions "
                                    f"{words.tag(req.recheck_every_sessions.source)}."))
    return out


def start_gate_of(view: SessionView) -> GateResult:
    """Everything that still stands between the session and premedication or the start."""
    pa = view.pre_assessment
    facts = StartGateInput(
        consent_on_file=view.facts.consent_on_file,
        screening_current=view.facts.screening_problem is None,
        order_verified=view.order.verified,
        pre_infusion_vitals_recorded=view.baseline_vitals is not None,
        pre_infusion_pain_recorded=view.baseline_pain is not None,
        pregnancy_status_required=False,  # judged below, with today's status
        pregnancy_status_recorded=True,
        escort_name=str(pa.get("escort_name", "")),
        iv_access_documented=bool(pa.get("iv_access_documented", False)),
    )
    base = start_gate(facts)
    items = []
    for item in base.missing:
        if item.code == "screening_current" and view.facts.screening_problem:
            item = GateItem(item.code, f"{item.message}: {view.facts.screening_problem}")
        items.append(item)
    items += _allergy(view) + _pregnancy(view) + _baseline_vitals(view) + _tests(view)
    inputs = {**base.inputs, "pregnancy_status": pa.get("pregnancy_status")
              or view.facts.pregnancy_today,
              "screening_conditions": list(view.facts.screening_conditions),
              "allergies": [a.label for a in view.facts.allergies],
              "baseline_vitals_entry": None if view.baseline_vitals is None
              else view.baseline_vitals.id}
    return GateResult("start", tuple(items), inputs=inputs)


# --------------------------------------------------------------------------- discharge


def _score_of(view: SessionView, name: str) -> dis.DischargeScore | None:
    found = view.recovery_scores(name)
    return None if not found else dis.DischargeScore.from_dict(found[-1].payload["result"])


def _placeholder(view: SessionView, name: str, threshold: int) -> dis.DischargeScore:
    definition = dis.get_score_definition(name)
    return dis.DischargeScore(definition, (), threshold, "protocol", view.now,
                              {"note": "no assessment recorded"})


def _home_score_items(view: SessionView, score: dis.DischargeScore | None) -> list[GateItem]:
    rules, tz = view.rules, view.facts.time_zone
    if score is None or view.stopped_at is None:
        return []
    out = []
    short = score.definition.short
    earliest = view.stopped_at + rules.minimum_observation
    if score.assessed_at < earliest:
        out.append(GateItem(
            "home_score_early",
            f"The {short} was scored at {words.clock(score.assessed_at, tz)}, "
            f"{words.minutes(score.assessed_at - view.stopped_at)} after the infusion stopped; "
            f"it counts only from {words.clock(earliest, tz)} "
            f"({words.minutes(rules.minimum_observation)} after the stop). Score it again."))
    if rules.score_max_age is not None and view.now - score.assessed_at > rules.score_max_age:
        out.append(GateItem(
            "home_score_stale",
            f"The {short} was scored {words.minutes(view.now - score.assessed_at)} ago; the "
            f"protocol accepts a score at most {words.minutes(rules.score_max_age)} old "
            f"{words.tag(rules.score_max_age_source)}. Score it again."))
    return out


def _phase_one_items(view: SessionView) -> list[GateItem]:
    rules = view.rules
    if rules.home_score is None:
        return []  # the phase-I score is the discharge score itself
    score = _score_of(view, rules.discharge_score)
    short = dis.get_score_definition(rules.discharge_score).short
    if score is None:
        return [GateItem("phase_one_score",
                         f"No {short} assessment recorded yet: score it before the patient "
                         "leaves the chair.")]
    if score.total < rules.discharge_threshold:
        return [GateItem("phase_one_score",
                         f"{short} {score.total}/{score.definition.maximum}: the patient "
                         f"leaves the chair at {rules.discharge_threshold} or more "
                         f"{words.tag(score.definition.source)}.")]
    return []


def _back_to_baseline(view: SessionView) -> list[GateItem]:
    rules = view.rules
    stopped = view.stopped_at
    if stopped is None:
        return []
    tag = words.tag(rules.back_to_baseline_source)
    checks = []
    if "sedation" in rules.back_to_baseline:
        checks.append(_baseline_item(
            view, "sedation", rules.sedation_scale, view.baseline_sedation, "score",
            stopped=stopped, alert_is_higher=True,
            not_back=f"sedation is not back to baseline {tag}"))
    if "dissociation" in rules.back_to_baseline:
        checks.append(_baseline_item(
            view, "dissociation", rules.dissociation_scale, view.baseline_dissociation,
            "total", stopped=stopped, alert_is_higher=False,
            not_back=f"dissociative effects have not passed {tag}"))
    return [item for item in checks if item is not None]


def _baseline_item(view: SessionView, kind: str, scale_name: str, baseline: Entry | None,
                   key: str, *, stopped: datetime, alert_is_higher: bool,
                   not_back: str) -> GateItem | None:
    """Whether the newest ``kind`` score since the stop is back to the pre-infusion one. On
    a scale where the alert end is the highest value (sedation), a lower score is not back;
    where it is the lowest (dissociation), a higher one. Without a pre-infusion score, the
    alert end of the scale is the baseline."""
    scale = get_scale(scale_name)
    alert_end = scale.maximum if alert_is_higher else scale.minimum
    base = int(baseline.payload[key]) if baseline is not None else alert_end
    code = f"{kind}_baseline"
    now = view.latest(kind, since=stopped)
    if now is None:
        return GateItem(code, f"No {scale.short} score since the infusion stopped: score "
                              f"{kind} before discharge.")
    value = int(now.payload[key])
    if value < base if alert_is_higher else value > base:
        side = "below" if alert_is_higher else "above"
        return GateItem(code, f"{scale.short} {now.payload[key]} is {side} the patient's "
                              f"pre-infusion {base}: {not_back}.")
    return None


def discharge_gate_of(view: SessionView, *, escort_name: str | None = None,
                      instructions_given: bool = False,
                      overrides: Sequence[dis.Override] = ()) -> GateResult:
    """The discharge gate at ``view.now`` (core :func:`.discharge.discharge_gate`, with the
    home-readiness score, the phase-I score and the return to baseline)."""
    rules = view.rules
    name = rules.gate_score
    threshold = rules.home_threshold if rules.home_score else rules.discharge_threshold
    assert threshold is not None
    score = _score_of(view, name)
    further = (_phase_one_items(view) + _home_score_items(view, score)
               + _back_to_baseline(view)
               + [GateItem(h.code, h.message) for h in view.facts.record_holds])
    escort = str(view.pre_assessment.get("escort_name", "")) if escort_name is None \
        else escort_name
    facts = dis.DischargeGateInput(
        score=score or _placeholder(view, name, threshold),
        infusion_stopped_at=view.stopped_at, now=view.now,
        minimum_observation=rules.minimum_observation,
        unacknowledged_alarms=tuple(a.message for a in view.unacknowledged),
        escort_name=escort, instructions_given=instructions_given,
        overrides=tuple(overrides), further=tuple(further))
    gate = dis.discharge_gate(facts)
    if score is not None:
        return gate
    short = dis.get_score_definition(name).short

    def named(item: GateItem) -> GateItem:
        if item.code != "discharge_score":
            return item
        return GateItem(item.code, f"No {short} assessment recorded yet: score home "
                                   "readiness before discharge.")

    return GateResult(gate.gate, tuple(named(m) for m in gate.missing),
                      tuple(named(m) for m in gate.overridden), gate.inputs)


