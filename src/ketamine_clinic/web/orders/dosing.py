"""Gathering the dosing core's inputs from stored rows (no writes, no clinical arithmetic).

The protocol of an order is its stored version's parsed protocol
(``ProtocolVersion.protocol``, parsed once per text); the order's own inputs (weight, bag,
plan) are rebuilt from what the physician wrote. Everything is then computed by ``clinical.dosing``.

For sessions: :func:`order_rate_rules` gives what ``clinical.dosing.check_rate`` needs at
every rate change of a signed order, so the session applies the same limits as the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from ketamine_clinic.clinical.dosing import (
    DosingRules,
    InfusionPlan,
    OrderCheck,
    WeightMeasurement,
    check_order,
    order_limits,
    rules_from_protocol,
)
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.units import Bag, exact, parse_bolus, parse_rate
from ketamine_clinic.web.patients.models import Measurement, MeasurementKind, Patient

if TYPE_CHECKING:
    from ketamine_clinic.web.orders.models import Order
    from ketamine_clinic.web.protocols.models import ProtocolVersion


def rules_of(pv: ProtocolVersion) -> DosingRules:
    return rules_from_protocol(pv.protocol())


def _number(value: Any, field: str) -> Fraction:
    return exact(str(value), field=field)


def weight_of(measurement: Measurement, patient: Patient) -> WeightMeasurement:
    """A stored weight as the core reads it, with the latest height on or before it and the
    sex at birth (needed only for ideal or adjusted body weight)."""
    height = (patient.measurements.filter(kind=MeasurementKind.HEIGHT_CM,
                                          entered_in_error_at__isnull=True,
                                          measured_at__lte=measurement.measured_at)
              .order_by("-measured_at", "-id").first())
    sex = patient.sex_at_birth if patient.sex_at_birth in ("male", "female") else None
    return WeightMeasurement(
        weight_kg=_number(measurement.value_number, "weight"),
        measured_on=timezone.localdate(measurement.measured_at),
        height_cm=None if height is None else _number(height.value_number, "height_cm"),
        sex=sex,
    )


@dataclass(frozen=True)
class OrderInputs:
    """What the physician wrote, as the core's types."""

    weight: WeightMeasurement
    bag: Bag
    plan: InfusionPlan


def plan_of(*, start_rate: str, max_rate: str, titration_step: str,
            min_step_interval_min: Any, planned_duration_min: Any, sessions: int,
            bolus: str) -> InfusionPlan:
    """An infusion plan from the order's texts; :class:`UsageError` names the field."""
    step = titration_step.strip()
    return InfusionPlan(
        start_rate=parse_rate(start_rate, field="start_rate"),
        max_rate=parse_rate(max_rate, field="max_rate"),
        titration_step=parse_rate(step, field="titration_step") if step else None,
        min_step_interval_min=_number(min_step_interval_min, "min_step_interval_min"),
        planned_duration_h=_number(planned_duration_min, "planned_duration_min") / 60,
        sessions=sessions,
        bolus=parse_bolus(bolus, field="bolus") if bolus.strip() else None,
    )


def order_inputs(order: Order) -> OrderInputs:
    bag = Bag(_number(order.bag_drug_mg, "bag"), _number(order.bag_volume_ml, "bag"),
              f"{order.bag_drug_mg.normalize():f} mg in {order.bag_volume_ml.normalize():f} mL")
    plan = plan_of(start_rate=order.start_rate_text, max_rate=order.max_rate_text,
                   titration_step=order.titration_step_text,
                   min_step_interval_min=order.min_step_interval_min,
                   planned_duration_min=order.planned_duration_min,
                   sessions=int(order.series.planned_sessions), bolus=order.bolus_text)
    return OrderInputs(weight_of(order.weight_measurement, order.patient), bag, plan)


def order_check_of(order: Order, *, on: date | None = None) -> OrderCheck:
    """The core's check of a stored order, on ``on`` (default: the day it was signed, or
    written if unsigned): exactly what was checked then."""
    when = on or timezone.localdate(order.signed_at or order.written_at)
    inputs = order_inputs(order)
    return check_order(rules=rules_of(order.protocol_version), weight=inputs.weight,
                       bag=inputs.bag, plan=inputs.plan, on=when)


@dataclass(frozen=True)
class OrderRateRules:
    """What a session's rate check needs from its signed order.

    Call ``clinical.dosing.check_rate(rate, rules=r.rules, weight_kg=r.weight_kg,
    concentration_mg_per_ml=r.concentration_mg_per_ml, extra_limits=r.extra_limits,
    reference_rates_mg_per_h=r.ordered_rates_mg_per_h, ...)`` and store the result's
    ``accept(...)`` events with :func:`ketamine_clinic.web.orders.services.limit_event_record`.

    Attributes
    ----------
    rules
        The protocol version's dosing rules (limits, guards).
    extra_limits
        The signed order's own bounds (``clinical.dosing.order_limits``).
    weight_kg, concentration_mg_per_ml
        Dosing weight [kg] and bag concentration [mg/mL] the order was signed with.
    ordered_rates_mg_per_h
        The titration table's rates [mg/h], for the wrong-unit guard.
    planned_duration_h
        Planned infusion time per session [h].
    check
        The order's check as signed.
    """

    rules: DosingRules
    extra_limits: tuple[Limit, ...]
    weight_kg: Fraction
    concentration_mg_per_ml: Fraction
    ordered_rates_mg_per_h: tuple[Fraction, ...]
    planned_duration_h: Fraction
    check: OrderCheck

    def __iter__(self) -> Iterator[Any]:
        """``rules, extra_limits = order_rate_rules(order)`` also works."""
        return iter((self.rules, self.extra_limits))


def order_rate_rules(order: Order) -> OrderRateRules:
    """The limits every later rate change of ``order`` is checked against (see
    :class:`OrderRateRules`). The order should be active (signed and verified)."""
    check = order_check_of(order)
    return OrderRateRules(
        rules=check.rules,
        extra_limits=order_limits(check),
        weight_kg=check.weight.weight_kg,
        concentration_mg_per_ml=check.bag.concentration_mg_per_ml,
        ordered_rates_mg_per_h=tuple(s.forms.rate_mg_per_h for s in check.table),
        planned_duration_h=check.plan.planned_duration_h,
        check=check,
    )
