"""The infusion session as a state machine, and the gate before an infusion may start.

A session moves through::

    scheduled → checked_in → pre_assessment_complete → premedication_given → infusing
    infusing ⇄ paused → stopped → recovering → discharged

and may end as ``transferred`` or ``abandoned`` (each with a written reason) from any
state that is not final. The web layer stores the events; the state is always the fold of
:func:`transition` over them (:func:`replay`), so it can be recomputed from the record.

Nothing here reads a clock or a database: the caller gathers the facts into a
:class:`StartGateInput` (or a discharge gate result from :mod:`.discharge`) and passes
them in the :class:`TransitionContext`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ketamine_clinic.errors import UsageError


class SessionState(enum.Enum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    PRE_ASSESSMENT_COMPLETE = "pre_assessment_complete"
    PREMEDICATION_GIVEN = "premedication_given"
    INFUSING = "infusing"
    PAUSED = "paused"
    STOPPED = "stopped"
    RECOVERING = "recovering"
    DISCHARGED = "discharged"
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {SessionState.DISCHARGED, SessionState.TRANSFERRED, SessionState.ABANDONED}
)


class SessionEvent(enum.Enum):
    CHECK_IN = "check_in"
    COMPLETE_PRE_ASSESSMENT = "complete_pre_assessment"
    GIVE_PREMEDICATION = "give_premedication"
    START_INFUSION = "start_infusion"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    BEGIN_RECOVERY = "begin_recovery"
    DISCHARGE = "discharge"
    TRANSFER = "transfer"
    ABANDON = "abandon"


S, E = SessionState, SessionEvent

# The ordinary path. TRANSFER and ABANDON are accepted from every non-final state and are
# handled separately; START_INFUSION from PRE_ASSESSMENT_COMPLETE is only allowed when the
# protocol prescribes no premedication (see ``transition``).
_TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = {
    (S.SCHEDULED, E.CHECK_IN): S.CHECKED_IN,
    (S.CHECKED_IN, E.COMPLETE_PRE_ASSESSMENT): S.PRE_ASSESSMENT_COMPLETE,
    (S.PRE_ASSESSMENT_COMPLETE, E.GIVE_PREMEDICATION): S.PREMEDICATION_GIVEN,
    (S.PRE_ASSESSMENT_COMPLETE, E.START_INFUSION): S.INFUSING,
    (S.PREMEDICATION_GIVEN, E.START_INFUSION): S.INFUSING,
    (S.INFUSING, E.PAUSE): S.PAUSED,
    (S.PAUSED, E.RESUME): S.INFUSING,
    (S.INFUSING, E.STOP): S.STOPPED,
    (S.PAUSED, E.STOP): S.STOPPED,
    (S.STOPPED, E.BEGIN_RECOVERY): S.RECOVERING,
    (S.RECOVERING, E.DISCHARGE): S.DISCHARGED,
}
_EXITS = {E.TRANSFER: S.TRANSFERRED, E.ABANDON: S.ABANDONED}


class TransitionRefused(UsageError):
    """A session event that the current state (or a gate) does not allow.

    ``missing`` lists the unmet gate items when a gate refused it (empty otherwise).
    """

    def __init__(
        self,
        state: SessionState,
        event: SessionEvent,
        problem: str,
        missing: tuple[GateItem, ...] = (),
    ) -> None:
        self.state = state
        self.event = event
        self.missing = missing
        super().__init__(
            "event", f"cannot {event.value} a session that is {state.value}: {problem}"
        )


@dataclass(frozen=True, slots=True)
class GateItem:
    """One requirement of a gate that is not met: a stable ``code`` and a sentence."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class GateResult:
    """Whether a gate is open, and exactly what is missing when it is not.

    ``overridden`` lists items that failed but were overridden (discharge gate only).
    ``inputs`` is the gate's input as a JSON-able dict, stored with the decision.
    """

    gate: str
    missing: tuple[GateItem, ...]
    overridden: tuple[GateItem, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return not self.missing

    @property
    def missing_codes(self) -> tuple[str, ...]:
        return tuple(m.code for m in self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "allowed": self.allowed,
            "missing": [m.to_dict() for m in self.missing],
            "overridden": [m.to_dict() for m in self.overridden],
            "inputs": dict(self.inputs),
        }


@dataclass(frozen=True, slots=True)
class StartGateInput:
    """The facts that must hold before an infusion starts.

    The web layer computes each from the record: ``screening_current`` means the most
    recent eligibility screening is still valid under the protocol (and not ineligible
    without a documented override); ``order_verified`` means signed by a physician and
    independently double-checked; ``pregnancy_status_required`` comes from the protocol
    and the patient (it is ignored when False).
    """

    consent_on_file: bool
    screening_current: bool
    order_verified: bool
    pre_infusion_vitals_recorded: bool
    pre_infusion_pain_recorded: bool
    pregnancy_status_required: bool
    pregnancy_status_recorded: bool
    escort_name: str
    iv_access_documented: bool

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# Order is the order a nurse works through them at the bedside.
_START_CHECKS: tuple[tuple[str, str], ...] = (
    ("consent_on_file", "no signed consent on file"),
    ("screening_current", "no current eligibility screening"),
    ("order_verified", "the infusion order is not signed and independently verified"),
    ("pre_infusion_vitals_recorded", "no pre-infusion vital signs recorded"),
    ("pre_infusion_pain_recorded", "no pre-infusion pain score recorded"),
)


def start_gate(facts: StartGateInput) -> GateResult:
    """Everything that still stands between this session and starting the infusion.

    Returns a :class:`GateResult` whose ``missing`` names each unmet item, in bedside
    order; an empty list means the infusion may start.
    """
    missing = [GateItem(code, msg) for code, msg in _START_CHECKS if not getattr(facts, code)]
    if facts.pregnancy_status_required and not facts.pregnancy_status_recorded:
        missing.append(
            GateItem("pregnancy_status_recorded", "pregnancy status is required and not recorded")
        )
    if not facts.escort_name.strip():
        missing.append(GateItem("escort_confirmed", "no escort confirmed by name"))
    if not facts.iv_access_documented:
        missing.append(GateItem("iv_access_documented", "IV access is not documented"))
    return GateResult("start", tuple(missing), inputs=facts.to_dict())


@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What an event needs besides the state.

    start_gate
        Required for ``START_INFUSION``: the result of :func:`start_gate`.
    discharge_gate
        Required for ``DISCHARGE``: the result of :func:`.discharge.discharge_gate`.
    premedication_required
        From the protocol. When False, the infusion may start straight after the
        pre-assessment; when True, premedication must be recorded first.
    reason
        Required (non-blank) for ``TRANSFER`` and ``ABANDON``.
    """

    start_gate: GateResult | None = None
    discharge_gate: GateResult | None = None
    premedication_required: bool = True
    reason: str = ""


def transition(
    state: SessionState, event: SessionEvent, context: TransitionContext | None = None
) -> SessionState:
    """The state after ``event``, or :class:`TransitionRefused` saying why not."""
    ctx = context or TransitionContext()
    if state.is_final:
        raise TransitionRefused(state, event, "the session is closed")
    if event in _EXITS:
        if not ctx.reason.strip():
            raise TransitionRefused(state, event, "a written reason is required")
        return _EXITS[event]
    target = _TRANSITIONS.get((state, event))
    if target is None:
        allowed = ", ".join(e.value for e in allowed_events(state, ctx.premedication_required))
        raise TransitionRefused(state, event, f"allowed now: {allowed}")
    if event is E.START_INFUSION:
        if state is S.PRE_ASSESSMENT_COMPLETE and ctx.premedication_required:
            raise TransitionRefused(
                state, event, "the protocol requires premedication before the infusion"
            )
        _require_open_gate(state, event, ctx.start_gate, "start")
    if event is E.DISCHARGE:
        _require_open_gate(state, event, ctx.discharge_gate, "discharge")
    return target


def _require_open_gate(
    state: SessionState, event: SessionEvent, gate: GateResult | None, name: str
) -> None:
    if gate is None or gate.gate != name:
        raise TransitionRefused(state, event, f"the {name} gate has not been evaluated")
    if not gate.allowed:
        listed = "; ".join(m.message for m in gate.missing)
        raise TransitionRefused(state, event, f"missing: {listed}", gate.missing)


def allowed_events(
    state: SessionState, premedication_required: bool = True
) -> tuple[SessionEvent, ...]:
    """Events the state machine would accept now (gates aside), in workflow order."""
    if state.is_final:
        return ()
    found = [ev for (st, ev) in _TRANSITIONS if st is state]
    if state is S.PRE_ASSESSMENT_COMPLETE and premedication_required:
        found.remove(E.START_INFUSION)
    return (*found, E.TRANSFER, E.ABANDON)


def replay(
    events: Iterable[tuple[SessionEvent, TransitionContext]],
    start: SessionState = SessionState.SCHEDULED,
) -> SessionState:
    """Fold :func:`transition` over recorded events; the first refused one raises."""
    state = start
    for event, ctx in events:
        state = transition(state, event, ctx)
    return state
