"""Properties of the bedside core over random command sequences (issue 11): whatever a
nurse tries, in whatever order, no accepted sequence exceeds a hard limit, exceeds the
signed order without a physician, gives a drug not on the order or above its dose, or
discharges with a stale or missing home-readiness score."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical.bedside import decisions as d
from ketamine_clinic.clinical.bedside.model import Accepted
from ketamine_clinic.clinical.discharge import DischargeScore
from tests.clinical.bedside_world import CADSS_NONE, CADSS_SOME, VITALS, World, world

RATES = ["40 mg/h", "60 mg/h", "70 mg/h", "80 mg/h", "100 mg/h", "110 mg/h", "130 mg/h",
         "150 mg/h", "2 mg/kg/h", "120 mL/h"]
DRUGS = [("glycopyrrolate", "0.2"), ("glycopyrrolate", "0.4"), ("midazolam", "2"),
         ("midazolam", "5"), ("ondansetron", "4"), ("ketamine", "20"), ("lorazepam", "1")]

step = st.one_of(
    st.tuples(st.just("rate"), st.sampled_from(RATES), st.booleans()),
    st.tuples(st.just("give"), st.sampled_from(DRUGS), st.booleans()),
    st.tuples(st.just("vitals"), st.integers(60, 220), st.booleans()),
    st.tuples(st.just("scores"), st.integers(1, 5), st.booleans()),
    st.tuples(st.just("event"), st.sampled_from(["pause", "resume", "stop", "recover"]),
              st.booleans()),
    st.tuples(st.just("recovery"), st.sampled_from(["aldrete_modified_1995", "padss_modified"]),
              st.booleans()),
    st.tuples(st.just("discharge"), st.just(""), st.booleans()),
    st.tuples(st.just("pain"), st.integers(0, 10), st.booleans()),
)


def _command(w: World, at: Any, kind: str, what: Any, flag: bool) -> Any:
    if kind == "rate":
        return d.SetRate(at, what, override_code="titrated-to-effect" if flag else "",
                         override_text="nurse decided" if flag else "")
    if kind == "give":
        return d.Give(at, what[0], Fraction(what[1]), "mg", "IV")
    if kind == "vitals":
        return d.Observe(at, "vitals", {**VITALS, "systolic_bp_mmhg": what,
                                        "diastolic_bp_mmhg": min(what - 10, 110)})
    if kind == "scores":
        return d.Observe(at, "sedation", {"score": what}) if flag else \
            d.Observe(at, "dissociation", {"items": CADSS_SOME if what < 3 else CADSS_NONE})
    if kind == "event":
        return {"pause": d.Pause(at), "resume": d.Resume(at), "stop": d.Stop(at),
                "recover": d.BeginRecovery(at)}[what]
    if kind == "pain":
        return d.Observe(at, "pain", {"nrs": what})
    if kind == "recovery":
        observed = ({"activity": 2, "respiration": 2, "consciousness": 2}
                    if what.startswith("aldrete") else {"ambulation": 2, "nausea_vomiting": 2})
        return d.ScoreRecovery(at, observed, what)
    return d.Discharge(at, "Luis", True)


def _in_recovery(w: World) -> float:
    w.infusing()
    w.ok(d.Stop(w.at(120)))
    w.ok(d.BeginRecovery(w.at(121)))
    w.ok(d.Observe(w.at(122), "vitals", VITALS))
    w.ok(d.Observe(w.at(122), "pain", {"nrs": 6}))
    w.scores(122)
    return 122.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.integers(1, 40), step), min_size=1, max_size=40),
       pain=st.integers(0, 10), recovering=st.booleans())
def test_no_accepted_sequence_breaks_a_bedside_rule(steps: list[Any], pain: int,
                                                    recovering: bool) -> None:
    """From the start of the infusion, or (``recovering``) from the start of recovery."""
    w = world()
    if recovering:
        t = _in_recovery(w)
    else:
        w.infusing()
        w.ok(d.Observe(w.at(31), "pain", {"nrs": pain}))
        t = 31.0
    order = w.order
    for minutes, (kind, what, flag) in steps:
        t += minutes
        at = w.at(t)
        result = w.do(_command(w, at, kind, what, flag))
        if not isinstance(result, Accepted):
            continue
        for new in result.entries:
            p = new.payload
            if new.kind in ("infusion_start", "rate_change"):
                checks = p["rate_check"]["limits"]
                assert not [c for c in checks if c["kind"] == "hard"
                            and c["status"] == "exceeded"], p["rate_entered"]
                above_order = Fraction(p["rate_mg_per_h_exact"]) > order.max_rate_mg_per_h
                assert not above_order or p["physician"], p["rate_entered"]
            if new.kind in ("premedication", "rescue_medication"):
                line = order.line(p["drug"])
                assert line is not None, p["drug"]
                assert Fraction(str(p["dose"])) <= line.dose
            if new.kind == "discharge":
                event("discharged")
                view = w.view(at)
                home = view.recovery_scores("padss_modified")
                assert home, "discharged without a home-readiness score"
                score = DischargeScore.from_dict(home[-1].payload["result"])
                assert score.passed
                assert at - score.assessed_at <= (w.rules.score_max_age or timedelta.max)
                assert view.stopped_at is not None
                assert score.assessed_at >= view.stopped_at + w.rules.minimum_observation
    # Doses of each drug never exceed the ordered count.
    for line in order.lines:
        assert len(w.view().given(line.drug)) <= line.max_doses


recovery_step = st.sampled_from(["aldrete", "padss", "padss", "padss_poor", "sedated",
                                 "awake", "dissociated", "clear", "vitals", "pain",
                                 "discharge", "discharge", "discharge"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.integers(1, 20), recovery_step), min_size=1, max_size=30))
def test_discharge_never_opens_on_a_stale_early_or_missing_home_score(
        steps: list[Any]) -> None:
    """Recovery commands in any order and at any pace: every accepted discharge rests on a
    passed home-readiness score taken after the minimum observation, no older than the
    protocol allows, with a passed phase-I score and sedation and dissociation back to the
    pre-infusion level."""
    w = world()
    t = _in_recovery(w) + 50  # close to the end of the minimum observation
    for minutes, kind in steps:
        t += minutes
        at = w.at(t)
        command = {
            "aldrete": d.ScoreRecovery(at, {"activity": 2, "respiration": 2,
                                            "consciousness": 2}, "aldrete_modified_1995"),
            "padss": d.ScoreRecovery(at, {"ambulation": 2, "nausea_vomiting": 2},
                                     "padss_modified"),
            "padss_poor": d.ScoreRecovery(at, {"ambulation": 0, "nausea_vomiting": 1},
                                          "padss_modified"),
            "sedated": d.Observe(at, "sedation", {"score": 4}),
            "awake": d.Observe(at, "sedation", {"score": 5}),
            "dissociated": d.Observe(at, "dissociation", {"items": CADSS_SOME}),
            "clear": d.Observe(at, "dissociation", {"items": CADSS_NONE}),
            "vitals": d.Observe(at, "vitals", VITALS),
            "pain": d.Observe(at, "pain", {"nrs": 6}),
            "discharge": d.Discharge(at, "Luis", True),
        }[kind]
        result = w.do(command)
        if kind != "discharge" or not isinstance(result, Accepted):
            continue
        event("discharged")
        view = w.view(at)
        rules = w.rules
        home = DischargeScore.from_dict(view.recovery_scores("padss_modified")[-1]
                                        .payload["result"])
        phase_one = DischargeScore.from_dict(
            view.recovery_scores("aldrete_modified_1995")[-1].payload["result"])
        assert home.passed
        assert phase_one.passed
        assert rules.score_max_age is not None
        assert at - home.assessed_at <= rules.score_max_age
        assert view.stopped_at is not None
        assert home.assessed_at >= view.stopped_at + rules.minimum_observation
        assert view.latest("sedation") is not None
        assert view.latest("sedation").payload["score"] == 5  # type: ignore[union-attr]
        assert view.latest("dissociation").payload["total"] == 0  # type: ignore[union-attr]
        break
