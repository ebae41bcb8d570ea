"""``ketamine-clinic dose``: one rate in every form, checked against a protocol's limits.

Exit codes: 0 no hard limit exceeded (soft limits and cross-checks are shown, they need a
clinician's override or confirmation in the order workflow), 1 a hard limit exceeded,
2 bad input (unknown protocol, unit, concentration; zero or negative numbers).
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import json
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ketamine_clinic.errors import UsageError

# The clinical core is imported inside the handler, so that ``--help`` stays light.
if TYPE_CHECKING:
    from ketamine_clinic.clinical.dosing import DosingRules, DosingWeight, RateCheck
    from ketamine_clinic.clinical.limit_checks import LimitCheck


def rules_for_protocol(name: str) -> DosingRules:
    """The dosing rules of a shipped protocol, by name (``--protocol``): its newest
    non-draft version (``clinical.protocol.load_protocol``)."""
    from ketamine_clinic.clinical.dosing import rules_from_protocol
    from ketamine_clinic.clinical.protocol import load_protocol

    return rules_from_protocol(load_protocol(name))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dose",
        help="show a rate as mg/kg/h, mg/h and pump mL/h and check it against a protocol",
        description=(
            "Convert one infusion rate into all its forms for a dosing weight and a bag, "
            "and check it against the protocol's hard and soft limits and the wrong-unit "
            "guards. Exit 0: no hard limit exceeded; 1: a hard limit exceeded; 2: bad input."
        ),
    )
    parser.add_argument("--protocol", required=True, metavar="NAME", help="shipped protocol")
    parser.add_argument(
        "--weight-kg", required=True, metavar="W", help="actual body weight in kg (e.g. 72.5)"
    )
    parser.add_argument(
        "--rate",
        required=True,
        metavar="RATE",
        help='rate with its unit: "0.5 mg/kg/h", "60 mg/h" or "25 mL/h"',
    )
    parser.add_argument(
        "--bag", required=True, metavar="BAG", help='bag preparation, e.g. "500 mg in 500 mL"'
    )
    parser.add_argument(
        "--duration",
        metavar="TIME",
        help='hold the rate this long and check session totals, e.g. "4 h" or "240 min" '
        "(default: the protocol's planned duration, if it has one)",
    )
    parser.add_argument(
        "--height-cm", metavar="H", help="height, needed if the protocol doses on IBW or ABW"
    )
    parser.add_argument(
        "--sex",
        choices=["female", "male"],
        help="for the ideal-body-weight formula, if the protocol needs it",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.dosing import WeightMeasurement, check_dose, dosing_weight
    from ketamine_clinic.clinical.units import (
        parse_bag,
        parse_duration_h,
        parse_rate,
        parse_weight_kg,
        positive,
    )

    rules = _rules(args.protocol)
    actual_kg = parse_weight_kg(args.weight_kg, field="--weight-kg")
    rate = parse_rate(args.rate, field="--rate")
    bag = parse_bag(args.bag, field="--bag")
    if args.duration is not None:
        duration_h: Fraction | None = parse_duration_h(args.duration, field="--duration")
    elif rules.default_plan is not None:
        duration_h = rules.default_plan.planned_duration_h
    else:
        duration_h = None
    today = date.today()
    height = None if args.height_cm is None else positive(args.height_cm, field="--height-cm")
    try:
        weight = dosing_weight(
            WeightMeasurement(actual_kg, today, height_cm=height, sex=args.sex),
            basis=rules.weight_basis,
            max_age_days=rules.max_weight_age_days,
            on=today,
            obesity_threshold_ratio=rules.obesity_threshold_ratio,
        )
    except UsageError as exc:
        # Name the command-line option rather than the core's field.
        option = {"weight": "--weight-kg", "height_cm": "--height-cm", "sex": "--sex"}
        raise UsageError(option.get(exc.field, exc.field), exc.problem) from None
    try:
        result = check_dose(
            rules=rules, weight_kg=weight.weight_kg, bag=bag, rate=rate, duration_h=duration_h
        )
    except UsageError as exc:
        raise UsageError("--bag" if exc.field == "bag" else exc.field, exc.problem) from None
    if args.json:
        print(json.dumps(_json(result, weight), indent=2, ensure_ascii=False))
    else:
        print(_table(result, weight, bag_text=bag.text, duration_h=duration_h))
    return 1 if result.blocked else 0


def _rules(name: str) -> DosingRules:
    try:
        return rules_for_protocol(name)
    except UsageError as exc:
        raise UsageError("--protocol", exc.problem) from None


def _json(result: RateCheck, weight: DosingWeight) -> dict[str, Any]:
    record = result.to_dict()
    record["dosing_weight"] = weight.to_dict()
    return record


def _n(value: Fraction | float | None) -> str:
    """A number for people: at most 3 decimals, no trailing zeros."""
    if value is None:
        return "-"
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _bound_text(check: LimitCheck) -> str:
    lim = check.limit
    if lim.lower is not None and lim.upper is not None:
        return f"{_n(lim.lower)}–{_n(lim.upper)}"
    if lim.upper is not None:
        return f"≤ {_n(lim.upper)}"
    return f"≥ {_n(lim.lower)}"


# By the name of the limit check's Outcome.
_VERDICTS = {
    "OK": "OK: within every limit",
    "CONFIRM": "CONFIRM: a wrong-unit guard asks the clinician to confirm the rate",
    "OVERRIDE": "SOFT LIMIT EXCEEDED: needs a physician's coded reason and free text",
    "BLOCKED": "BLOCKED: a hard limit is exceeded; it cannot be overridden",
}


def _table(
    result: RateCheck, weight: DosingWeight, *, bag_text: str, duration_h: Fraction | None
) -> str:
    from ketamine_clinic.clinical.dosing import WeightBasis
    from ketamine_clinic.clinical.limit_checks import Outcome

    f = result.forms
    basis = weight.basis.value
    if weight.basis is not WeightBasis.ACTUAL:
        basis += f" (actual {_n(weight.actual_kg)} kg)"
    lines = [
        f"Protocol       {result.protocol.name} {result.protocol.version}",
        f"Dosing weight  {_n(weight.weight_kg)} kg, {basis}",
        f"Bag            {bag_text} = {_n(result.concentration_mg_per_ml)} mg/mL",
        f"Rate entered   {result.rate.text or _n(result.rate.value)} ({result.rate.form.value})",
        "",
        f"  {_n(f.rate_mg_per_kg_per_h):>10} mg/kg/h",
        f"  {_n(f.rate_mg_per_h):>10} mg/h",
        f"  {_n(f.pump_rate_ml_per_h):>10} mL/h   pump rate",
    ]
    if duration_h is not None and result.projected_session_total_mg is not None:
        lines.append(
            f"  {_n(result.projected_session_total_mg):>10} mg     over {_n(duration_h)} h "
            f"({_n(result.projected_session_total_mg_per_kg)} mg/kg, "
            f"{_n(result.projected_session_volume_ml)} mL)"
        )
    lines += ["", f"{'Limit':28} {'Kind':5} {'Bound':>12} {'Value':>10}  Status"]
    for c in result.limit_checks:
        mark = "EXCEEDED" if c.exceeded else "ok"
        lines.append(
            f"{c.limit.quantity:28} {c.limit.kind.value:5} {_bound_text(c):>12} "
            f"{_n(c.value):>10}  {mark}"
        )
    if not result.limit_checks:
        lines.append("(the protocol has no limit on these quantities)")
    lines += ["", "Cross-checks"]
    for x in result.cross_checks:
        lines.append(f"  {x.code:28} {x.status.value:8} {x.message}")
    lines.append("")
    if result.blocked:
        lines.append(_VERDICTS[Outcome.BLOCKED.name])
    if result.needs_override:
        lines.append(_VERDICTS[Outcome.OVERRIDE.name])
    if result.needs_confirmation:
        lines.append(_VERDICTS[Outcome.CONFIRM.name])
    if result.outcome is Outcome.OK:
        lines.append(_VERDICTS[Outcome.OK.name])
    return "\n".join(lines)
