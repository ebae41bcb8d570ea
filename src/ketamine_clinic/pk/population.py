"""Virtual populations: log-normal inter-individual variability, percentile bands.

Each virtual patient's parameters are typical x exp(eta) with eta ~ N(0, Omega), Omega the
model's published variances and covariances, or variances the user gives (labelled
"user-given"). Draws come from ``numpy.random.default_rng(seed)``, all at once: the same
seed gives the same population. The engine solves every patient exactly and at once
(batched eigen-decomposition, with the matrix-exponential path for any ill-conditioned
patient), writing into arrays allocated once; the decomposition of each patient serves both
the curves and the threshold-crossing search. Percentile bands are exact order statistics
(:mod:`.bands`): each chunk of patients is counted against brackets from the first chunk
right after it is solved, so no second copy of the (N, T) curves is ever made. Chunks are
solved and counted on several threads at once (``threads``); the result is the same for
any number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.bands import NARROW_MIN, BandCounter, Tally, percentile_bands
from ketamine_clinic.pk.compartments import EFFECT
from ketamine_clinic.pk.engine import (
    Workers,
    check_threads,
    decomposition_chunks,
    modal_solution,
    single_threaded_blas,
)
from ketamine_clinic.pk.parameter_sets import IIV, PKModel, individual_parameters
from ketamine_clinic.pk.regimen import Regimen
from ketamine_clinic.pk.simulate import (
    ModelInfo,
    Patient,
    SimulationResult,
    check_times,
    crossing_times,
    make_system,
    pd_effect,
    prepare,
    simulate,
)

FloatArray = NDArray[np.float64]
_MAX_PATIENTS = 10_000_000
# Patients per block of the PD readout (a few hundred kB of temporaries for 961 times).
_PD_ROWS = 256


@dataclass(frozen=True, slots=True)
class PopulationResult:
    """Percentile bands of a virtual population, with the typical patient's curves.

    ``bands[series]`` has shape (len(percentiles), T) [ng/mL]; series are ``plasma``,
    ``effect_site``, ``norketamine`` (those the model has) and ``pd_effect``.
    ``individuals[series]`` (N, T) only when asked for. ``crossing_percentiles_min[series]``
    are the percentiles of the per-patient threshold crossing times [min].
    """

    model: ModelInfo
    patient: Patient
    regimen: Regimen
    n: int
    seed: int
    iiv_label: str
    omega2: Mapping[str, float]
    covariance: tuple[tuple[str, str, float], ...]
    percentiles: tuple[float, ...]
    times_min: FloatArray
    bands: Mapping[str, FloatArray]
    typical: SimulationResult
    warnings: tuple[str, ...]
    threshold_ng_per_ml: float | None = None
    crossing_percentiles_min: Mapping[str, FloatArray] = field(default_factory=dict)
    individuals: Mapping[str, FloatArray] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "n": self.n,
            "seed": self.seed,
            "iiv": {"label": self.iiv_label, "omega2": dict(self.omega2),
                    "covariance": [list(c) for c in self.covariance]},
            "percentiles": list(self.percentiles),
            "times_min": [float(t) for t in self.times_min],
            "bands_ng_per_ml": {s: b.tolist() for s, b in self.bands.items()},
            "typical": self.typical.to_dict(),
            "warnings": list(self.warnings),
            "threshold_ng_per_ml": self.threshold_ng_per_ml,
            "threshold_crossing_percentiles_min": {
                s: v.tolist() for s, v in self.crossing_percentiles_min.items()},
            "model_info": self.model.to_dict(),
            "patient": self.patient.to_dict(),
            "regimen": self.regimen.to_dict(),
        }


def choose_iiv(model: PKModel, omega2: Mapping[str, float] | None) -> IIV:
    """The published IIV of ``model``, or the user's variances (replacing it entirely)."""
    if omega2:
        for name, value in omega2.items():
            if name not in model.parameters or model.parameters[name].same_as is not None:
                raise UsageError("omega2", f"{model.id} has no free parameter {name!r}; "
                                           f"parameters: {', '.join(model.parameters)}")
            if not math.isfinite(value) or value < 0:
                raise UsageError("omega2", f"{name}: variance must be >= 0, got {value!r}")
        return IIV(dict(omega2), (), "user", "user-given")
    if model.iiv is None:
        raise UsageError("omega2", f"{model.id} has no published inter-individual "
                                   "variability; give variances, e.g. CL=0.09,V1=0.1")
    return model.iiv


def draw_eta(iiv: IIV, n: int, rng: np.random.Generator) -> dict[str, FloatArray]:
    """n draws of eta ~ N(0, Omega), one array per parameter name."""
    omega = iiv.matrix()
    # Cholesky of the (positive semi-definite) covariance; eigen-based for the singular case.
    vals, vecs = np.linalg.eigh(omega)
    if np.any(vals < -1e-12):
        raise UsageError("omega2", "the variance-covariance matrix is not positive "
                                   "semi-definite")
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = rng.standard_normal((n, len(iiv.names)))
    eta = z @ root.T
    return {name: eta[:, i] for i, name in enumerate(iiv.names)}


