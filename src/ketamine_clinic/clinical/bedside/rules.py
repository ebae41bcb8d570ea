"""A session's rules: everything the bedside needs from one protocol version.

Built once per protocol text (keyed by its SHA-256) from the loaded protocol; the web
layer never reaches into the protocol's structure itself. Every number here comes from
the protocol file, with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ketamine_clinic.clinical import scales
from ketamine_clinic.clinical.dosing import DosingRules, rules_from_protocol
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.monitoring import SESSION_LIMIT_QUANTITIES, VitalThreshold
from ketamine_clinic.clinical.protocol import (
    Protocol,
    Quantity,
    RiseAlarm,
    RuleKind,
    ScreeningRule,
    TestRequirement,
    TitrationTarget,
)
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.errors import UsageError


@dataclass(frozen=True, slots=True)
class ScoreRule:
    """A whole-number score cut-off on a scale, with its source."""

    value: int
    source: str


@dataclass(frozen=True)
class SessionRules:
    """The protocol's rules for charting, alarms, titration and discharge."""

    protocol_name: str
    protocol_version: str
    monitoring_interval: timedelta
    vital_thresholds: tuple[VitalThreshold, ...]
    start_limits: tuple[VitalThreshold, ...]
    rise_alarms: tuple[RiseAlarm, ...]
    capnography_required: bool
    sedation_scale: str
    sedation_stop_below: ScoreRule | None
    sedation_alarm_at_or_below: ScoreRule | None
    dissociation_scale: str
    titration_target: TitrationTarget | None
    premedication_required: bool
    pregnancy_rule: ScreeningRule | None
    minimum_observation: timedelta
    discharge_score: str
    discharge_threshold: int
    home_score: str | None
    home_threshold: int | None
    home_threshold_source: str
    score_max_age: timedelta | None
    score_max_age_source: str
    back_to_baseline: tuple[str, ...]
    back_to_baseline_source: str
    recovery_interval: timedelta
    session_limits: tuple[Limit, ...]
    tests: tuple[TestRequirement, ...]
    dosing: DosingRules

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.protocol_name, "version": self.protocol_version}

    @property
    def gate_score(self) -> str:
        """The score the discharge home rests on (the home-readiness score when the
        protocol names one, else its phase-I score)."""
        return self.home_score or self.discharge_score


def _minutes(q: Quantity | None, path: str) -> timedelta:
    if q is None:
        raise UsageError(f"protocol.{path}", "is required")
    number = exact(q.value, field=f"protocol.{path}")
    if number <= 0:
        raise UsageError(f"protocol.{path}", "must be greater than zero")
    return timedelta(microseconds=int(number * 60_000_000))


def _score_rule(q: Quantity | None) -> ScoreRule | None:
    return None if q is None else ScoreRule(int(q.value), q.source)


def session_rules_from_protocol(protocol: Protocol) -> SessionRules:
    """Build :class:`SessionRules` from a loaded protocol."""
    mon, rec, sed = protocol.monitoring, protocol.recovery, protocol.sedation
    pregnancy = next((r for r in protocol.screening.rules if r.kind is RuleKind.PREGNANCY),
                     None)
    target = protocol.titration_target
    max_age = rec.score_max_age_min
    return SessionRules(
        protocol_name=protocol.name,
        protocol_version=str(protocol.version),
        monitoring_interval=_minutes(mon.vitals_interval_min, "monitoring.vitals_interval_min"),
        vital_thresholds=mon.alarms,
        start_limits=mon.start_limits,
        rise_alarms=mon.rise_alarms,
        capnography_required=mon.capnography_required,
        sedation_scale=sed.scale.value,
        sedation_stop_below=_score_rule(sed.stop_titration_below),
        sedation_alarm_at_or_below=_score_rule(sed.alarm_at_or_below),
        # CADSS-6 is the dissociation form the session charts; a titration target on
        # another dissociation scale would name it.
        dissociation_scale=(target.scale if target is not None
                            and target.scale.startswith("cadss")
                            else scales.BEDSIDE_DISSOCIATION_SCALE),
        titration_target=target,
        premedication_required=bool(protocol.premedications),
        pregnancy_rule=pregnancy,
        minimum_observation=_minutes(rec.min_observation_min, "recovery.min_observation_min"),
        discharge_score=rec.discharge_score.value,
        discharge_threshold=int(rec.discharge_threshold.value),
        home_score=None if rec.home_score is None else rec.home_score.value,
        home_threshold=None if rec.home_threshold is None else int(rec.home_threshold.value),
        home_threshold_source="" if rec.home_threshold is None else rec.home_threshold.source,
        score_max_age=None if max_age is None else _minutes(max_age, "recovery.score_max_age_min"),
        score_max_age_source="" if max_age is None else max_age.source,
        back_to_baseline=rec.baseline_items,
        back_to_baseline_source=("" if rec.back_to_baseline is None
                                 else rec.back_to_baseline.source),
        recovery_interval=_minutes(rec.assessment_interval_min,
                                   "recovery.assessment_interval_min"),
        session_limits=tuple(lim for lim in protocol.limits
                             if lim.quantity in SESSION_LIMIT_QUANTITIES),
        tests=protocol.tests_before_treatment,
        dosing=rules_from_protocol(protocol),
    )


_rules_by_sha256: dict[str, SessionRules] = {}


def session_rules(protocol: Any) -> SessionRules:
    """The rules of a loaded protocol, derived once per protocol text."""
    rules = _rules_by_sha256.get(protocol.sha256)
    if rules is None:
        rules = _rules_by_sha256[protocol.sha256] = session_rules_from_protocol(protocol)
    return rules
