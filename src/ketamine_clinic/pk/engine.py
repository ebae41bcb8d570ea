"""Exact solution of dx/dt = A x + b u(t) for piecewise-constant infusions and boluses.

One closed form for one patient and for a population ([Gibaldi1982] polyexponential form):

* **Decomposition, once per parameter set**: A = V diag(lam) V^-1 (:mod:`.eigen`: LAPACK
  for a few patients, a vectorised structured method for many). In modal coordinates
  z = V^-1 x every mode is independent: dz_i/dt = lam_i z_i + beta_i u with beta = V^-1 b.
* **Superposition over rate segments**: the modal state at each input event follows from
  the previous one by z <- exp(lam g) z + u beta expm1(lam g) / lam (+ beta x bolus), one
  step per event (a handful of events, whatever the number of output times).
* **One vectorised evaluation**: on input interval k, output s at tau = t - event_k is
  ``sum_i CV_si [z_ki exp(lam_i tau) + u_k beta_i expm1(lam_i tau) / lam_i]`` with
  CV = C V: a product of a coefficient matrix and a matrix of exponentials, evaluated for
  every patient and time at once (a batched matrix product). On an evenly spaced run of
  times the exponentials factor, exp(lam (tau_q + b h)) = exp(lam tau_q) exp(lam b h), so
  a run needs exponentials only at its blocks' starts, and a table of offsets formed by
  products; the products are written straight into the output arrays, a cache-sized block
  of patients at a time.
  The expm1 form has no large constant to cancel: a curve starting from zero is accurate
  to full relative precision from its first instant.

**Fallback (checked, never silent)**: a patient whose eigenvector matrix is not finite or
has condition number above 1e3 (repeated or nearly repeated eigenvalues, such as Simons
2022's delay chain of two equal rates, which makes A defective), or whose eigenvalues are
complex or not negative, is solved with matrix exponentials: exp([[A, b], [0, 0]] g) for
each distinct gap of the sorted union of events and output times (gaps longer than 60 min
in steps of at most 60 min, which keeps the far tail relatively accurate), the state
carried from point to point. Works for every linear model.

Output values are right-continuous: a bolus at time t is included in the value at t.
BLAS runs single-threaded in :func:`solve` and on the matrix-exponential path
(:func:`single_threaded_blas`): the matrices are tiny and a second thread only waits. The
modal form of one patient or a few (``simulate``) sets no limit: its LAPACK and matrix
products on 4 x 4 to 12 x 12 matrices stay on one thread either way (measured both ways in
``benchmarks/bench_pk.py``), and setting the limit and restoring it cost more than the
evaluation's exponentials.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import expm
from threadpoolctl import LibController, OpenBLASController, ThreadpoolController

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.compartments import LinearSystem
from ketamine_clinic.pk.eigen import eigen_decomposition

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

# An eigenvector matrix with condition number above this can lose more than ~1e-12 of relative
# accuracy in double precision; such patients go to the matrix-exponential path.
_MAX_EIGENVECTOR_CONDITION = 1.0e3
# Patients decomposed together (bounds the memory of the decomposition, ~1 kB a patient).
DECOMPOSITION_CHUNK = 8_192
# Bytes of scratch per block of patients in the evaluation (their tables of exponentials and
# coefficients; the output rows too where they cannot be written in place), so products are
# made in cache. Measured on 100,000 patients x 961 times (a loaded machine, best of four,
# CPU time of the whole solve): 1.16 s at 4 MB, 1.10 s at 2 MB, 1.25 s at 1 MB, 1.47 s at
# 512 kB (the fixed cost of some hundred array operations per block is paid more often).
_EVALUATION_SCRATCH_BYTES = 2**22
# Times per block of an evenly spaced run at most (the factored exponentials; the table of
# offsets is formed by products, so its width costs little); runs shorter than
# _MIN_EVEN_RUN are evaluated directly.
_RUN_BLOCK = 128
_MIN_EVEN_RUN = 16
# Exponents are floored here before exp (see _exp), and products of exponentials at its
# exponential.
_EXP_FLOOR = -300.0
_EXP_FLOOR_VALUE = math.exp(_EXP_FLOOR)
# Patients x times x modes up to which one gather over all times is cheaper than the
# run-by-run products (their fixed cost is some 60 array operations).
_SMALL_EVALUATION = 2**15
# The longest step of the matrix-exponential path [min]: one exp(A g) over many hours
# loses relative accuracy in the far tail (its rounding is relative to its largest entry).
_MAX_EXPM_STEP_MIN = 60.0

# None: leave BLAS threading as the process has it (benchmarks set this to compare).
BLAS_THREADS: int | None = 1
# Threads of the population paths when the caller names none: one per core, at most this
# many (each chunk of patients is a few tens of milliseconds of NumPy work that releases
# the GIL; measured on 2 cores, 100,000 patients x 961 times: the engine 0.46 s on one
# thread, 0.32 s on two).
MAX_DEFAULT_THREADS = 4

_In = TypeVar("_In")
_Out = TypeVar("_Out")


@cache
def _blas_libraries() -> ThreadpoolController:
    return ThreadpoolController().select(user_api="blas")


class _Holders:
    """The blocks inside :func:`single_threaded_blas` in this process, on any thread, and
    the thread counts the first of them changed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.changed: list[tuple[LibController, int]] = []


