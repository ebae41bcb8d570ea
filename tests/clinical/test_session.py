"""The session state machine and the start gate (issue 6)."""

from __future__ import annotations

import pytest

from ketamine_clinic.clinical.session import (
    GateResult,
    SessionEvent,
    SessionState,
    StartGateInput,
    TransitionContext,
    TransitionRefused,
    allowed_events,
    replay,
    start_gate,
    transition,
)
from ketamine_clinic.errors import UsageError

E, S = SessionEvent, SessionState


def ready(**changes: object) -> StartGateInput:
    facts: dict[str, object] = {
        "consent_on_file": True,
        "screening_current": True,
        "order_verified": True,
        "pre_infusion_vitals_recorded": True,
        "pre_infusion_pain_recorded": True,
        "pregnancy_status_required": True,
        "pregnancy_status_recorded": True,
        "escort_name": "Nell Ashgrove",
        "iv_access_documented": True,
    }
    facts.update(changes)
    return StartGateInput(**facts)  # type: ignore[arg-type]


OPEN_START = TransitionContext(start_gate=start_gate(ready()))
OPEN_DISCHARGE = TransitionContext(discharge_gate=GateResult("discharge", ()))


def test_a_session_walks_the_whole_path_from_scheduled_to_discharged() -> None:
    events = [
        (E.CHECK_IN, TransitionContext()),
        (E.COMPLETE_PRE_ASSESSMENT, TransitionContext()),
        (E.GIVE_PREMEDICATION, TransitionContext()),
        (E.START_INFUSION, OPEN_START),
        (E.PAUSE, TransitionContext()),
        (E.RESUME, TransitionContext()),
        (E.STOP, TransitionContext()),
        (E.BEGIN_RECOVERY, TransitionContext()),
        (E.DISCHARGE, OPEN_DISCHARGE),
    ]
    assert replay(events) is S.DISCHARGED


def test_the_start_gate_is_open_when_everything_is_in_place() -> None:
    gate = start_gate(ready())
    assert gate.allowed
    assert gate.missing == ()


def test_the_start_gate_names_every_missing_item() -> None:
    gate = start_gate(
        ready(
            consent_on_file=False,
            screening_current=False,
            order_verified=False,
            pre_infusion_vitals_recorded=False,
            pre_infusion_pain_recorded=False,
            pregnancy_status_recorded=False,
            escort_name="   ",
            iv_access_documented=False,
        )
    )
    assert gate.missing_codes == (
        "consent_on_file",
        "screening_current",
        "order_verified",
        "pre_infusion_vitals_recorded",
        "pre_infusion_pain_recorded",
        "pregnancy_status_recorded",
        "escort_confirmed",
        "iv_access_documented",
    )
    assert all(item.message for item in gate.missing)


def test_pregnancy_status_is_only_asked_for_when_the_protocol_requires_it() -> None:
    gate = start_gate(ready(pregnancy_status_required=False, pregnancy_status_recorded=False))
    assert gate.allowed


def test_the_start_gate_result_is_json_with_its_inputs() -> None:
    out = start_gate(ready(order_verified=False)).to_dict()
    assert out["allowed"] is False
    assert out["missing"] == [{"code": "order_verified", "message": out["missing"][0]["message"]}]
    assert out["inputs"]["escort_name"] == "Nell Ashgrove"


def test_it_refuses_to_start_the_infusion_while_the_gate_is_closed() -> None:
    ctx = TransitionContext(start_gate=start_gate(ready(consent_on_file=False)))
    with pytest.raises(TransitionRefused) as info:
        transition(S.PREMEDICATION_GIVEN, E.START_INFUSION, ctx)
    assert [m.code for m in info.value.missing] == ["consent_on_file"]
    assert "consent" in str(info.value)


def test_it_refuses_to_start_without_an_evaluated_gate() -> None:
    with pytest.raises(TransitionRefused, match="start gate has not been evaluated"):
        transition(S.PREMEDICATION_GIVEN, E.START_INFUSION, TransitionContext())


