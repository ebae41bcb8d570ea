"""Virtual populations: log-normal inter-individual variability, percentile bands.

Each virtual patient's parameters are typical x exp(eta) with eta ~ N(0, Omega), Omega the
model's published variances and covariances, or variances the user gives (labelled
"user-given"). Draws come from ``numpy.random.default_rng(seed)``, all at once: the same
seed gives the same population. The engine solves every patient exactly and at once
(batched eigen-decomposition, with the matrix-exponential path for any ill-conditioned
patient), writing into arrays allocated once; the decomposition of each patient serves both
the curves and the threshold-crossing search. Percentile bands are exact order statistics,
selected in a pass over the curves tile by tile, so no second copy of the (N, T) curves is
ever made.
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
# Bytes of curves copied at a time for whole partitions (a few columns of (N, T)).
_BAND_BLOCK_BYTES = 8 * 2**20
# Patients per tile of the transposed copy of a block of curves (see _whole_partitions).
_BAND_TILE_ROWS = 2048
# Populations of at least this many patients have their order statistics narrowed by a
# sample (see _bracketed_order_statistics): one patient in _BAND_SAMPLE_STRIDE, each bracket
# _BAND_SPREAD_SD standard deviations of the sample rank either side (a miss, about one
# time and percentile in 400 for random draws, only costs that time a whole partition; on
# the benchmark's 100,000 patients x 961 times none missed at 2.5 to 4 standard
# deviations, and 3 gathered a quarter fewer values than 4).
_BAND_NARROW_MIN = 20_000
_BAND_SAMPLE_STRIDE = 16
_BAND_SPREAD_SD = 3.0
# Patients per tile of the counting passes: a tile of 961 times stays in cache with its
# masks (measured: 16 and 32 rows cost more, in the fixed cost of each array operation),
# and fewer than 256 rows let the counts add up as bytes.
_BAND_COUNT_ROWS = 128
# Sampled patients per tile of the sample's transposed copy.
_BAND_SAMPLE_TILE_ROWS = 512


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
    statistics) of curves y (N, T), exactly, without a copy of y: the order statistics of
    a large population are selected among the few values a sample brackets
    (:func:`_bracketed_order_statistics`), those of a small one (or of curves that hold a
    NaN or an infinity) by whole partitions of a few time columns at a time
    (:func:`_whole_partitions`)."""
    n = y.shape[0]
    q = np.asarray(percentiles, dtype=float) / 100.0
    virtual = q * (n - 1)
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    weight = virtual - below
    found = _bracketed_order_statistics(y, below, above) if n >= _BAND_NARROW_MIN else None
    lo, hi = found if found is not None else _whole_partitions(y, below, above)
    # numpy's lerp: from the lower value below the midpoint, from the upper above it.
    bands: FloatArray = np.where(weight[:, None] < 0.5, lo + (hi - lo) * weight[:, None],
                                 hi - (hi - lo) * (1.0 - weight[:, None]))
    return bands


