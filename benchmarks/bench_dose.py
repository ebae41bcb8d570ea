"""How long a dose check takes in the pure core.

Times, per call over many repetitions (best of several rounds, so that other processes on
a shared machine disturb it least):

* ``check_rate``: one proposed rate against the protocol's limits, with the wrong-unit
  cross-checks and session-total projection: the check run at every rate change;
* ``check_dose``: the same plus the bag's concentration check, from already-parsed inputs
  (the ``dose`` command's core);
* ``parse + check_dose``: including reading "0.5 mg/kg/h" and "500 mg in 500 mL" with pint;
* ``check_order``: a whole order (dosing weight, bag, 5-step titration table, totals, a
  check_rate per step, order-level limits).

Run: ``.venv/bin/python benchmarks/bench_dose.py [--protocol NAME] [--number N]``.
Results are figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import timeit
from datetime import date
from fractions import Fraction

from ketamine_clinic.clinical.dosing import (
    DosingRules,
    InfusionPlan,
    WeightMeasurement,
    check_dose,
    check_order,
    check_rate,
)
from ketamine_clinic.clinical.units import parse_bag, parse_rate
from ketamine_clinic.errors import UsageError


def load_rules(name: str) -> DosingRules:
    from ketamine_clinic.commands.dose import rules_for_protocol

    try:
        return rules_for_protocol(name)
    except UsageError as exc:
        raise SystemExit(f"bench_dose: cannot load protocol {name!r}: {exc.problem}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="clinic-standard")
    parser.add_argument("--number", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rules = load_rules(args.protocol)
    weight = Fraction(70)
    bag = parse_bag("500 mg in 500 mL")
    concentration = bag.concentration_mg_per_ml
    if concentration not in rules.allowed_concentrations_mg_per_ml:
        concentration = rules.allowed_concentrations_mg_per_ml[0]
        bag = parse_bag(f"{float(concentration * 100):g} mg in 100 mL")
    usual = f"{float(rules.usual_rate):g} {rules.dosing_basis.value}"
    rate = parse_rate(usual)
    step = parse_rate(f"{float(rules.usual_rate / 4):g} {rules.dosing_basis.value}")
    top = parse_rate(f"{float(rules.usual_rate * 2):g} {rules.dosing_basis.value}")
    plan = InfusionPlan(rate, top, step, Fraction(15), Fraction(4))
    today = date(2025, 3, 4)

    cases = {
        "check_rate (session rate change)": lambda: check_rate(
            rate,
            rules=rules,
            weight_kg=weight,
            concentration_mg_per_ml=concentration,
            previous_rate_mg_per_h=Fraction(50),
            minutes_since_last_change=Fraction(20),
            session_given_mg=Fraction(40),
            session_remaining_h=Fraction(3),
        ),
        "check_dose (parsed inputs)": lambda: check_dose(
            rules=rules, weight_kg=weight, bag=bag, rate=rate, duration_h=Fraction(4)
        ),
        "parse + check_dose": lambda: check_dose(
            rules=rules,
            weight_kg=weight,
            bag=parse_bag(f"{float(bag.drug_mg):g} mg in {float(bag.volume_ml):g} mL"),
            rate=parse_rate(usual),
            duration_h=Fraction(4),
        ),
        "check_order (5-step table)": lambda: check_order(
            rules=rules, weight=WeightMeasurement(weight, today), bag=bag, plan=plan, on=today
        ),
    }
    print(
        f"protocol {rules.protocol.name} {rules.protocol.version}; "
        f"{len(rules.limits)} limits; best of {args.rounds} rounds"
    )
    for label, fn in cases.items():
        fn()  # warm caches (pint registry, reference files)
        best = min(timeit.repeat(fn, number=args.number, repeat=args.rounds)) / args.number
        print(f"{label:36s} {best * 1e6:9.1f} µs per call")


if __name__ == "__main__":
    main()
