"""Virtual populations: log-normal inter-individual variability, percentile bands.

Each virtual patient's parameters are typical x exp(eta) with eta ~ N(0, Omega), Omega the
model's published variances and covariances, or variances the user gives (labelled
"user-given"). Draws come from ``numpy.random.default_rng(seed)``, all at once: the same
seed gives the same population. The engine solves every patient exactly and at once
(batched eigen-decomposition, with the matrix-exponential path for any ill-conditioned
patient), writing into arrays allocated once; the decomposition of each patient serves both
the curves and the threshold-crossing search. Percentile bands are computed a few times at
a time, so no second copy of the (N, T) curves is ever made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.compartments import EFFECT
from ketamine_clinic.pk.engine import DECOMPOSITION_CHUNK, modal_solution, single_threaded_blas
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
# Bytes of curves copied at a time for the percentiles (a few columns of (N, T)).
_BAND_BLOCK_BYTES = 8 * 2**20
# Patients per tile of the transposed copy of a block of curves (see percentile_bands).
_BAND_TILE_ROWS = 2048
# Rows of at least this many values have their order statistics narrowed by a sample (see
# _order_statistics): one value in _BAND_SAMPLE_STRIDE, each bracket _BAND_SPREAD_SD
# standard deviations of the sample rank either side (a miss, about one row in 10,000 for
# random draws, only costs that row a whole partition). Measured on 100,000 x 961 values:
# 1.06 s against 2.0 s for whole partitions; strides 32 and 64 gave 1.2 and 1.45 s.
_BAND_NARROW_MIN = 20_000
_BAND_SAMPLE_STRIDE = 16
_BAND_SPREAD_SD = 4.0


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


def percentile_bands(y: FloatArray, percentiles: Sequence[float]) -> FloatArray:
    """``numpy.percentile(y, percentiles, axis=0)`` (linear interpolation between order
    statistics) of curves y (N, T), a few time columns at a time: each block is copied
    transposed (one contiguous row per time), so memory stays at a few MB instead of a copy
    of y, and its order statistics are selected exactly (:func:`_order_statistics`)."""
    n, T = y.shape
    q = np.asarray(percentiles, dtype=float) / 100.0
    virtual = q * (n - 1)
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    weight = virtual - below
    bands = np.empty((q.size, T))
    step = max(1, _BAND_BLOCK_BYTES // (8 * n))
    for j in range(0, T, step):
        block = np.empty((min(step, T - j), n))
        # Transposed tile by tile: a tile's source rows stay in cache while each of its
        # columns is read (a whole column at once reads each row's cache line from memory
        # again and again); measured 0.36 s against 0.48 s for 100,000 x 961 values.
        for p0 in range(0, n, _BAND_TILE_ROWS):
            block[:, p0:p0 + _BAND_TILE_ROWS] = y[p0:p0 + _BAND_TILE_ROWS, j:j + step].T
        lo, hi = _order_statistics(block, below, above)
        # numpy's lerp: from the lower value below the midpoint, from the upper above it.
        bands[:, j:j + step] = np.where(weight[:, None] < 0.5,
                                        lo + (hi - lo) * weight[:, None],
                                        hi - (hi - lo) * (1.0 - weight[:, None]))
    return bands


def _order_statistics(block: FloatArray, below: NDArray[np.intp], above: NDArray[np.intp]
                      ) -> tuple[FloatArray, FloatArray]:
    """The values of rank ``below`` and ``above`` (0-based, ``above`` is ``below`` or the
    next rank) in every row of ``block`` (C, N), as (len(below), C) each; ``block`` may be
    reordered.

    Partitioning a whole row costs some ten nanoseconds a value (its comparisons are
    branches that the processor cannot predict). For a long row, a strided sample of it
    (every ``_BAND_SAMPLE_STRIDE``-th value) gives, for each wanted rank, two of its order
    statistics that very likely bracket it; counting the values below the lower one and
    gathering those between the two are branch-free vectorised passes, row by row (a row
    stays in cache; passes over the whole block were slower, 1.18 s against 1.02 s for
    100,000 x 961 values), and only those few thousand values are partitioned. The
    bracket is checked by the counts, so the result is exact whatever the sample says; a
    row whose bracket misses (or a block that holds a NaN) is partitioned whole."""
    C, n = block.shape
    lo = np.empty((below.size, C))
    hi = np.empty((below.size, C))
    if n < _BAND_NARROW_MIN or not np.isfinite(block).all():
        block.partition(np.unique(np.concatenate([below, above])), axis=1)
        return block[:, below].T, block[:, above].T
    sample = block[:, ::_BAND_SAMPLE_STRIDE].copy()
    size = sample.shape[1]
    brackets = []
    for r in below.tolist():
        # The sample rank of r, widened by the sample's binomial spread either side.
        centre = r / _BAND_SAMPLE_STRIDE
        spread = _BAND_SPREAD_SD * math.sqrt(size * (r + 0.5) / n * (1.0 - (r + 0.5) / n)) + 2.0
        brackets.append((max(0, math.floor(centre - spread)),
                         min(size - 1, math.ceil(centre + spread))))
    # Only the sample's order statistics at the bracket ranks are needed, not a sort.
    sample.partition(sorted({k for pair in brackets for k in pair}), axis=1)
    for i, (r, r2) in enumerate(zip(below.tolist(), above.tolist(), strict=True)):
        first, last = brackets[i]
        lows, highs = sample[:, first].tolist(), sample[:, last].tolist()
        for c in range(C):
            row = block[c]
            under = row < lows[c]
            start = int(np.count_nonzero(under))
            inside = row[np.logical_xor(row <= highs[c], under, out=under)]
            if not (start <= r and r2 < start + inside.size):
                row.partition(sorted({r, r2}))
                lo[i, c], hi[i, c] = row[r], row[r2]
                continue
            inside.partition(sorted({r - start, r2 - start}))
            lo[i, c], hi[i, c] = inside[r - start], inside[r2 - start]
    return lo, hi


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
    T = times.size
    out = {o: np.empty((n, T)) for o in system.outputs}
    crossing_all = {s: np.empty(n) for s in out} if threshold_ng_per_ml is not None else {}
    with single_threaded_blas():
        for start in range(0, n, DECOMPOSITION_CHUNK):
            sl = slice(start, min(n, start + DECOMPOSITION_CHUNK))
            solution = modal_solution(system, prep.schedule, sl)
            solution.evaluate(times, out={o: y[sl] for o, y in out.items()})
            if threshold_ng_per_ml is not None:

                def evaluate(at: FloatArray, series: str, sol: Any = solution) -> FloatArray:
                    return np.asarray(sol.evaluate(at, only=series)[series])

                for s, t in crossing_all.items():
                    t[sl] = crossing_times(evaluate, s, prep.schedule.last_input_min,
                                           threshold_ng_per_ml, sl.stop - sl.start)
            if progress is not None:
                progress(sl.stop - sl.start)
    if prep.pd is not None and EFFECT in out:
        out["pd_effect"] = pd_effect(prep.pd, out[EFFECT])
    bands = {s: percentile_bands(y, pcts) for s, y in out.items()}
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