_holders = _Holders()


def _set_blas_threads(settings: list[tuple[LibController, int]]) -> None:
    """Each library's thread count set from whichever thread calls. threadpoolctl lets one
    "controlling" Python thread change OpenBLAS's shared pool (pthreads layer) and silently
    ignores the others; a direct set takes control and keeps it. So control is given up
    before and after: the first request thread of a server process to run a population would
    otherwise keep it, and every other thread's limit would be a no-op."""
    OpenBLASController.clear_controlling_thread(force=True)
    try:
        for lib, n in settings:
            lib.set_num_threads(n)
    finally:
        OpenBLASController.clear_controlling_thread(force=True)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to :data:`BLAS_THREADS` threads for the block (restored after).

    The PK core multiplies and decomposes 3 x 3 to 12 x 12 matrices: a second BLAS thread
    cannot help and, on a loaded machine, makes a 5 x 5 matrix exponential 100 times slower
    while the threads wait for each other. Only BLAS is touched, only here. The limit is the
    process's (OpenBLAS's pool is shared by every thread), so the first block to begin, on
    any thread, sets it and the last to end restores it: blocks nested in one thread and
    blocks of two requests of one server process at once all run under it. Entered by
    :func:`solve`, the population and :func:`solve_expm`; the one-patient modal path does
    without it (module docstring).
    """
    limit = BLAS_THREADS
    if limit is None:
        yield
        return
    with _holders.lock:
        if _holders.count == 0:
            _holders.changed = [(lib, n) for lib in _blas_libraries().lib_controllers
                                if (n := lib.get_num_threads()) != limit]
            _set_blas_threads([(lib, limit) for lib, _ in _holders.changed])
        _holders.count += 1
    try:
        yield
    finally:
        with _holders.lock:
            _holders.count -= 1
            if _holders.count == 0:
                _set_blas_threads(_holders.changed)
                _holders.changed = []


def default_threads() -> int:
    """Threads for the population paths when the caller gives none: the cores this process
    may run on, at most :data:`MAX_DEFAULT_THREADS`. The process's CPU affinity, not the
    machine's count: a container or a ``taskset`` limited to fewer cores than the host has
    would otherwise start threads that only wait for each other."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity call on this platform (macOS, Windows)
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def decomposition_chunks(n: int) -> list[slice]:
    """The patients 0..n-1 in chunks of :data:`DECOMPOSITION_CHUNK`, the unit of work of the
    modal path (one decomposition, one evaluation, one thread's task)."""
    return [slice(start, min(n, start + DECOMPOSITION_CHUNK))
            for start in range(0, n, DECOMPOSITION_CHUNK)]