def simulate_population(
    model_id: str,
    patient: Patient,
    regimen: Regimen,
    times_min: ArrayLike,
    *,
    n: int,
    seed: int,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
    omega2: Mapping[str, float] | None = None,
    ke0_per_min: float | None = None,
    threshold_ng_per_ml: float | None = None,
    keep_individuals: bool = False,
    progress: Callable[[int], object] | None = None,
    threads: int | None = None,
) -> PopulationResult:
    """Simulate ``n`` virtual patients like ``patient`` and summarise them.

    Parameters
    ----------
    model_id, patient, regimen, times_min, ke0_per_min : as :func:`simulate`.
    n : number of virtual patients (1 to 10 million).
    seed : seed of ``numpy.random.default_rng``; equal seeds give equal results.
    percentiles : percentiles of the bands, each in [0, 100].
    omega2 : user-given variances of eta per parameter name (replaces the published IIV;
        required for models without one).
    threshold_ng_per_ml : also summarise each patient's threshold crossing time.
    keep_individuals : keep every patient's curves in the result ((n, T) per series).
    progress : called with the number of patients finished, chunk by chunk.
    threads : chunks of patients solved and counted at once (None: one per core, at most
        :data:`~ketamine_clinic.pk.engine.MAX_DEFAULT_THREADS`); the result is the same,
        bit for bit, for any number.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_PATIENTS:
        raise UsageError("n", f"must be a whole number from 1 to {_MAX_PATIENTS}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError("seed", f"must be a whole number >= 0, got {seed!r}")
    pcts = tuple(float(p) for p in percentiles)
    if not pcts or any(not math.isfinite(p) or not 0 <= p <= 100 for p in pcts):
        raise UsageError("percentiles", "each percentile must be between 0 and 100")
    typical = simulate(model_id, patient, regimen, times_min, ke0_per_min=ke0_per_min,
                       threshold_ng_per_ml=threshold_ng_per_ml)
    prep = prepare(model_id, patient, regimen, ke0_per_min)
    times = check_times(times_min)
    iiv = choose_iiv(prep.pk, omega2)
    rng = np.random.default_rng(seed)
    eta = draw_eta(iiv, n, rng)
    params = individual_parameters(prep.pk, np.full(n, float(patient.weight_kg)), eta)
    system = make_system(prep, params)
    workers = check_threads(threads)
    T = times.size
    out = {o: np.empty((n, T)) for o in system.outputs}
    pd_model = prep.pd if EFFECT in out else None
    if pd_model is not None:
        out["pd_effect"] = np.empty((n, T))
    crossing_all = {s: np.empty(n) for s in system.outputs} \
        if threshold_ng_per_ml is not None else {}
    chunks = decomposition_chunks(n)

    def solve_chunk(sl: slice) -> None:
        solution = modal_solution(system, prep.schedule, sl)
        solution.evaluate(times, out={o: out[o][sl] for o in system.outputs})
        if threshold_ng_per_ml is not None:

            def evaluate(at: FloatArray, series: str) -> FloatArray:
                return np.asarray(solution.evaluate(at, only=series)[series])

            for s, t in crossing_all.items():
                t[sl] = crossing_times(evaluate, s, prep.schedule.last_input_min,
                                       threshold_ng_per_ml, sl.stop - sl.start)
        if pd_model is not None:
            # A few hundred rows at a time, so the readout's temporaries stay in cache and
            # are reused instead of being mapped afresh (see _PD_ROWS).
            for r0 in range(sl.start, sl.stop, _PD_ROWS):
                rows = slice(r0, min(sl.stop, r0 + _PD_ROWS))
                out["pd_effect"][rows] = pd_effect(pd_model, out[EFFECT][rows])

    counters: dict[str, BandCounter] = {}

    def count_chunk(sl: slice) -> dict[str, Tally | None]:
        return {s: counter.count(out[s][sl]) for s, counter in counters.items()}

    def solve_and_count(sl: slice) -> dict[str, Tally | None]:
        solve_chunk(sl)
        return count_chunk(sl)

    def report(sl: slice) -> None:
        if progress is not None:
            progress(sl.stop - sl.start)

    with single_threaded_blas(), Workers(min(workers, len(chunks))) as pool:
        if n < NARROW_MIN:
            for sl, _ in zip(chunks, pool.map(solve_chunk, chunks), strict=True):
                report(sl)
            bands = dict(zip(out, pool.map(lambda s: percentile_bands(out[s], pcts), out),
                             strict=True))
        else:
            # The first chunk(s) solved, one per thread; the brackets come from the first
            # chunk's patients (drawn independently, like every other chunk's), then each
            # chunk is counted right after it is solved, while it is fresh in cache.
            head, rest = chunks[:pool.threads], chunks[pool.threads:]
            for sl, _ in zip(head, pool.map(solve_chunk, head), strict=True):
                report(sl)
            counters.update(zip(out, pool.map(
                lambda s: BandCounter(out[s][chunks[0]], n, pcts), out), strict=True))
            tallies = list(pool.map(count_chunk, head))
            for sl, tally in zip(rest, pool.map(solve_and_count, rest), strict=True):
                tallies.append(tally)
                report(sl)
            # Every percentile of every series selected on its own (six jobs for the
            # benchmark's two series, which share two threads better than two jobs).
            jobs = [(s, i) for s in out for i in range(len(pcts))]
            found = list(pool.map(lambda job: counters[job[0]].order_statistics(
                job[1], [t[job[0]] for t in tallies], out[job[0]]), jobs))
            bands = {s: counters[s].combine(
                [f for (js, _), f in zip(jobs, found, strict=True) if js == s], out[s])
                for s in out}
    crossing = {s: np.percentile(t, pcts) for s, t in crossing_all.items()}
    return PopulationResult(
        model=prep.info,
        patient=patient,
        regimen=regimen,
        n=n,
        seed=seed,
        iiv_label=iiv.label,
        omega2=dict(iiv.omega2),
        covariance=iiv.covariance,
        percentiles=pcts,
        times_min=times,
        bands=bands,
        typical=typical,
        warnings=(*prep.warnings, f"inter-individual variability: {iiv.label}"),
        threshold_ng_per_ml=threshold_ng_per_ml,
        crossing_percentiles_min=crossing,
        individuals=out if keep_individuals else None,
    )
