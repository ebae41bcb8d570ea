"""PK simulator benchmarks (issue 17, the two PK rows; issue 19, BLAS threads): figures, not
pass/fail. Every ratio's two sides are measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_pk.py [--n 100000] [--rounds 30] [--only one|population]``
(``make bench`` installs opentiva, the ``bench`` dependency group).

1. **One patient**: a 4-h titrated racemic infusion (60 -> 90 -> 120 mg/h) and 12 h after,
   at 1-min resolution (961 times), Domino model, 70 kg, plasma and effect site, through
   the public ``simulate()``: first call for a parameter set ("cold": the weight changes by
   1e-9 kg each call, so the decomposition is redone) and repeated ("warm": the
   decomposition is cached per parameter set). Against scipy ``solve_ivp`` (LSODA, rtol
   1e-8, atol 1e-10; restarted at every rate change, one call per constant-rate segment,
   ``t_eval`` at the output times) and opentiva 1.1.2 (its Domino model on its per-second
   grid). The contenders run interleaved, one call each per round, so machine load hits
   them alike; each figure is the best and the median of the rounds. Each result's error
   is its largest relative difference from an independent exact reference (40-digit
   mpmath matrix exponentials, ``tests/pk/exact_reference.py``) over every non-zero value.
   BLAS: both ways, limited to one thread and left as the process has it (OpenBLAS: two
   threads here), for ours (the limit set for the whole run) and for the contenders.
2. **Population**: N virtual patients (default 100,000) x the same grid, Domino with
   effect site (2 series) and user-given variability: the engine (``solve``: decomposition,
   superposition, evaluation into fresh output arrays) against the cost of writing those
   output arrays (``np.empty`` + ``fill``, the memory-bound floor, page faults included,
   as the engine pays them too); ``simulate_population`` (draws, typical patient, engine,
   5/50/95 % bands) against the same; the peak of memory allocated during each call
   (tracemalloc, which sees NumPy's buffers) against the size of the output arrays.
   Best of ``--population-rounds`` (default 3), alternating engine and write. Both run on
   ``--threads`` threads (default: the core's default, one per core up to 4), and once
   more on one thread; CPU time (all threads) is printed beside wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pk.exact_reference

from tests.pk.exact_reference import exact_outputs, max_relative_error

from ketamine_clinic.pk import engine
from ketamine_clinic.pk.compartments import build_system
from ketamine_clinic.pk.engine import solve
from ketamine_clinic.pk.parameter_sets import individual_parameters
from ketamine_clinic.pk.population import (
    choose_iiv,
    draw_eta,
    simulate_population,
)
from ketamine_clinic.pk.regimen import Regimen, Segment
from ketamine_clinic.pk.simulate import Patient, prepare, simulate

REGIMEN = Regimen((Segment(0, 30, 60), Segment(30, 120, 90), Segment(120, 240, 120)))
PATIENT = Patient(70.0, age_years=40)
TIMES = np.arange(0.0, 240.0 + 720.0 + 0.5, 1.0)  # 961 times
OMEGA2 = {"V1": 0.1, "k10": 0.09}  # user-given variability for Domino (none published)


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int
                ) -> dict[str, tuple[float, float, float]]:
    """(best wall, median wall, best CPU) time [s] of each contender over ``rounds``
    rounds; in each round every contender runs once, in turn, after one warm-up call each.
    CPU time (user + system, page faults included) is this process's own: on a machine
    shared with other busy processes it leaves out the time spent waiting for a core."""
    for fn in contenders.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: (min(wall[k]), statistics.median(wall[k]), min(cpu[k])) for k in contenders}


def typical_system():  # type: ignore[no-untyped-def]
    prep = prepare("domino", PATIENT, REGIMEN)
    params = individual_parameters(prep.pk, np.array([70.0]))
    assert prep.ke0 is not None
    return prep, build_system(prep.pk, params, np.array([prep.ke0.per_min]))


def lsoda() -> dict[str, np.ndarray]:
    """Plasma and effect site by LSODA, restarted at each rate change (one call per
    constant-rate segment; the segment's end is the last t_eval point, to carry the state)."""
    prep, system = typical_system()
    A, b = system.A[0], system.b[0]
    rows = np.stack([r[0] for r in system.outputs.values()])
    sched = prep.schedule
    ends = [*sched.event_min[1:], TIMES[-1]]
    x = np.zeros(A.shape[0])
    out = np.empty((rows.shape[0], TIMES.size))
    lo = 0.0
    for k, hi in enumerate(ends):
        last = k == len(ends) - 1
        sel = (lo <= TIMES) & ((hi >= TIMES) if last else (hi > TIMES))
        t_eval = TIMES[sel] if last else np.append(TIMES[sel], hi)
        rate = sched.rate_mg_per_min[k]
        sol = solve_ivp(lambda _t, s, r=rate: A @ s + b * r, (lo, hi), x, method="LSODA",
                        rtol=1e-8, atol=1e-10, t_eval=t_eval)
        out[:, sel] = rows @ sol.y[:, :int(sel.sum())]
        x = sol.y[:, -1]
        lo = hi
    return dict(zip(system.outputs, out, strict=True))


def opentiva_run() -> Callable[[], dict[str, np.ndarray]] | str:
    try:
        import opentiva.ketamine as ot_ketamine
        import opentiva.pump as ot_pump
    except ImportError as exc:
        return f"not installed ({exc}); install with `make bench` (uv sync --group bench)"

    def run() -> dict[str, np.ndarray]:
        pump = ot_pump.Pump(ot_ketamine.Domino(0, 40, 70, 175), 10, int(TIMES[-1] * 60) + 1)
        for s in REGIMEN.segments:
            pump.add_infusion(int(s.start_min * 60), s.rate_mg_per_h / 3600.0,
                              int((s.end_min - s.start_min) * 60))
        arr = pump.run()
        # Seconds and mg/L (columns: time, plasma, effect site), sampled at whole minutes.
        at = np.searchsorted(arr[:, 0], TIMES * 60)
        return {"plasma": arr[at, 1] * 1000.0, "effect_site": arr[at, 2] * 1000.0}

    return run


def one_patient(rounds: int) -> None:
    print(f"== One patient: Domino, 70 kg, 4-h titration + 12 h, {TIMES.size} times (1 min), "
          "plasma + effect site ==")
    prep, system = typical_system()
    exact = exact_outputs(system, prep.schedule, TIMES)
    weights = iter(70.0 + 1e-9 * np.arange(1, 10**7))

    def cold() -> dict[str, np.ndarray]:
        return simulate("domino", Patient(float(next(weights)), age_years=40), REGIMEN,
                        TIMES).series()

    def warm() -> dict[str, np.ndarray]:
        return simulate("domino", PATIENT, REGIMEN, TIMES).series()

    def one_thread(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with threadpool_limits(limits=1, user_api="blas"):
                return fn()
        return run

    contenders: dict[str, Callable[[], object]] = {
        "cold": cold, "warm": warm, "lsoda": lsoda, "lsoda 1 thread": one_thread(lsoda)}
    ot = opentiva_run()
    if not isinstance(ot, str):
        contenders["opentiva"] = ot
        contenders["opentiva 1 thread"] = one_thread(ot)
    t = interleaved(contenders, rounds)
    errors = {"warm": max_relative_error(warm(), exact),
              "lsoda": max_relative_error(lsoda(), exact)}
    if not isinstance(ot, str):
        # opentiva's effect site uses its own ke0 for Domino; compare its plasma only.
        errors["opentiva"] = max_relative_error({"plasma": ot()["plasma"]},
                                                {"plasma": exact["plasma"]})

    def line(label: str, key: str, note: str = "") -> None:
        best, med, cpu = t[key]
        print(f"  {label:42s} best {best * 1e3:8.3f} ms  median {med * 1e3:8.3f} ms  "
              f"CPU {cpu * 1e3:8.3f} ms{note}")

    print(f"  ({rounds} interleaved rounds; error = max relative difference from the "
          "exact reference)")
    line("ketamine_clinic simulate(), cold", "cold")
    line("ketamine_clinic simulate(), warm", "warm", f"   error {errors['warm']:.1e}")
    line("scipy solve_ivp LSODA rtol 1e-8", "lsoda", f"   error {errors['lsoda']:.1e}")
    line("  the same, BLAS limited to one thread", "lsoda 1 thread")
    if isinstance(ot, str):
        print(f"  opentiva: {ot}")
    else:
        line("opentiva 1.1.2 Domino (per-second grid)", "opentiva",
             f"   error {errors['opentiva']:.1e} (plasma)")
        line("  the same, BLAS limited to one thread", "opentiva 1 thread")
    for ours in ("cold", "warm"):
        for other, label in (("lsoda", "LSODA"), ("lsoda 1 thread", "LSODA 1t"),
                             ("opentiva", "opentiva"), ("opentiva 1 thread", "opentiva 1t")):
            if other in t:
                a, b = t[other], t[ours]
                print(f"  {ours:4s}: {label:8s} / ours  best {a[0] / b[0]:6.1f} x   median "
                      f"{a[1] / b[1]:6.1f} x   CPU {a[2] / b[2]:6.1f} x")
    blas_both_ways(cold, warm, rounds)


def blas_both_ways(cold: Callable[[], object], warm: Callable[[], object], rounds: int) -> None:
    """Ours with the process's BLAS limited to one thread throughout, and as the process has
    it (the one-patient path sets no limit of its own: its matrices are 4 x 4 to 12 x 12)."""
    with threadpool_limits(limits=1, user_api="blas"):
        one_t = interleaved({"cold": cold, "warm": warm}, rounds)
    free_t = interleaved({"cold": cold, "warm": warm}, rounds)
    for which in ("cold", "warm"):
        one, free = one_t[which], free_t[which]
        print(f"  BLAS, {which}: one thread best {one[0] * 1e3:.3f} ms, median "
              f"{one[1] * 1e3:.3f} ms; as the process has it best {free[0] * 1e3:.3f} ms, "
              f"median {free[1] * 1e3:.3f} ms ({free[1] / one[1]:.1f} x the median)")


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def population(n: int, rounds: int, threads: int) -> None:
    print(f"\n== Population: {n} virtual patients x {TIMES.size} times, Domino + effect site "
          f"(2 series), user-given omega2 {OMEGA2}, {threads} thread(s) "
          f"({os.cpu_count()} cores) ==")
    prep = prepare("domino", PATIENT, REGIMEN)
    eta = draw_eta(choose_iiv(prep.pk, OMEGA2), n, np.random.default_rng(1))
    params = individual_parameters(prep.pk, np.full(n, 70.0), eta)
    assert prep.ke0 is not None
    system = build_system(prep.pk, params, np.full(n, prep.ke0.per_min))
    series = len(system.outputs)
    output_bytes = series * n * TIMES.size * 8

    def write_outputs() -> None:
        for _ in range(series):
            a = np.empty((n, TIMES.size))
            a.fill(1.0)

    def run_engine(workers: int = threads) -> None:
        solve(system, prep.schedule, TIMES, method="auto", threads=workers)

    def run_population(workers: int = threads) -> None:
        simulate_population("domino", PATIENT, REGIMEN, TIMES, n=n, seed=1, omega2=OMEGA2,
                            percentiles=(5, 50, 95), threads=workers)

    contenders: dict[str, Callable[[], object]] = {
        "write": write_outputs, "engine": run_engine, "population": run_population}
    if threads != 1:
        contenders["engine 1"] = lambda: run_engine(1)
        contenders["population 1"] = lambda: run_population(1)
    t = interleaved(contenders, rounds)
    gb = output_bytes / 1e9
    print(f"  (best / median wall time and best CPU time of {rounds} interleaved rounds)")
    print(f"  {'writing the output arrays (np.empty + fill, ' + f'{gb:.2f} GB)':46s} "
          f"best {t['write'][0]:6.2f} s  median {t['write'][1]:6.2f} s  "
          f"CPU {t['write'][2]:6.2f} s")
    rows = [("engine", f"engine (solve, {threads} thread(s))"),
            ("population", f"simulate_population ({threads} thread(s))")]
    if threads != 1:
        rows += [("engine 1", "engine (solve, 1 thread)"),
                 ("population 1", "simulate_population (1 thread)")]
    for key, label in rows:
        print(f"  {label:46s} best {t[key][0]:6.2f} s  median {t[key][1]:6.2f} s  "
              f"CPU {t[key][2]:6.2f} s   = {t[key][0] / t['write'][0]:5.1f} x the write cost "
              f"(median {t[key][1] / t['write'][1]:.1f} x, CPU {t[key][2] / t['write'][2]:.1f} x)")
    for label, fn in (("engine", run_engine), ("simulate_population", run_population)):
        peak = peak_bytes(fn)
        print(f"  peak memory allocated during {label:20s} {peak / 1e9:5.2f} GB = "
              f"{peak / output_bytes:.2f} x the output arrays")
    limit = getattr(engine, "BLAS_THREADS", "absent")
    if limit != "absent":

        def engine_unlimited() -> None:
            engine.BLAS_THREADS = None
            try:
                run_engine()
            finally:
                engine.BLAS_THREADS = limit

        tb = interleaved({"one": run_engine, "free": engine_unlimited}, rounds)
        print(f"  BLAS, engine: one thread best {tb['one'][0]:.2f} s (CPU {tb['one'][2]:.2f} s); "
              f"as the process has it best {tb['free'][0]:.2f} s (CPU {tb['free'][2]:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="virtual patients")
    parser.add_argument("--rounds", type=int, default=30, help="one-patient rounds")
    parser.add_argument("--population-rounds", type=int, default=3)
    parser.add_argument("--only", choices=("one", "population"))
    parser.add_argument("--threads", type=int, default=engine.default_threads(),
                        help="threads of the population runs (default: one per core, "
                             f"at most {engine.MAX_DEFAULT_THREADS})")
    args = parser.parse_args()
    if args.only != "population":
        one_patient(args.rounds)
    if args.only != "one":
        population(args.n, args.population_rounds, args.threads)


if __name__ == "__main__":
    main()