def check_threads(threads: int | None) -> int:
    """``threads`` as a count (None: :func:`default_threads`); refused unless >= 1."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError("threads", f"must be a whole number >= 1, got {threads!r}")
    return threads


class Workers:
    """Maps a function over items on ``threads`` threads (in the calling thread for one),
    results in the items' order. NumPy releases the GIL inside its loops and BLAS calls, so
    chunks of patients that write disjoint rows run side by side; each thread's BLAS stays
    single-threaded under :func:`single_threaded_blas`, which the caller holds around the
    whole block (the limit is the process's, set and restored once for every block)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pk") if threads > 1 \
            else None

    def map(self, fn: Callable[[_In], _Out], items: Iterable[_In]) -> Iterator[_Out]:
        if self._pool is None:
            return map(fn, items)
        return self._pool.map(fn, items)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Piecewise-constant input: at ``event_min[k]`` a bolus ``bolus_mg[k]`` is given and the
    rate becomes ``rate_mg_per_min[k]`` until the next event. ``event_min[0]`` is 0 and the
    last rate is 0 (every infusion ends). ``gap_min`` is ``diff(event_min)`` and
    ``infusion_events`` the number of leading intervals up to the last one with a rate,
    both worked out once with the schedule (every evaluation uses them)."""

    event_min: FloatArray
    rate_mg_per_min: FloatArray
    bolus_mg: FloatArray
    gap_min: FloatArray
    infusion_events: int

    @property
    def last_input_min(self) -> float:
        """End of the last infusion or time of the last bolus [min]."""
        active = (self.rate_mg_per_min > 0) | (self.bolus_mg > 0)
        if not active.any():
            return 0.0
        k = int(np.flatnonzero(active)[-1])
        if self.rate_mg_per_min[k] > 0 and k + 1 < self.event_min.size:
            return float(self.event_min[k + 1])
        return float(self.event_min[k])


def make_schedule(
    segments: list[tuple[float, float, float]], boluses: list[tuple[float, float]]
) -> Schedule:
    """Build a :class:`Schedule` from segments (start [min], end [min], rate [mg/min]) that do
    not overlap, and boluses (time [min], amount [mg]). Validation is the caller's job."""
    events = sorted({0.0, *(t for s in segments for t in s[:2]), *(t for t, _ in boluses)})
    rate = [0.0] * len(events)
    for start, end, r in segments:
        for k in range(bisect.bisect_left(events, start), bisect.bisect_left(events, end)):
            rate[k] += r
    bolus = [0.0] * len(events)
    for t, mg in boluses:
        bolus[bisect.bisect_left(events, t)] += mg
    infusing = [k for k, r in enumerate(rate) if r != 0.0]
    event_min = np.array(events)
    return Schedule(event_min, np.array(rate), np.array(bolus), np.diff(event_min),
                    infusing[-1] + 1 if infusing else 0)


# ------------------------------------------------------------------ the modal closed form

@dataclass(frozen=True, slots=True)
class ModalForm:
    """Per-patient eigen-decomposition: lam (N, m), beta = V^-1 b (N, m), CV = rows V
    (N, k, m), ``ok`` (N,) where the decomposition is real, stable and well conditioned."""

    lam: FloatArray
    beta: FloatArray
    CV: FloatArray
    ok: NDArray[np.bool_]
    all_ok: bool


def modal_form(A: FloatArray, b: FloatArray, rows: FloatArray, *,
               vectorised: bool | None = None) -> ModalForm:
    """Batched eigen-decomposition of A (N, m, m) with input b (N, m) and rows (N, k, m)."""
    m = A.shape[1]
    eig = eigen_decomposition(A, vectorised=vectorised)
    lam = eig.lam
    if eig.soa:
        assert eig.Vinv is not None
        # (m, m, N) layout: every product runs along the patients.
        V_s, W_s = eig.V, eig.Vinv
        beta = np.einsum("cjp,pj->pc", W_s, b)
        CV = np.einsum("pkj,jcp->pkc", rows, V_s)
        ok = eig.real & (lam.max(axis=1) < 0) & np.isfinite(beta.sum(axis=1)) & \
            np.isfinite(CV.sum(axis=(1, 2)))
        # Frobenius condition number; V has unit columns, so |V|_F = sqrt(m).
        cond = math.sqrt(m) * np.sqrt(np.square(W_s).sum(axis=(0, 1)))
    else:
        V = eig.V
        ok = eig.real & np.isfinite(V.sum(axis=(1, 2))) & (lam.max(axis=1) < 0)
        given = eig.Vinv  # with V from the one-matrix path (its left eigenvectors)
        if not ok.all():
            V = np.where(ok[:, None, None], V, np.eye(m))  # placeholders: those use expm
            given = None
        if given is None:
            try:
                Vinv = np.linalg.inv(V)
            except np.linalg.LinAlgError:  # an exactly singular V (defective A) in the batch
                singular = ~(np.abs(np.linalg.det(V)) > 1e-300)
                ok &= ~singular
                V = np.where(ok[:, None, None], V, np.eye(m))
                Vinv = np.linalg.inv(V)
        else:
            Vinv = given
        cond = math.sqrt(m) * np.sqrt(np.square(Vinv).sum(axis=(1, 2)))
        beta = np.matmul(Vinv, b[:, :, None])[:, :, 0]
        CV = np.matmul(rows, V)
    ok &= cond < _MAX_EIGENVECTOR_CONDITION  # a NaN condition number compares False
    all_ok = bool(ok.all())
    if not all_ok:  # finite placeholders: those patients use the expm path
        beta = np.where(ok[:, None], beta, 0.0)
        CV = np.where(ok[:, None, None], CV, 0.0)
        lam = np.where(ok[:, None], lam, -1.0)
    return ModalForm(lam, beta, CV, ok, all_ok)


def _event_states(mf: ModalForm, schedule: Schedule) -> FloatArray:
    """Modal state (N, K, m) just after each input event (bolus included)."""
    lam, beta = mf.lam, mf.beta
    u, bolus, gap = schedule.rate_mg_per_min, schedule.bolus_mg, schedule.gap_min
    n, m = lam.shape
    if n == 1:
        # One patient: a few dozen numbers, cheaper as Python floats than as some twenty
        # array operations (the same expressions, in the same order), gathered in one flat
        # list (a nested one costs numpy twice as long to read).
        exp, expm1 = math.exp, math.expm1
        modes = [(li, bi, bi / li)
                 for li, bi in zip(lam[0].tolist(), beta[0].tolist(), strict=True)]
        doses = bolus.tolist()
        state = [bi * doses[0] for _, bi, _ in modes]
        flat = state[:]
        for g, rate, dose in zip(gap.tolist(), u.tolist()[:-1], doses[1:], strict=True):
            state = [exp(li * g) * zi + (expm1(li * g) * ci * rate + bi * dose)
                     for (li, bi, ci), zi in zip(modes, state, strict=True)]
            flat += state
        return np.array(flat).reshape(1, len(doses), m)
    z = np.empty((n, bolus.size, m))
    z[:, 0] = beta * bolus[0]
    if bolus.size > 1:
        lg = lam[:, None, :] * gap[:, None]  # (N, K-1, m)
        decay = np.exp(lg)
        gain = np.expm1(lg) * (beta / lam)[:, None, :] * u[:-1, None] \
            + beta[:, None, :] * bolus[1:, None]
        for k in range(bolus.size - 1):
            z[:, k + 1] = decay[:, k] * z[:, k] + gain[:, k]
    return z


@dataclass(frozen=True, slots=True)
class ModalSolution:
    """A batch of patients' exact solutions, ready to be evaluated at any times: the modal
    form, the modal state at every input event, and the expm path for the patients the
    modal form does not serve."""

    system: LinearSystem
    schedule: Schedule
    modal: ModalForm
    z: FloatArray

    def evaluate(self, times: FloatArray, only: str | None = None,
                 out: dict[str, FloatArray] | None = None) -> dict[str, FloatArray]:
        """Outputs at ``times`` (T,) shared or (N, T) per patient [min]; ``only`` one
        output; ``out`` arrays (N, T) to write into (row slices of larger arrays are fine)."""
        outputs = self.system.outputs
        if only is None:
            names = tuple(outputs)
            series = None
        else:
            names = (only,)
            series = [list(outputs).index(only)]
        n, m = self.modal.lam.shape
        if times.ndim == 1 and n * times.size * m <= _SMALL_EVALUATION:
            y = _evaluate_small(self.modal, self.z, self.schedule, times, series)
            if out is None:
                result = {o: y[:, i] for i, o in enumerate(names)}
            else:
                result = out
                for i, o in enumerate(names):
                    out[o][...] = y[:, i]
        else:
            result = out if out is not None else {o: np.empty((n, times.shape[-1]))
                                                  for o in names}
            targets = [result[o] for o in names]
            every = list(range(len(names))) if series is None else series
            if times.ndim == 1:
                _evaluate_shared(self.modal, self.z, self.schedule, times, every, targets)
            else:
                _evaluate_per_patient(self.modal, self.z, self.schedule, times, every,
                                      targets)
        if not self.modal.all_ok:
            bad = np.flatnonzero(~self.modal.ok)
            rows = np.stack([outputs[o][bad] for o in names], axis=1)
            y = solve_expm(self.system.A[bad], self.system.b[bad], rows, self.schedule,
                           times if times.ndim == 1 else times[bad])
            for i, o in enumerate(names):
                result[o][bad] = y[:, i]
        return result


def modal_solution(system: LinearSystem, schedule: Schedule, rows: slice | None = None, *,
                   vectorised: bool | None = None, modal: ModalForm | None = None
                   ) -> ModalSolution:
    """Decompose (a slice of) the patients once; evaluate as often as needed. ``modal``: the
    decomposition of exactly these patients, if already known (it does not depend on the
    schedule)."""
    if rows is None:
        sub = system
    else:
        sub = LinearSystem(system.A[rows], system.b[rows],
                           {o: r[rows] for o, r in system.outputs.items()},
                           system.states, system.amount_states)
    if modal is None:
        out_rows = np.stack(list(sub.outputs.values()), axis=1)
        modal = modal_form(sub.A, sub.b, out_rows, vectorised=vectorised)
    return ModalSolution(sub, schedule, modal, _event_states(modal, schedule))


def _runs(schedule: Schedule, ts: FloatArray) -> list[tuple[int, int, int]]:
    """(interval k, lo, hi): the sorted times ts[lo:hi] lie in input interval k."""
    kidx = np.maximum(np.searchsorted(schedule.event_min, ts, side="right") - 1, 0)
    cuts = np.flatnonzero(np.diff(kidx)) + 1
    return [(int(kidx[lo]), int(lo), int(hi))
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, ts.size], strict=True)]


