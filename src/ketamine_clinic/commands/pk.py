"""``ketamine-clinic pk``: list the PK/PD models, simulate a patient or a population.

Exit codes: 0 success, 2 bad input (unknown model, bad segment or bolus, times before zero,
weight outside every model's range or refused by the model, non-numeric numbers).
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

# The PK core (NumPy, SciPy) is imported inside the handlers, so that ``--help`` and the
# other commands do not pay for it.
if TYPE_CHECKING:
    import numpy as np

    from ketamine_clinic.pk.parameter_sets import PKModel
    from ketamine_clinic.pk.population import PopulationResult
    from ketamine_clinic.pk.regimen import Regimen
    from ketamine_clinic.pk.simulate import Patient, SimulationResult

# Core field names -> the option that carries them.
_OPTION = {
    "weight_kg": "--weight-kg", "age_years": "--age-years", "segment": "--segment",
    "bolus": "--bolus", "drug": "--drug", "model": "--model", "times_min": "--at",
    "ke0": "--ke0", "threshold": "--threshold-ng-per-ml", "omega2": "--omega2", "n": "--n",
    "seed": "--seed", "percentiles": "--percentiles", "stop_min": "--segment",
}
_AFTER_MIN = 720.0  # default plot/table horizon after the last input: 12 h
_PROGRESS_FROM_N = 5000


@contextmanager
def _options() -> Iterator[None]:
    """Re-label core UsageErrors with the command-line option that carries the field."""
    try:
        yield
    except UsageError as exc:
        raise UsageError(_OPTION.get(exc.field, exc.field), exc.problem) from None


def drug_names() -> list[str]:
    """The drugs of ``pk/models.toml`` (the table ``catalogue().drugs`` is built from), read
    without the PK core so that building the parser stays light."""
    return sorted(read_toml("models.toml", "ketamine_clinic.pk")["drugs"])


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pk", help="ketamine/norketamine PK/PD models and simulations",
        description="Published ketamine PK/PD models: list them, simulate one patient or a "
                    "virtual population (exact solution).")
    sub = parser.add_subparsers(dest="pk_command", metavar="PK_COMMAND", required=True)

    models = sub.add_parser("models", help="list models with references, sampling site, "
                                           "compound and validity",
                            description="List the models with their references, sampling "
                                        "site, compound and validity ranges.")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=handle_models)

    sim = sub.add_parser("simulate", help="predict concentrations for one patient",
                         description="Predict plasma, effect-site and norketamine "
                                     "concentrations [ng/mL] for one (typical) patient.")
    _common(sim)
    sim.set_defaults(func=handle_simulate)

    pop = sub.add_parser("population", help="percentile bands of a virtual population",
                         description="Simulate N virtual patients with log-normal "
                                     "inter-individual variability and print percentiles.")
    _common(pop)
    pop.add_argument("--n", required=True, type=int, help="number of virtual patients")
    pop.add_argument("--seed", required=True, type=int, help="random seed (reproducible)")
    pop.add_argument("--percentiles", default="5,50,95",
                     help="comma-separated percentiles (default 5,50,95)")
    pop.add_argument("--omega2", metavar="NAME=VAR,...",
                     help="user-given variances of eta, e.g. CL=0.09,V1=0.1 (replaces the "
                          "published variability; needed for models without one)")
    pop.add_argument("--no-progress", action="store_true", help="no progress bar")
    pop.set_defaults(func=handle_population)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="ID", help="model id (see `pk models`)")
    p.add_argument("--weight-kg", required=True, metavar="W", help="body weight [kg]")
    p.add_argument("--age-years", metavar="A", help="age [years]")
    p.add_argument("--height-cm", metavar="H", help="height [cm] (recorded; no model uses it)")
    p.add_argument("--sex", choices=["female", "male"], help="sex (recorded; no model uses it)")
    p.add_argument("--drug", choices=drug_names(), default="racemic",
                   help="drug given (default racemic)")
    p.add_argument("--segment", action="append", default=[], metavar="START:END:RATE",
                   help="infusion from START to END min at RATE mg/h (repeatable)")
    p.add_argument("--bolus", action="append", default=[], metavar="AT:MG",
                   help="bolus of MG mg at AT min (repeatable)")
    p.add_argument("--at", metavar="T1,T2,...|START:STOP:STEP",
                   help="output times [min] (default: every minute from 0 to 12 h after the "
                        "last input; every 30 min in the table)")
    p.add_argument("--ke0", metavar="K", help="override the effect-site ke0 [1/min]")
    p.add_argument("--threshold-ng-per-ml", metavar="C",
                   help="also report when each concentration falls below C for good")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    out.add_argument("--plot", metavar="FILE.png", help="write a PNG plot")


# ----------------------------------------------------------------------------- parsing

def _number(text: str, option: str, what: str = "a number") -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(option, f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise UsageError(option, f"{text!r} is not a finite number")
    return value


def _optional(text: str | None, option: str) -> float | None:
    return None if text is None else _number(text, option)


def _parts(text: str, option: str, n: int, shape: str) -> list[float]:
    parts = text.split(":")
    if len(parts) != n:
        raise UsageError(option, f"{text!r} is not {shape}")
    return [_number(p, option, f"a number in {shape}") for p in parts]


def parse_regimen(args: argparse.Namespace) -> Regimen:
    from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment

    segments = tuple(Segment(*_parts(s, "--segment", 3, "START_MIN:END_MIN:RATE_MG_PER_H"))
                     for s in args.segment)
    boluses = tuple(Bolus(*_parts(b, "--bolus", 2, "AT_MIN:MG")) for b in args.bolus)
    with _options():
        return Regimen(segments, boluses, args.drug)


def parse_times(text: str | None, end_min: float, step_min: float) -> np.ndarray:
    import numpy as np

    if text is None:
        return np.arange(0.0, end_min + _AFTER_MIN + step_min / 2, step_min)
    if ":" in text:
        start, stop, step = _parts(text, "--at", 3, "START:STOP:STEP")
        if step <= 0:
            raise UsageError("--at", "STEP must be positive")
        if stop < start:
            raise UsageError("--at", "STOP must not be before START")
        times = np.arange(start, stop + step / 2, step)
    else:
        times = np.array([_number(t, "--at") for t in text.split(",") if t.strip()])
    if times.size == 0:
        raise UsageError("--at", "give at least one time")
    if np.any(times < 0):
        raise UsageError("--at", f"time {float(times[times < 0][0]):g} min is before time 0")
    return times


def parse_patient(args: argparse.Namespace) -> Patient:
    from ketamine_clinic.pk.simulate import Patient

    return Patient(_number(args.weight_kg, "--weight-kg"),
                   _optional(args.age_years, "--age-years"),
                   _optional(args.height_cm, "--height-cm"), args.sex)


def _plain_output(args: argparse.Namespace) -> bool:
    return not (args.json or args.csv or args.plot)


# ----------------------------------------------------------------------------- handlers

def handle_models(args: argparse.Namespace) -> int:
    from ketamine_clinic.pk.parameter_sets import catalogue

    cat = catalogue()
    rows = []
    for m in cat.pk.values():
        rows.append(_model_dict(m))
    for d in cat.pd.values():
        rows.append({"id": d.id, "kind": "pd", "name": d.name, "compound": d.compound,
                     "pk_model": d.pk_model, "research_model": d.research_model,
                     "ke0_per_min": d.ke0.per_min, "ke0": d.ke0.published,
                     "c50_ng_per_ml": d.c50_ng_per_ml, "readout": d.readout,
                     "reference": cat.references.get(d.source, d.source), "notes": d.notes})
    if args.json:
        print(json.dumps({"version": cat.version, "models": rows}, indent=2))
        return 0
    print(f"PK/PD models (data version {cat.version})\n")
    for r in rows:
        print(f"{r['id']}  [{r['kind']}] {r['name']}")
        print(f"    compound: {r['compound']}" + (
            f" + {r['metabolite']}" if r.get("metabolite") else ""))
        if r["kind"] == "pk":
            print(f"    sampling: {r['sampling']}")
            print(f"    validity: weight {r['validity']['weight_kg']} kg, age "
                  f"{r['validity']['age_years']} years ({r['validity']['source']})")
            ke0 = (f"{r['ke0']} ({r['ke0_status']}, {r['ke0_source']})" if r["ke0"]
                   else "none published")
            print(f"    ke0: {ke0}; IIV: {r['iiv'] or 'none published'}")
        else:
            print(f"    on PK model {r['pk_model']}; ke0 {r['ke0']}; C50 "
                  f"{r['c50_ng_per_ml']:g} ng/mL; research model")
        print(f"    reference: {r['reference']}\n")
    return 0


def _model_dict(m: PKModel) -> dict[str, Any]:
    from ketamine_clinic.pk.parameter_sets import catalogue

    cat = catalogue()
    v = m.validity
    return {
        "id": m.id, "kind": "pk", "name": m.name, "compound": m.compound,
        "metabolite": m.metabolite.compound if m.metabolite else None,
        "sampling": m.sampling, "structure": m.structure,
        "parameters": {p.name: ({"same_as": p.same_as} if p.same_as else
                                {"value": p.value, "unit": p.unit,
                                 "weight_exponent": p.weight_exponent, "source": p.source})
                       for p in m.parameters.values()},
        "ke0_per_min": m.ke0.per_min if m.ke0 else None,
        "ke0": m.ke0.published if m.ke0 else None,
        "ke0_status": m.ke0.status if m.ke0 else None,
        "ke0_source": m.ke0.source if m.ke0 else None,
        "iiv": m.iiv.label if m.iiv else None,
        "validity": {"weight_kg": str(v.weight_kg), "age_years": str(v.age_years),
                     "source": v.source},
        "reference": cat.references.get(m.source, m.source),
        "notes": m.notes,
    }


def handle_simulate(args: argparse.Namespace) -> int:
    from ketamine_clinic.pk.simulate import simulate

    regimen = parse_regimen(args)
    patient = parse_patient(args)
    times = parse_times(args.at, regimen.end_min, 30.0 if _plain_output(args) else 1.0)
    with _options():
        result = simulate(args.model, patient, regimen, times,
                          ke0_per_min=_optional(args.ke0, "--ke0"),
                          threshold_ng_per_ml=_optional(args.threshold_ng_per_ml,
                                                        "--threshold-ng-per-ml"))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.csv:
        print(_csv(result.times_min, _columns(result)), end="")
    elif args.plot:
        from ketamine_clinic.plots.pk import write_png

        path = write_png(result, args.plot)
        print(f"wrote {path}")
        _print_warnings(result.warnings)
    else:
        print(_table(result))
    return 0


def _columns(result: SimulationResult) -> dict[str, np.ndarray]:
    cols = {f"{name}_ng_per_ml": values for name, values in result.series().items()}
    if result.pd_effect is not None:
        cols["pd_effect"] = result.pd_effect
    return cols


def _csv(times: np.ndarray, cols: dict[str, np.ndarray]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_min", *cols])
    for i, t in enumerate(times):
        w.writerow([f"{t:g}", *(f"{c[i]:.6g}" for c in cols.values())])
    return buf.getvalue()


def _print_warnings(warnings: tuple[str, ...]) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def _table(result: SimulationResult) -> str:
    info = result.model
    cols = _columns(result)
    lines = [f"Model     {info.name} ({info.id}, data v{info.version})",
             f"Compound  {info.compound}"
             + (f" + {info.metabolite_compound}" if info.metabolite_compound else "")
             + f"; sampling: {info.sampling}",
             f"Patient   {result.patient.weight_kg:g} kg; drug {result.regimen.drug}, "
             f"{result.regimen.total_mg:g} mg in total",
             "", f"{'time_min':>9} " + " ".join(f"{c:>22}" for c in cols)]
    for i, t in enumerate(result.times_min):
        lines.append(f"{t:>9g} " + " ".join(f"{c[i]:>22.4g}" for c in cols.values()))
    if result.threshold_ng_per_ml is not None:
        lines.append("")
        for s, t in result.threshold_crossing_min.items():
            lines.append(f"{s} below {result.threshold_ng_per_ml:g} ng/mL from {t:.1f} min "
                         f"({t / 60:.2f} h)")
    for w in result.warnings:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)


def _parse_omega2(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError("--omega2", f"{item!r} is not NAME=VARIANCE")
        out[name.strip()] = _number(value, "--omega2")
    return out


def handle_population(args: argparse.Namespace) -> int:
    from ketamine_clinic.pk.population import simulate_population

    regimen = parse_regimen(args)
    patient = parse_patient(args)
    times = parse_times(args.at, regimen.end_min, 30.0 if _plain_output(args) else 1.0)
    pcts = [_number(p, "--percentiles") for p in args.percentiles.split(",") if p.strip()]
    omega2 = _parse_omega2(args.omega2)
    bar = None
    if not args.no_progress and args.n >= _PROGRESS_FROM_N:
        from tqdm import tqdm

        bar = tqdm(total=args.n, unit="patient", desc="virtual patients", file=sys.stderr)
    try:
        with _options():
            result = simulate_population(
                args.model, patient, regimen, times, n=args.n, seed=args.seed,
                percentiles=pcts, omega2=omega2, ke0_per_min=_optional(args.ke0, "--ke0"),
                threshold_ng_per_ml=_optional(args.threshold_ng_per_ml,
                                              "--threshold-ng-per-ml"),
                progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.csv:
        cols = {f"{s}_p{p:g}": band[i] for s, band in result.bands.items()
                for i, p in enumerate(result.percentiles)}
        print(_csv(result.times_min, cols), end="")
    elif args.plot:
        from ketamine_clinic.plots.pk import write_png

        path = write_png(result.typical, args.plot, population=result)
        print(f"wrote {path}")
        _print_warnings(result.warnings)
    else:
        print(_population_table(result))
    return 0


def _population_table(result: PopulationResult) -> str:
    lines = [f"Model     {result.model.name} ({result.model.id}, data v{result.model.version})",
             f"Patients  {result.n} virtual, seed {result.seed}; variability "
             f"{result.iiv_label}", ""]
    for s, band in result.bands.items():
        lines.append(f"{s} [ng/mL]" if s != "pd_effect" else "pd_effect [fraction]")
        lines.append(f"{'time_min':>9} " + " ".join(f"{'p' + format(p, 'g'):>12}"
                                                    for p in result.percentiles))
        for i, t in enumerate(result.times_min):
            lines.append(f"{t:>9g} " + " ".join(f"{band[j, i]:>12.4g}"
                                                for j in range(len(result.percentiles))))
        lines.append("")
    for s, ts in result.crossing_percentiles_min.items():
        text = ", ".join(f"p{p:g} {t:.1f}" for p, t in zip(result.percentiles, ts, strict=True))
        lines.append(f"{s} below {result.threshold_ng_per_ml:g} ng/mL from (min): {text}")
    for w in result.warnings:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)