def test_a_discharge_gate_cannot_stand_in_for_the_start_gate() -> None:
    ctx = TransitionContext(start_gate=GateResult("discharge", ()))
    with pytest.raises(TransitionRefused):
        transition(S.PREMEDICATION_GIVEN, E.START_INFUSION, ctx)


def test_premedication_may_be_skipped_only_when_the_protocol_prescribes_none() -> None:
    with pytest.raises(TransitionRefused, match="requires premedication"):
        transition(S.PRE_ASSESSMENT_COMPLETE, E.START_INFUSION, OPEN_START)
    no_premed = TransitionContext(start_gate=OPEN_START.start_gate, premedication_required=False)
    assert transition(S.PRE_ASSESSMENT_COMPLETE, E.START_INFUSION, no_premed) is S.INFUSING


def test_it_refuses_a_step_out_of_order_and_says_what_is_allowed() -> None:
    with pytest.raises(TransitionRefused, match="allowed now: check_in, transfer, abandon"):
        transition(S.SCHEDULED, E.STOP)


def test_a_paused_infusion_can_be_stopped_but_not_paused_again() -> None:
    assert transition(S.PAUSED, E.STOP) is S.STOPPED
    with pytest.raises(TransitionRefused):
        transition(S.PAUSED, E.PAUSE)


def test_discharge_needs_an_open_discharge_gate() -> None:
    closed = GateResult("discharge", (), inputs={})
    assert transition(S.RECOVERING, E.DISCHARGE, TransitionContext(discharge_gate=closed)) is (
        S.DISCHARGED
    )
    from ketamine_clinic.clinical.session import GateItem

    failing = GateResult("discharge", (GateItem("escort_confirmed", "no escort"),))
    with pytest.raises(TransitionRefused, match="no escort"):
        transition(S.RECOVERING, E.DISCHARGE, TransitionContext(discharge_gate=failing))


@pytest.mark.parametrize(
    "state", [s for s in SessionState if not s.is_final], ids=lambda s: s.value
)
@pytest.mark.parametrize("event", [E.TRANSFER, E.ABANDON], ids=lambda e: e.value)
def test_any_open_session_can_be_transferred_or_abandoned_with_a_reason(
    state: SessionState, event: SessionEvent
) -> None:
    expected = S.TRANSFERRED if event is E.TRANSFER else S.ABANDONED
    assert transition(state, event, TransitionContext(reason="vasovagal episode")) is expected
    with pytest.raises(TransitionRefused, match="written reason"):
        transition(state, event, TransitionContext(reason="  "))


@pytest.mark.parametrize("state", [S.DISCHARGED, S.TRANSFERRED, S.ABANDONED], ids=lambda s: s.value)
def test_a_closed_session_accepts_no_event(state: SessionState) -> None:
    assert allowed_events(state) == ()
    with pytest.raises(TransitionRefused, match="closed"):
        transition(state, E.ABANDON, TransitionContext(reason="late entry"))


def test_a_refusal_is_a_usage_error_naming_the_event_field() -> None:
    with pytest.raises(UsageError) as info:
        transition(S.CHECKED_IN, E.DISCHARGE)
    assert info.value.field == "event"


def test_allowed_events_agree_with_transition_for_every_state() -> None:
    ctx = TransitionContext(
        start_gate=OPEN_START.start_gate,
        discharge_gate=OPEN_DISCHARGE.discharge_gate,
        reason="r",
    )
    for state in SessionState:
        allowed = set(allowed_events(state))
        for event in SessionEvent:
            if event in allowed:
                transition(state, event, ctx)
            else:
                with pytest.raises(TransitionRefused):
                    transition(state, event, ctx)


def test_the_session_discharge_and_outcome_cores_do_not_import_the_web_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import ketamine_clinic.clinical.session, ketamine_clinic.clinical.monitoring\n"
        "import ketamine_clinic.clinical.scales, ketamine_clinic.clinical.discharge\n"
        "import ketamine_clinic.clinical.outcomes\n"
        "bad = [m for m in ('django', 'ninja', 'pydantic') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