def _even_step(tau: FloatArray) -> float:
    """The spacing h if tau[j] = tau[0] + j h to rounding (8 ulp of the largest), else 0."""
    if tau.size < _MIN_EVEN_RUN:
        return 0.0
    h = float(tau[-1] - tau[0]) / (tau.size - 1)
    if h <= 0.0:
        return 0.0
    ideal = tau[0] + h * np.arange(tau.size)
    if np.max(np.abs(tau - ideal)) > 8.0 * np.finfo(float).eps * float(np.abs(tau).max()):
        return 0.0
    return h


def _exp(x: FloatArray) -> FloatArray:
    """exp(x) for x <= 0, with x floored at -300.

    A fast mode hours after its input decays to exp(-1000) and less. Such factors, and the
    products of two of them inside the matrix products, underflow into subnormal numbers,
    which the processor handles a hundred times slower (measured: the whole evaluation
    four times slower). exp(-300) = 5e-131, and products of two such factors stay normal;
    a term floored there is more than 1e100 times below any concentration the model
    reaches within some 200 half-lives of its slowest mode."""
    return np.exp(np.maximum(x, _EXP_FLOOR))


def _evaluate_small(mf: ModalForm, z: FloatArray, schedule: Schedule, times: FloatArray,
                    series: list[int] | None) -> FloatArray:
    """A few patients at shared times: one gather over all times (a dozen array operations
    in all; modes first and times last, so every loop runs along the times), outputs
    (N, S, T); ``series`` None: every output.

    The expm1 term (an infusion's own contribution) is formed only up to the last time that
    lies in an interval with a rate: the long tail after the last infusion has none."""
    E = schedule.event_min
    kidx = np.searchsorted(E, times, side="right") - 1  # times >= 0 = E[0]
    x = mf.lam[:, :, None] * (times - E[kidx])  # (N, m, T)
    # Floored in place (see _exp); expm1 of a floored exponent is -1 as of the true one.
    np.maximum(x, _EXP_FLOOR, out=x)
    modal = np.exp(x)
    modal *= np.take(np.swapaxes(z, 1, 2), kidx, axis=2)
    if schedule.infusion_events:
        infusing = np.flatnonzero(kidx < schedule.infusion_events)
        if infusing.size:
            p = int(infusing[-1]) + 1
            per_rate = (mf.beta / mf.lam)[:, :, None] * schedule.rate_mg_per_min  # (N, m, K)
            rise = np.expm1(x[:, :, :p])
            rise *= np.take(per_rate, kidx[:p], axis=2)
            modal[:, :, :p] += rise
    CV = mf.CV if series is None else mf.CV[:, series]
    y: FloatArray = np.matmul(CV, modal)
    return y


