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
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ketamine_clinic.clinical.dosing import (
    DosingRules,
    InfusionPlan,
    OrderCheck,
    ProtocolRef,
    WeightBasis,
    WeightMeasurement,
    check_order,
    order_limits,
    rules_from_protocol,
)
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.monitoring import SESSION_LIMIT_QUANTITIES, VitalThreshold
from ketamine_clinic.clinical.units import Rate, RateForm, exact, parse_bag, parse_rate
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


def dosing_rules(protocol: Any) -> DosingRules:
    """The protocol's :class:`DosingRules`: the core's adapter when it reads this protocol
    format, else built here from the same fields (the adapter in ``clinical.dosing`` was
    written before ``clinical.protocol`` existed)."""
    try:
        return rules_from_protocol(protocol)
    except (UsageError, AttributeError, TypeError):
        pass
    d = protocol.dosing
    basis = RateForm.MG_PER_H if d.rate_unit == "mg/h" else RateForm.MG_PER_KG_PER_H

    def rate(q: Any) -> Rate:
        return Rate(exact(q.value, field="dosing"), basis)

    default_plan = None
    if d.min_step_interval_min is not None:
        default_plan = InfusionPlan(
            start_rate=rate(d.start_rate), max_rate=rate(d.max_rate),
            titration_step=None if d.titration_step is None else rate(d.titration_step),
            min_step_interval_min=d.min_step_interval_min.value,
            planned_duration_h=Fraction(d.planned_duration_min.value) / 60)
    ratio = d.obesity_threshold_ratio
    return DosingRules(
        protocol=ProtocolRef(str(protocol.name), str(protocol.version)),
        dosing_basis=basis,
        usual_rate=Fraction(d.usual_rate.value),
        allowed_concentrations_mg_per_ml=tuple(
            Fraction(c.value) for c in protocol.drug.bag_concentrations_mg_per_ml),
        limits=tuple(protocol.limits),
        max_weight_age_days=int(d.max_weight_age_days.value),
        weight_basis=WeightBasis(str(d.weight_rule.value)),
        obesity_threshold_ratio=None if ratio is None else Fraction(ratio.value),
        default_plan=default_plan,
    )


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
        dosing=dosing_rules(protocol),
    )


@lru_cache(maxsize=64)
def _rules_for_text(toml_text: str, origin: str) -> SessionRules:
    from ketamine_clinic.clinical.protocol import load_protocol_text

    return session_rules_from_protocol(load_protocol_text(toml_text, origin))


def rules_for_version(protocol_version: Any) -> SessionRules:
    """The rules of a stored ``ProtocolVersion`` row (cached by its text: versions never
    change once stored)."""
    return _rules_for_text(protocol_version.toml_text,
                           f"{protocol_version.name} v{protocol_version.version}")


@dataclass(frozen=True)
class OrderDosing:
    """What a session's rate checks need from its signed order.

    ``check`` is the order's :func:`check_order` recomputed from what the physician wrote,
    on the day it was signed (so exactly what was signed); ``extra_limits`` are its own
    bounds (:func:`order_limits`).
    """

    weight_kg: Fraction
    concentration_mg_per_ml: Fraction
    planned_duration: timedelta
    check: OrderCheck
    extra_limits: tuple[Limit, ...]

    @property
    def ordered_rates_mg_per_h(self) -> tuple[Fraction, ...]:
        return tuple(s.forms.rate_mg_per_h for s in self.check.table)


def order_dosing(order: Any, rules: SessionRules) -> OrderDosing:
    """Recompute the signed order's check from the order row (see :class:`OrderDosing`)."""
    from django.utils import timezone

    measured = order.weight_measurement
    patient = order.patient
    height = (patient.measurements.filter(kind="height_cm", entered_in_error_at__isnull=True)
              .order_by("-measured_at", "-id").first())
    sex = patient.sex_at_birth if patient.sex_at_birth in ("male", "female") else None
    weight = WeightMeasurement(
        weight_kg=exact(str(measured.value_number), field="order.weight"),
        measured_on=timezone.localdate(measured.measured_at),
        height_cm=None if height is None else exact(str(height.value_number), field="height"),
        sex=sex,
    )
    step_text = (order.titration_step_text or "").strip()
    plan = InfusionPlan(
        start_rate=parse_rate(order.start_rate_text, field="order.start_rate"),
        max_rate=parse_rate(order.max_rate_text, field="order.max_rate"),
        titration_step=parse_rate(step_text, field="order.titration_step") if step_text
        else None,
        min_step_interval_min=Fraction(order.min_step_interval_min),
        planned_duration_h=Fraction(order.planned_duration_min, 60),
        sessions=max(1, int(order.series.planned_sessions)),
    )
    bag = parse_bag(f"{order.bag_drug_mg} mg in {order.bag_volume_ml} mL", field="order.bag")
    signed = order.signed_at or order.written_at
    check = check_order(rules=rules.dosing, weight=weight, bag=bag, plan=plan,
                        on=timezone.localdate(signed))
    return OrderDosing(
        weight_kg=check.weight.weight_kg,
        concentration_mg_per_ml=bag.concentration_mg_per_ml,
        planned_duration=timedelta(minutes=order.planned_duration_min),
        check=check,
        extra_limits=order_limits(check),
    )
