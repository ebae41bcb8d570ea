"""PK simulator benchmarks (issue 3): figures, not pass/fail.

Run: ``.venv/bin/python benchmarks/bench_pk.py [--n 100000]``

1. One patient, a 4-h titrated racemic infusion (60 -> 90 -> 120 mg/h) plus 12 h after,
   at 1-min resolution (961 times), Domino model (70 kg): this package's exact solution,
   against scipy ``solve_ivp`` on the same linear system (restarted at every rate change),
   and against opentiva 1.1.2 (Domino, its per-second engine) when it is installed (the
   ``bench`` dependency group).
2. N virtual patients (default 100,000) x the same grid: the population path against the
   cost of writing the output arrays (np.empty + fill, the memory-bound limit) and against
   solving one patient at a time (timed on a subsample, extrapolated).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from scipy.integrate import solve_ivp

from ketamine_clinic.pk.compartments import build_system
from ketamine_clinic.pk.engine import solve
from ketamine_clinic.pk.parameter_sets import individual_parameters
from ketamine_clinic.pk.population import choose_iiv, draw_eta, simulate_population
from ketamine_clinic.pk.regimen import Regimen, Segment
from ketamine_clinic.pk.simulate import Patient, prepare, simulate

REGIMEN = Regimen((Segment(0, 30, 60), Segment(30, 120, 90), Segment(120, 240, 120)))
PATIENT = Patient(70.0, age_years=40)
TIMES = np.arange(0.0, 240.0 + 720.0 + 0.5, 1.0)  # 961 times
OMEGA2 = {"V1": 0.1, "k10": 0.09}  # user-given variability for Domino (none published)


def best_of(fn: Callable[[], object], repeat: int = 7) -> float:
    """Median wall time [s] of ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ivp_plasma(rtol: float, atol: float, method: str) -> np.ndarray:
    prep = prepare("domino", PATIENT, REGIMEN)
    params = individual_parameters(prep.pk, np.array([70.0]))
    system = build_system(prep.pk, params, np.array([prep.ke0.per_min]) if prep.ke0 else None)
    A, b = system.A[0], system.b[0]
    sched = prep.schedule
    edges = [*sched.event_min, TIMES[-1] + 1.0]
    x = np.zeros(A.shape[0])
    out = np.empty(TIMES.size)
    for k in range(len(edges) - 1):
        rate = sched.rate_mg_per_min[k]
        sel = (edges[k] <= TIMES) & (edges[k + 1] > TIMES)
        sol = solve_ivp(lambda _t, s, r=rate: A @ s + b * r, (edges[k], edges[k + 1]), x,
                        method=method, rtol=rtol, atol=atol, t_eval=TIMES[sel])
        out[sel] = system.outputs["plasma"][0] @ sol.y
        end = solve_ivp(lambda _t, s, r=rate: A @ s + b * r, (edges[k], edges[k + 1]), x,
                        method=method, rtol=rtol, atol=atol)
        x = end.y[:, -1]
    return out


def one_patient() -> None:
    print("== One patient: Domino, 70 kg, 4-h titration + 12 h, 961 times (1 min) ==")
    ours = simulate("domino", PATIENT, REGIMEN, TIMES).plasma_ng_per_ml
    t_ours = best_of(lambda: simulate("domino", PATIENT, REGIMEN, TIMES))
    print(f"  ketamine_clinic simulate (exact, expm):   {t_ours * 1e3:9.2f} ms")
    for method, rtol, atol in (("DOP853", 1e-12, 1e-14), ("LSODA", 1e-8, 1e-10)):
        ref = ivp_plasma(rtol, atol, method)
        t = best_of(lambda m=method, r=rtol, a=atol: ivp_plasma(r, a, m), repeat=3)
        mask = ref > 0
        rel = np.max(np.abs(ours[mask] - ref[mask]) / ref[mask])
        print(f"  scipy solve_ivp {method:6} rtol {rtol:.0e}:     {t * 1e3:9.2f} ms   "
              f"({t / t_ours:6.1f} x ours; max rel. difference {rel:.1e})")
    try:
        import opentiva.ketamine as ot_ketamine
        import opentiva.pump as ot_pump
    except ImportError as exc:
        print(f"  opentiva: not installed ({exc}); install with `uv sync --group bench`")
        return

    def run_opentiva() -> np.ndarray:
        pump = ot_pump.Pump(ot_ketamine.Domino(0, 40, 70, 175), 10, int(TIMES[-1] * 60) + 1)
        for s in REGIMEN.segments:
            pump.add_infusion(int(s.start_min * 60), s.rate_mg_per_h / 3600.0,
                              int((s.end_min - s.start_min) * 60))
        result: np.ndarray = pump.run()
        return result

    arr = run_opentiva()
    t_ot = best_of(run_opentiva, repeat=5)
    # opentiva works in seconds and mg/L; it reports the concentration at each whole second.
    ot = np.interp(TIMES * 60, arr[:, 0], arr[:, 1]) * 1000.0
    mask = ours > 1.0
    rel = np.max(np.abs(ot[mask] - ours[mask]) / ours[mask])
    print(f"  opentiva 1.1.2 Domino (per-second grid): {t_ot * 1e3:9.2f} ms   "
          f"({t_ot / t_ours:6.1f} x ours; max rel. difference in plasma {rel:.1e})")