def _whole_partitions(y: FloatArray, below: NDArray[np.intp], above: NDArray[np.intp]
                      ) -> tuple[FloatArray, FloatArray]:
    """The values of rank ``below`` and ``above`` (0-based) over the patients of y (N, T),
    as (len(below), T) each: a few time columns at a time, each block copied transposed
    (one contiguous row per time) and partitioned."""
    n, T = y.shape
    ranks = np.unique(np.concatenate([below, above]))
    lo = np.empty((below.size, T))
    hi = np.empty((below.size, T))
    step = max(1, _BAND_BLOCK_BYTES // (8 * n))
    for j in range(0, T, step):
        block = np.empty((min(step, T - j), n))
        # Transposed tile by tile: a tile's source rows stay in cache while each of its
        # columns is read (a whole column at once reads each row's cache line from memory
        # again and again).
        for p0 in range(0, n, _BAND_TILE_ROWS):
            block[:, p0:p0 + _BAND_TILE_ROWS] = y[p0:p0 + _BAND_TILE_ROWS, j:j + step].T
        block.partition(ranks, axis=1)
        lo[:, j:j + step] = block[:, below].T
        hi[:, j:j + step] = block[:, above].T
    return lo, hi


def _bracketed_order_statistics(y: FloatArray, below: NDArray[np.intp],
                                above: NDArray[np.intp]
                                ) -> tuple[FloatArray, FloatArray] | None:
    """As :func:`_whole_partitions`, for a large population; None if y holds a NaN or an
    infinity.

    Partitioning costs some ten nanoseconds a value (its comparisons are branches that the
    processor cannot predict), and a transposed copy of the curves as much again. Instead, a
    strided sample of the patients (every ``_BAND_SAMPLE_STRIDE``-th) gives, for each wanted
    rank and time, two of its order statistics that very likely bracket it. One pass over
    the curves as they lie (patients in rows, a cache-sized tile of rows at a time) counts,
    for every time at once, the values below each lower bracket and gathers those between
    the two: branch-free vectorised comparisons. Then only those few thousand values per
    time are partitioned. The bracket is checked by the counts, so the result is exact
    whatever the sample says; a time whose bracket misses is partitioned whole."""
    n, T = y.shape
    # The comparisons are made in single precision, half the bytes: rounding is monotone,
    # so the values below a rounded bracket are below every value inside it, and those
    # inside below every value above it, which is all the selection needs (the values
    # gathered are the curves' own). The sample's roundings are ordered as its values.
    rows = y[::_BAND_SAMPLE_STRIDE].astype(np.float32)
    sample = np.empty((T, rows.shape[0]), dtype=np.float32)
    # Transposed tile by tile from a compact copy (measured 20 ms against 50 ms for the
    # strided sample of 100,000 x 961 values transposed at once).
    for p0 in range(0, rows.shape[0], _BAND_SAMPLE_TILE_ROWS):
        sample[:, p0:p0 + _BAND_SAMPLE_TILE_ROWS] = rows[p0:p0 + _BAND_SAMPLE_TILE_ROWS].T
    del rows
    size = sample.shape[1]
    brackets = []
    for r in below.tolist():
        # The sample rank of r, widened by the sample's binomial spread either side.
        centre = r / _BAND_SAMPLE_STRIDE
        spread = _BAND_SPREAD_SD * math.sqrt(size * (r + 0.5) / n * (1.0 - (r + 0.5) / n)) + 2.0
        brackets.append((max(0, math.floor(centre - spread)),
                         min(size - 1, math.ceil(centre + spread))))
    # A vectorised sort costs less than selecting the six bracket ranks (measured on
    # 961 x 6,250 values: 40 ms against 140 ms).
    sample.sort(axis=1)
    lows = [sample[:, first].copy() for first, _ in brackets]
    highs = [sample[:, last].copy() for _, last in brackets]
    del sample
    counts = np.zeros((below.size, T), dtype=np.intp)
    gathered: list[list[tuple[FloatArray, NDArray[np.integer[Any]]]]] = [[] for _ in brackets]
    column_type = np.int16 if T < 2**15 else np.intp
    under = np.empty((_BAND_COUNT_ROWS, T), dtype=bool)
    inside = np.empty((_BAND_COUNT_ROWS, T), dtype=bool)
    single = np.empty((_BAND_COUNT_ROWS, T), dtype=np.float32)
    for p0 in range(0, n, _BAND_COUNT_ROWS):
        tile = np.ascontiguousarray(y[p0:p0 + _BAND_COUNT_ROWS])
        P = tile.shape[0]
        rounded = single[:P]
        np.copyto(rounded, tile, casting="same_kind")
        # A NaN or an infinity somewhere (or a value past single precision's range).
        if not math.isfinite(float(rounded.sum())):
            return None
        flat = tile.reshape(-1)
        is_under, is_inside = under[:P], inside[:P]
        for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
            np.less(rounded, low, out=is_under)
            counts[i] += np.add.reduce(is_under.view(np.uint8), axis=0, dtype=np.uint8)
            np.less_equal(rounded, high, out=is_inside)
            np.logical_xor(is_inside, is_under, out=is_inside)
            at = np.flatnonzero(is_inside)
            if at.size:
                gathered[i].append((flat.take(at), (at % T).astype(column_type)))
    lo = np.empty((below.size, T))
    hi = np.empty((below.size, T))
    for i, (r, r2) in enumerate(zip(below.tolist(), above.tolist(), strict=True)):
        values = np.concatenate([v for v, _ in gathered[i]]) if gathered[i] else np.empty(0)
        columns = np.concatenate([c for _, c in gathered[i]]) if gathered[i] else \
            np.empty(0, dtype=column_type)
        gathered[i] = []
        values = values[np.argsort(columns, kind="stable")]  # grouped by time, in order
        ends = np.cumsum(np.bincount(columns, minlength=T)).tolist()
        start = 0
        for t, (end, first) in enumerate(zip(ends, counts[i].tolist(), strict=True)):
            if first <= r and r2 < first + end - start:
                between = values[start:end]
                # One rank selected; the next one, if wanted, is the least value above it
                # (a selection of two ranks at once costs twice as much).
                between.partition(r - first)
                lo[i, t] = between[r - first]
                hi[i, t] = lo[i, t] if r2 == r else between[r2 - first:].min()
            else:  # the bracket missed: this time's values partitioned whole
                column = y[:, t].copy()
                column.partition(sorted({r, r2}))
                lo[i, t], hi[i, t] = column[r], column[r2]
            start = end
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
