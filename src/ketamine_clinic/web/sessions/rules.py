"""What a session needs from its protocol version and its signed order.

The protocol is read once per request from the stored version's TOML text (the version
the order was written under), through the core's loader. Everything clinical here comes
from the protocol or the order; this module only gathers it into one object, so the
services and pages never reach into the protocol's structure themselves. If the protocol
format changes, only :func:`session_rules_from_protocol` changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ketamine_clinic.clinical.dosing import DosingRules, rules_from_protocol
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.monitoring import SESSION_LIMIT_QUANTITIES, VitalThreshold
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.errors import UsageError


@dataclass(frozen=True)
class SessionRules:
    """The protocol's rules for charting, alarms and discharge (one protocol version)."""

    protocol_name: str
    protocol_version: str
    monitoring_interval: timedelta
    vital_thresholds: tuple[VitalThreshold, ...]
    sedation_scale: str
    dissociation_scale: str
    premedication_required: bool
    pregnancy_status_required: bool
    minimum_observation: timedelta
    discharge_score: str
    discharge_threshold: int | None
    recovery_interval: timedelta
    session_limits: tuple[Limit, ...]
    dosing: DosingRules

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.protocol_name, "version": self.protocol_version}


def _value(q: Any) -> Any:
    """A protocol Quantity's or Choice's value (``None`` stays ``None``)."""
    return None if q is None else q.value


def _minutes(q: Any, path: str) -> timedelta:
    number = exact(_value(q), field=f"protocol.{path}")
    if number <= 0:
        raise UsageError(f"protocol.{path}", "must be greater than zero")
    return timedelta(microseconds=int(number * 60_000_000))


def session_rules_from_protocol(protocol: Any) -> SessionRules:
    """Build :class:`SessionRules` from a loaded ``clinical.protocol.Protocol``."""
    from ketamine_clinic.clinical.protocol import RuleKind

    mon, rec = protocol.monitoring, protocol.recovery
    pregnancy = any(r.kind is RuleKind.PREGNANCY for r in protocol.screening.rules)
    return SessionRules(
        protocol_name=str(protocol.name),
        protocol_version=str(protocol.version),
        monitoring_interval=_minutes(mon.vitals_interval_min, "monitoring.vitals_interval_min"),
        vital_thresholds=tuple(mon.alarms),
        sedation_scale=str(protocol.sedation.scale.value),
        # CADSS-6 is the dissociation form the session charts (issue 6); a titration
        # target on another dissociation scale would name it.
        dissociation_scale=(protocol.titration_target.scale
                            if protocol.titration_target is not None
                            and protocol.titration_target.scale.startswith("cadss")
                            else "cadss6"),
        premedication_required=bool(protocol.premedications),
        pregnancy_status_required=pregnancy,
        minimum_observation=_minutes(rec.min_observation_min, "recovery.min_observation_min"),
        discharge_score=str(rec.discharge_score.value),
        discharge_threshold=int(rec.discharge_threshold.value),
        recovery_interval=_minutes(rec.assessment_interval_min,
                                   "recovery.assessment_interval_min"),
        session_limits=tuple(lim for lim in protocol.limits
                             if lim.quantity in SESSION_LIMIT_QUANTITIES),
        dosing=rules_from_protocol(protocol),
    )


# Derived rules per protocol text (keyed by its SHA-256). The text is parsed once, by the
# protocols area's cached parse; versions never change once stored, and there are few.
_rules_by_sha256: dict[str, SessionRules] = {}


def rules_for_version(protocol_version: Any) -> SessionRules:
    """The rules of a stored ``ProtocolVersion`` row."""
    protocol = protocol_version.protocol()
    rules = _rules_by_sha256.get(protocol.sha256)
    if rules is None:
        rules = _rules_by_sha256[protocol.sha256] = session_rules_from_protocol(protocol)
    return rules


def order_dosing(order: Any) -> Any:
    """What a session's rate checks need from its signed order: the orders area's
    ``order_rate_rules`` (the order's check recomputed as signed, its own bounds, weight,
    bag concentration and ordered rates)."""
    from ketamine_clinic.web.orders.dosing import order_rate_rules

    return order_rate_rules(order)
