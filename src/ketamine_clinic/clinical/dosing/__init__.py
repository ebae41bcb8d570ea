"""Dose-error reduction for ketamine infusions: dosing weight, bag, every form of a rate,
titration table, planned totals, limit checks and wrong-unit cross-checks.

Pure functions over frozen dataclasses; all arithmetic is exact (:mod:`.units`). Every
result has ``to_dict()`` giving a JSON-able dict with its inputs, its outputs and the
protocol (name, version) that produced it, for the web layer to store.

Modules
-------
:mod:`.rules` (protocol inputs, the adapter from a loaded protocol), :mod:`.weight` (the
dosing weight), :mod:`.rate` (the bag, wrong-unit cross-checks, :func:`check_rate`,
:func:`check_dose`), :mod:`.order` (titration table, totals, :func:`check_order`, the
order's own bounds, the blind double check). Callers import from this package; the names
below are its public interface.

One shared rate check
---------------------
:func:`check_rate` is the only place a rate is judged. :func:`check_order` calls it for
each step of the titration table (at order writing and again at signing), and the session
calls it for every later rate change (with the signed order's own bounds added through
:func:`order_limits`). :func:`check_dose` (the ``dose`` command) calls it for one rate.

Decisions
---------
* Limits are inclusive (a value equal to a bound is ok), see :mod:`.limit_checks`.
* A rate may be entered as mg/kg/h, mg/h or mL/h whatever the protocol's dosing basis; all
  three forms are always computed from the dosing weight and the bag's concentration.
* Titration step size and minimum interval bound *increases* only: lowering a rate (for
  side effects) is never held back. Stopping the infusion is not a rate change.
* Planned session total is the most the order allows: titrating up by the full step at
  the minimum interval from the start rate to the maximum rate, then holding the maximum
  until the planned duration ends (plus any bolus). The total if the rate is never raised
  is given too.
"""

from ketamine_clinic.clinical.dosing.order import (
    DoubleCheck,
    OrderCheck,
    PlanTotals,
    TitrationStep,
    check_order,
    double_check,
    order_limits,
    plan_totals,
    titration_table,
)
from ketamine_clinic.clinical.dosing.rate import RateCheck, check_bag, check_dose, check_rate
from ketamine_clinic.clinical.dosing.rules import (
    DosingRules,
    InfusionPlan,
    ProtocolRef,
    WeightBasis,
    default_rate_texts,
    rules_from_protocol,
)
from ketamine_clinic.clinical.dosing.weight import (
    DosingWeight,
    WeightMeasurement,
    adjusted_body_weight_kg,
    dosing_weight,
    ideal_body_weight_kg,
)

__all__ = [
    "DosingRules",
    "DosingWeight",
    "DoubleCheck",
    "InfusionPlan",
    "OrderCheck",
    "PlanTotals",
    "ProtocolRef",
    "RateCheck",
    "TitrationStep",
    "WeightBasis",
    "WeightMeasurement",
    "adjusted_body_weight_kg",
    "check_bag",
    "check_dose",
    "check_order",
    "check_rate",
    "default_rate_texts",
    "dosing_weight",
    "double_check",
    "ideal_body_weight_kg",
    "order_limits",
    "plan_totals",
    "rules_from_protocol",
    "titration_table",
]