def population(n: int) -> None:
    print(f"\n== Population: {n} virtual patients x {TIMES.size} times, Domino + effect site "
          f"(2 series), user-given omega2 {OMEGA2} ==")
    prep = prepare("domino", PATIENT, REGIMEN)
    eta = draw_eta(choose_iiv(prep.pk, OMEGA2), n, np.random.default_rng(1))
    params = individual_parameters(prep.pk, np.full(n, 70.0), eta)
    assert prep.ke0 is not None
    system = build_system(prep.pk, params, np.full(n, prep.ke0.per_min))
    series = len(system.outputs)

    def write_outputs() -> None:
        for _ in range(series):
            a = np.empty((n, TIMES.size))
            a.fill(1.0)

    t_write = best_of(write_outputs, repeat=3)
    t_engine = best_of(lambda: solve(system, prep.schedule, TIMES, method="auto"), repeat=3)
    gb = series * n * TIMES.size * 8 / 1e9
    print(f"  writing the output arrays (np.empty + fill, {gb:.2f} GB): {t_write:7.2f} s")
    print(f"  engine, all patients at once (modal):              {t_engine:7.2f} s   "
          f"({t_engine / t_write:.1f} x the write cost)")
    t0 = time.perf_counter()
    simulate_population("domino", PATIENT, REGIMEN, TIMES, n=n, seed=1, omega2=OMEGA2,
                        percentiles=(5, 50, 95))
    t_full = time.perf_counter() - t0
    print(f"  simulate_population incl. draws and 5/50/95 bands: {t_full:7.2f} s")
    sub = min(n, 200)
    sub_system = build_system(prep.pk, {k: v[:sub] for k, v in params.items()},
                              np.full(sub, prep.ke0.per_min))
    def loop() -> None:
        for p in range(sub):
            one = replace(sub_system, A=sub_system.A[p:p + 1], b=sub_system.b[p:p + 1],
                          outputs={k: v[p:p + 1] for k, v in sub_system.outputs.items()})
            solve(one, prep.schedule, TIMES, method="expm")

    t_loop = best_of(loop, repeat=1) * n / sub
    print(f"  one patient at a time (expm; {sub} timed, x{n / sub:g}):  {t_loop:7.2f} s   "
          f"({t_loop / t_engine:.0f} x the population path)")
    # The same per-patient loop with the modal method, for a like-for-like comparison.

    def loop_modal() -> None:
        for p in range(sub):
            one = replace(sub_system, A=sub_system.A[p:p + 1], b=sub_system.b[p:p + 1],
                          outputs={k: v[p:p + 1] for k, v in sub_system.outputs.items()})
            solve(one, prep.schedule, TIMES, method="auto")

    t_loop_m = best_of(loop_modal, repeat=1) * n / sub
    print(f"  one patient at a time (modal; extrapolated):       {t_loop_m:7.2f} s   "
          f"({t_loop_m / t_engine:.0f} x the population path)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="virtual patients")
    args = parser.parse_args()
    one_patient()
    population(args.n)


if __name__ == "__main__":
    main()