def _block_width(length: int) -> int:
    """Width of the blocks an evenly spaced run of ``length`` times is split into: at most
    ``_RUN_BLOCK``, and where it can be, a divisor of ``length`` (up to twice the fewest
    blocks), so that the run has no partial last block."""
    fewest = -(-length // _RUN_BLOCK)
    for blocks in range(fewest, 2 * fewest + 1):
        if length % blocks == 0:
            return length // blocks
    return -(-length // fewest)


def _offset_table(L: FloatArray, h: float, width: int, rise: bool) -> FloatArray:
    """exp(lam b h) (P, m, width) for b = 0 .. width - 1, and below it expm1(lam b h)
    ((P, 2m, width) in all) if ``rise``, by doubling: from the columns b < k, the columns
    k + b follow as

        exp(lam (k + b) h)   = exp(lam b h) exp(lam k h)
        expm1(lam (k + b) h) = expm1(lam b h) exp(lam k h) + expm1(lam k h)

    so each column is a product of at most log2(width) correctly rounded exponentials (the
    two terms of the sum have one sign: no cancellation), and the table costs one or two
    exponentials per mode and doubling instead of per mode and column. The exp half is
    floored at exp(_EXP_FLOOR) as :func:`_exp` floors its exponents (a product of two
    floored factors stays a normal number), where any of it can reach the floor. Formed
    with the offsets first, so that each doubling is a few passes over contiguous memory;
    returned as a transposed view (each patient's matrix has unit stride down its columns,
    which BLAS takes as it is)."""
    P, m = L.shape
    rows = 2 * m if rise else m
    tab = np.empty((width, P, rows))
    tab[0, :, :m] = 1.0
    tab[0, :, m:] = 0.0
    factor = np.empty((P, rows))
    shift = np.zeros((P, rows))
    floored = float(L.min()) * h * (width - 1) < _EXP_FLOOR
    floor = np.full((P, rows), -1.0)  # expm1 >= -1: the expm1 half is left as it is
    floor[:, :m] = _EXP_FLOOR_VALUE
    k = 1
    while k < width:
        x = L * (h * k)
        c = min(k, width - k)
        factor[:, :m] = _exp(x)
        grown = tab[k:k + c]
        if rise:
            factor[:, m:] = factor[:, :m]
            shift[:, m:] = np.expm1(x)
            np.multiply(tab[:c], factor, out=grown)
            grown += shift
        else:
            np.multiply(tab[:c], factor, out=grown)
        if floored:
            np.maximum(grown, floor, out=grown)
        k += c
    return tab.transpose(1, 2, 0)


@dataclass(frozen=True, slots=True)
class _Tiling:
    """Consecutive blocks of ``width`` output times (in sorted order) from index ``lo``, all
    evenly spaced by ``h``: block j lies in input interval ``interval[j]`` and starts
    ``start[j]`` after its event [min]. One matrix product per patient and output."""

    lo: int
    width: int
    h: float
    interval: IntArray
    start: FloatArray
    infusing: bool


def _tilings(schedule: Schedule, ts: FloatArray, runs: list[tuple[int, int, int]],
             steps: dict[int, float]) -> list[_Tiling]:
    """The evenly spaced runs as tilings. Consecutive runs with one spacing, all with a rate
    or all without, whose lengths share a divisor of at least ``_MIN_EVEN_RUN`` times (a
    titration's steps at whole minutes of a 1-min grid), share one tiling of that width;
    other runs are tiled alone, with a partial last block as a tiling of its own."""
    E, u = schedule.event_min, schedule.rate_mg_per_min
    chains: list[list[tuple[int, int, int]]] = []
    for run in runs:
        k = run[0]
        if not steps[k]:
            continue
        last = chains[-1][-1] if chains else None
        if last is not None and last[2] == run[1] and steps[last[0]] == steps[k] and \
                (u[last[0]] != 0.0) == (u[k] != 0.0):
            chains[-1].append(run)
        else:
            chains.append([run])
    tilings = []
    for chain in chains:
        h = steps[chain[0][0]]
        infusing = u[chain[0][0]] != 0.0
        common = math.gcd(*(hi - lo for _, lo, hi in chain))
        width = next(d for d in range(min(common, _RUN_BLOCK), 0, -1) if common % d == 0)
        pieces = ([(k, lo, hi, width) for k, lo, hi in chain] if width >= _MIN_EVEN_RUN
                  else [(k, lo, hi, _block_width(hi - lo)) for k, lo, hi in chain])
        merged: list[tuple[int, int, list[int], list[float]]] = []  # lo, width, k, start
        for k, lo, hi, w in pieces:
            tau0 = float(ts[lo] - E[k])
            full = (hi - lo) // w
            if full:
                if merged and merged[-1][1] == w and \
                        merged[-1][0] + w * len(merged[-1][2]) == lo:
                    merged[-1][2].extend([k] * full)
                    merged[-1][3].extend(tau0 + h * w * np.arange(full))
                else:
                    merged.append((lo, w, [k] * full, list(tau0 + h * w * np.arange(full))))
            rest = hi - lo - full * w
            if rest:
                merged.append((hi - rest, rest, [k], [tau0 + h * w * full]))
        tilings += [_Tiling(lo, w, h, np.array(ks, dtype=np.intp), np.array(starts), infusing)
                    for lo, w, ks, starts in merged]
    return tilings


def _evaluate_shared(mf: ModalForm, z: FloatArray, schedule: Schedule, times: FloatArray,
                     series: list[int], targets: list[FloatArray]) -> None:
    """Write every patient's outputs at shared ``times`` (T,) into ``targets`` (N, T) each.

    Patients go in blocks that keep the scratch in cache. On input interval k, output s at
    tau is ``sum_i e_si exp(lam_i tau) + g_si expm1(lam_i tau)`` (e = CV z_k, g = CV beta
    u_k / lam). An evenly spaced run tau = tau_0 + (q B + b) h splits each exponential into
    a block-start factor (q) and an offset factor (b):

        exp(lam (t_q + b h))   = exp(lam t_q) exp(lam b h)
        expm1(lam (t_q + b h)) = expm1(lam t_q) exp(lam b h) + expm1(lam b h)

    so a tiling of such blocks (:func:`_tilings`; it may span several runs) is one matrix
    product per patient and output: [e_s exp(lam t_q) + g_s expm1(lam t_q) | g_s]
    (q x 2m) times the table [exp(lam b h) ; expm1(lam b h)] (2m x B,
    :func:`_offset_table`), which depends only on the patient and the spacing. Products
    are written straight into the output rows (into scratch rows copied out whole, where
    the times are not in order or a target's rows are not contiguous). Other runs multiply
    the coefficients by the exponentials of every time.
    """
    lam, beta, CV = mf.lam, mf.beta, mf.CV
    E, u = schedule.event_min, schedule.rate_mg_per_min
    n, m = lam.shape
    S, T = len(series), times.size
    in_order = bool(np.all(times[1:] >= times[:-1]))
    order = np.arange(T) if in_order else np.argsort(times, kind="stable")
    ts = times if in_order else times[order]
    runs = _runs(schedule, ts)
    steps = {k: _even_step(ts[lo:hi] - E[k]) for k, lo, hi in runs}
    tilings = _tilings(schedule, ts, runs, steps)
    # One table per spacing, with the expm1 rows or without (the tail after the infusions
    # needs none), as wide as its widest tiling.
    table_width: dict[tuple[float, bool], int] = {}
    for tiling in tilings:
        key = (tiling.h, tiling.infusing)
        table_width[key] = max(table_width.get(key, 0), tiling.width)
    direct = max([hi - lo for k, lo, hi in runs if not steps[k]], default=0)
    q_max = max([tiling.start.size for tiling in tilings], default=0)
    in_place = in_order and all(t.strides[-1] == t.itemsize for t in targets)
    table_rows = sum((2 if rise else 1) * w for (_, rise), w in table_width.items())
    per_patient = 8 * (2 * m * (2 * q_max + direct) + m * table_rows
                       + (0 if in_place else S * T))
    block = max(1, min(n, _EVALUATION_SCRATCH_BYTES // per_patient))
    rows_scratch = None if in_place else np.empty((S, block, T))
    for p0 in range(0, n, block):
        rows = slice(p0, min(n, p0 + block))
        P = rows.stop - rows.start
        if rows_scratch is None:
            outs = [target[rows] for target in targets]
        else:
            outs = [rows_scratch[s, :P] for s in range(S)]
        L = lam[rows]
        CVs = CV[rows][:, series, None, :]  # (P, S, 1, m)
        # The coefficients of every interval: e (P, S, K, m) and g (the expm1 terms).
        e_all = CVs * z[rows][:, None]
        g_all = CVs * ((beta[rows] / L)[:, None, :] * u[:, None])[:, None]
        tables = {(h, rise): _offset_table(L, h, w, rise)
                  for (h, rise), w in table_width.items()}
        for tiling in tilings:
            q, B = tiling.start.size, tiling.width
            wide = 2 * m if tiling.infusing else m
            R = tables[tiling.h, tiling.infusing][:, :, :B]
            xq = L[:, None, :] * tiling.start[:, None]  # (P, q, m)
            eq = _exp(xq)
            mq = np.expm1(xq) if tiling.infusing else eq
            G = np.empty((P, q, wide))
            one = bool(np.all(tiling.interval == tiling.interval[0]))
            at: slice | IntArray = slice(tiling.interval[0], tiling.interval[0] + 1) \
                if one else tiling.interval
            for s, out in enumerate(outs):
                np.multiply(eq, e_all[:, s, at], out=G[:, :, :m])
                if tiling.infusing:
                    g = g_all[:, s, at]
                    G[:, :, :m] += mq * g
                    G[:, :, m:] = g
                np.matmul(G, R, out=np.reshape(out[:, tiling.lo:tiling.lo + q * B], (P, q, B),
                                               copy=False))
        for k, lo, hi in runs:
            if steps[k]:
                continue
            infusing = u[k] != 0.0
            x = L[:, :, None] * (ts[lo:hi] - E[k])  # (P, m, J)
            R = np.concatenate([_exp(x), np.expm1(x)], axis=1) if infusing else _exp(x)
            coef = np.concatenate([e_all[:, :, k], g_all[:, :, k]], axis=2) if infusing \
                else e_all[:, :, k]
            for s, out in enumerate(outs):
                np.matmul(coef[:, s:s + 1], R, out=out[:, None, lo:hi])
        if rows_scratch is not None:
            for target, out in zip(targets, outs, strict=True):
                target[rows, order] = out


def _evaluate_per_patient(mf: ModalForm, z: FloatArray, schedule: Schedule,
                          times: FloatArray, series: list[int],
                          targets: list[FloatArray]) -> None:
    """Outputs at per-patient times (N, T) (the crossing search's bisection)."""
    lam, beta, CV = mf.lam, mf.beta, mf.CV
    n = lam.shape[0]
    E, u = schedule.event_min, schedule.rate_mg_per_min
    kidx = np.maximum(np.searchsorted(E, times, side="right") - 1, 0)
    x = lam[:, None, :] * (times - E[kidx])[..., None]  # (N, T, m)
    pidx = np.arange(n)[:, None]
    modal = z[pidx, kidx] * _exp(x) + (beta / lam)[:, None, :] * u[kidx][..., None] * \
        np.expm1(x)
    for s, target in zip(series, targets, strict=True):
        target[...] = np.einsum("pm,ptm->pt", CV[:, s], modal)


# ---------------------------------------------------------------- matrix-exponential path

def _transition(A: FloatArray, b: FloatArray, lags: FloatArray) -> tuple[FloatArray,
                                                                          FloatArray]:
    """exp(A lag) (N, L, m, m) and the response to a unit rate over lag (N, L, m), from the
    matrix exponential of the augmented matrix [[A, b], [0, 0]] * lag."""
    n, m = b.shape
    M = np.zeros((n, lags.shape[-1], m + 1, m + 1))
    lag = np.broadcast_to(lags, (n, lags.shape[-1]))
    M[:, :, :m, :m] = A[:, None] * lag[:, :, None, None]
    M[:, :, :m, m] = b[:, None] * lag[:, :, None]
    ex = expm(M)
    return ex[:, :, :m, :m], ex[:, :, :m, m]


def _bounded_grid(points: FloatArray) -> FloatArray:
    """``points`` (sorted, unique) with points added so that no gap exceeds
    ``_MAX_EXPM_STEP_MIN``."""
    gaps = np.diff(points)
    long = np.flatnonzero(gaps > _MAX_EXPM_STEP_MIN)
    if not long.size:
        return points
    extra = [points[i] + _MAX_EXPM_STEP_MIN * np.arange(
        1, math.ceil(gaps[i] / _MAX_EXPM_STEP_MIN)) for i in long]
    return np.union1d(points, np.concatenate(extra))


def solve_expm(A: FloatArray, b: FloatArray, rows: FloatArray, schedule: Schedule,
               times: FloatArray) -> FloatArray:
    """Outputs ``rows @ x(t)`` (N, k, T) by matrix exponentials, batched over patients.

    A (N, m, m) [1/min], b (N, m), rows (N, k, m), times (T,) shared or (N, T) per patient
    [min] >= 0. With shared times the state is carried through the sorted union of events
    and output times (one exact transition per distinct gap, usually a few); with
    per-patient times each output is reached from its interval's start with its own lag.
    """
    n, m = b.shape
    E = schedule.event_min
    u = schedule.rate_mg_per_min
    bolus = schedule.bolus_mg
    with single_threaded_blas():
        if times.ndim == 1:
            grid = _bounded_grid(np.union1d(E, times))
            gaps, inverse = np.unique(np.diff(grid), return_inverse=True)
            phi, gamma = _transition(A, b, gaps)
            event_of = np.searchsorted(E, grid)
            is_event = np.zeros(grid.size, dtype=bool)
            is_event[np.searchsorted(grid, E)] = True
            column = np.searchsorted(grid, times)
            wanted = np.zeros(grid.size, dtype=bool)
            wanted[column] = True
            slot = np.cumsum(wanted) - 1
            states = np.empty((int(wanted.sum()), n, m, 1))
            x = np.zeros((n, m, 1))
            bcol = b[:, :, None]
            rate = 0.0
            for i in range(grid.size):
                if i > 0:
                    j = inverse[i - 1]
                    x = np.matmul(phi[:, j], x)
                    if rate:
                        x += gamma[:, j, :, None] * rate
                if is_event[i]:
                    k = event_of[i]
                    if bolus[k]:
                        x = x + bolus[k] * bcol
                    rate = u[k]
                if wanted[i]:
                    states[slot[i]] = x
            return np.asarray(np.einsum("pkm,tpm->pkt", rows, states[slot[column], :, :, 0]))
        # Per-patient times: states at the events (shared gaps), then one lag per output.
        gaps_e = np.diff(E)
        phi_e, gamma_e = _transition(A, b, gaps_e)
        xe = np.empty((E.size, n, m))
        xe[0] = bolus[0] * b
        for k in range(E.size - 1):
            xe[k + 1] = (np.einsum("pij,pj->pi", phi_e[:, k], xe[k]) + gamma_e[:, k] * u[k]
                         + bolus[k + 1] * b)
        kidx = np.maximum(np.searchsorted(E, times, side="right") - 1, 0)
        phi, gamma = _transition(A, b, times - E[kidx])
        x0 = xe[kidx, np.arange(n)[:, None]]  # (N, T, m)
        xt = np.einsum("ptij,ptj->pti", phi, x0) + gamma * u[kidx][..., None]
        return np.asarray(np.einsum("pkm,ptm->pkt", rows, xt))


# -------------------------------------------------------------------------------- solve

def solve(
    system: LinearSystem,
    schedule: Schedule,
    times_min: FloatArray,
    *,
    method: str = "auto",
    progress: Callable[[int], object] | None = None,
    out: dict[str, FloatArray] | None = None,
    vectorised: bool | None = None,
    threads: int | None = None,
) -> dict[str, FloatArray]:
    """Every output of ``system`` at ``times_min``, one row per patient.

    Parameters
    ----------
    system : N patients' matrices (see :func:`~ketamine_clinic.pk.compartments.build_system`).
    schedule : the input, in mg and mg/min of the model's compound.
    times_min : (T,) shared times or (N, T) per-patient times [min], all >= 0.
    method : "auto" (the modal closed form, with the checked expm path for the patients it
        does not serve) or "expm" (every patient by matrix exponentials).
    progress : called with the number of patients finished after each chunk.
    out : preallocated arrays (N, T) per output name to write into.
    vectorised : the decomposition path (None: by batch size; see :mod:`.eigen`).
    threads : chunks of patients solved at once (None: :func:`default_threads`); the
        result is the same for any number.

    Returns
    -------
    output name -> (N, T) array [ng/mL] (``out`` itself when given).
    """
    n = system.n_patients
    names = tuple(system.outputs)
    times = np.asarray(times_min, dtype=float)
    shared = times.ndim == 1
    T = times.shape[-1]
    m = system.A.shape[1]
    workers = check_threads(threads)
    result = out if out is not None else {o: np.empty((n, T)) for o in names}
    with single_threaded_blas():
        if method == "expm":
            rows = np.stack([system.outputs[o] for o in names], axis=1)
            chunk = max(1, min(n, (64 * 2**20) // max(1, 8 * T * m * m)))
            for start in range(0, n, chunk):
                sl = slice(start, min(n, start + chunk))
                y = solve_expm(system.A[sl], system.b[sl], rows[sl], schedule,
                               times if shared else times[sl])
                for i, o in enumerate(names):
                    result[o][sl] = y[:, i]
                if progress is not None:
                    progress(sl.stop - sl.start)
            return result
        chunks = decomposition_chunks(n)

        def solve_chunk(sl: slice) -> int:
            part = modal_solution(system, schedule, sl, vectorised=vectorised)
            part.evaluate(times if shared else times[sl],
                          out={o: result[o][sl] for o in names})
            return int(sl.stop - sl.start)

        with Workers(min(workers, len(chunks))) as pool:
            for done in pool.map(solve_chunk, chunks):
                if progress is not None:
                    progress(done)
    return result
