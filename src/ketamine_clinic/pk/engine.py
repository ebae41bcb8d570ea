"""Exact solution of dx/dt = A x + b u(t) for piecewise-constant infusions and boluses.

Two exact methods, neither with a step size:

* ``"expm"``: the state is carried from event to event and to each output time with the
  matrix exponential of the augmented matrix [[A, b], [0, 0]] (one batched ``expm`` per
  distinct time lag). Works for every linear model, including defective ones such as a
  transit chain of equal rates. Used for one patient and as the fallback.
* ``"modal"``: A = V diag(lambda) V^-1 per patient (batched ``numpy.linalg.eig``); each
  output is then a constant plus a sum of exponentials per input interval, evaluated for
  all patients and times at once (the classical polyexponential closed form). Used for
  populations. A patient whose eigenvector matrix is ill-conditioned (near-equal
  eigenvalues, e.g. the two equal compartments of Simons 2022's delay chain) is solved with
  ``"expm"`` instead, so accuracy never depends on the conditioning.

Output values are right-continuous: a bolus at time t is included in the value at t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import expm

from ketamine_clinic.pk.compartments import LinearSystem

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

# An eigenvector matrix with condition number above this can lose more than ~1e-11 of relative
# accuracy in double precision; such patients go to the matrix-exponential path.
_MAX_EIGENVECTOR_CONDITION = 1.0e3
# Bytes of scratch per chunk of the modal evaluation (keeps the working set cache-sized).
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Schedule:
    """Piecewise-constant input: at ``event_min[k]`` a bolus ``bolus_mg[k]`` is given and the
    rate becomes ``rate_mg_per_min[k]`` until the next event. ``event_min[0]`` is 0 and the
    last rate is 0 (every infusion ends)."""

    event_min: FloatArray
    rate_mg_per_min: FloatArray
    bolus_mg: FloatArray

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
    times = {0.0}
    for start, end, _ in segments:
        times.update((start, end))
    times.update(t for t, _ in boluses)
    events = np.array(sorted(times), dtype=float)
    rate = np.zeros(events.size)
    for start, end, r in segments:
        sel = (events >= start) & (events < end)
        rate[sel] += r
    bolus = np.zeros(events.size)
    for t, mg in boluses:
        bolus[np.searchsorted(events, t)] += mg
    return Schedule(events, rate, bolus)


def _interval_index(schedule: Schedule, times: FloatArray) -> tuple[IntArray, FloatArray]:
    k = np.searchsorted(schedule.event_min, times, side="right") - 1
    k = np.maximum(k, 0)
    return k, times - schedule.event_min[k]


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


def solve_expm(A: FloatArray, b: FloatArray, rows: FloatArray, schedule: Schedule,
               times: FloatArray) -> FloatArray:
    """Outputs ``rows @ x(t)`` (N, k, T) by matrix exponentials, batched over patients.

    A (N, m, m) [1/min], b (N, m), rows (N, k, m), times (T,) shared or (N, T) per patient
    [min] >= 0. With shared times the state is carried through the sorted union of events
    and output times (one exact transition per distinct gap, usually one or two); with
    per-patient times each output is reached from its interval's start with its own lag.
    """
    n, m = b.shape
    E = schedule.event_min
    u = schedule.rate_mg_per_min
    bolus = schedule.bolus_mg
    if times.ndim == 1:
        grid = np.union1d(E, times)
        gaps, inverse = np.unique(np.diff(grid), return_inverse=True)
        phi, gamma = _transition(A, b, gaps)
        is_event = np.isin(grid, E)
        event_of = np.searchsorted(E, grid)
        column = np.searchsorted(grid, times)
        states = np.empty((grid.size, n, m))
        x = np.zeros((n, m))
        rate = 0.0
        for i in range(grid.size):
            if i > 0:
                j = inverse[i - 1]
                x = np.einsum("pij,pj->pi", phi[:, j], x) + gamma[:, j] * rate
            if is_event[i]:
                k = event_of[i]
                x = x + bolus[k] * b
                rate = u[k]
            states[i] = x
        return np.asarray(np.einsum("pkm,tpm->pkt", rows, states[column]))
    # Per-patient times: states at the events (shared gaps), then one lag per output.
    gaps_e = np.diff(E)
    phi_e, gamma_e = _transition(A, b, gaps_e)
    xe = np.empty((E.size, n, m))
    xe[0] = bolus[0] * b
    for k in range(E.size - 1):
        xe[k + 1] = (np.einsum("pij,pj->pi", phi_e[:, k], xe[k]) + gamma_e[:, k] * u[k]
                     + bolus[k + 1] * b)
    kidx, tau = _interval_index(schedule, times)
    phi, gamma = _transition(A, b, tau)
    x0 = xe[kidx, np.arange(n)[:, None]]  # (N, T, m)
    xt = np.einsum("ptij,ptj->pti", phi, x0) + gamma * u[kidx][..., None]
    return np.asarray(np.einsum("pkm,ptm->pkt", rows, xt))


@dataclass(frozen=True, slots=True)
class ModalForm:
    """Per-patient eigen-decomposition: lam (N, m), beta = V^-1 b (N, m), CV = rows V
    (N, k, m), ``ok`` (N,) where the decomposition is well conditioned and real."""

    lam: FloatArray
    beta: FloatArray
    CV: FloatArray
    ok: NDArray[np.bool_]


def modal_form(A: FloatArray, b: FloatArray, rows: FloatArray) -> ModalForm:
    """Batched eigen-decomposition of A (N, m, m) with input b (N, m) and rows (N, k, m)."""
    lam_c, V_c = np.linalg.eig(A)
    real = np.all(np.abs(lam_c.imag) <= 1e-12 * np.abs(lam_c.real), axis=1)
    lam = lam_c.real
    V = V_c.real
    ok = real & np.all(lam < 0, axis=1)
    # Singular V (defective A) must not stop the batch: invert the usable ones only.
    det_ok = np.abs(np.linalg.det(V)) > 1e-300
    ok &= det_ok
    Vinv = np.zeros_like(V)
    Vinv[ok] = np.linalg.inv(V[ok])
    cond = np.linalg.norm(V, axis=(1, 2)) * np.linalg.norm(Vinv, axis=(1, 2))
    ok &= cond < _MAX_EIGENVECTOR_CONDITION
    beta = np.einsum("pij,pj->pi", Vinv, b)
    CV = np.einsum("pkm,pmi->pki", rows, V)
    lam = np.where(ok[:, None], lam, -1.0)  # placeholders; those patients use expm
    return ModalForm(lam, beta, CV, ok)


def _modal_interval_coefficients(mf: ModalForm, schedule: Schedule) -> tuple[FloatArray,
                                                                              FloatArray]:
    """Per patient and interval k: amplitudes a (N, K, k_out, m) and constants c (N, K, k_out)
    so that y(t) = c[k] + sum_i a[k, i] exp(lam_i (t - event_k)) on interval k."""
    lam, beta = mf.lam, mf.beta
    E = schedule.event_min
    u = schedule.rate_mg_per_min
    n, m = lam.shape
    K = E.size
    z = np.empty((n, K, m))
    z[:, 0] = beta * schedule.bolus_mg[0]
    for k in range(K - 1):
        g = E[k + 1] - E[k]
        decay = np.exp(lam * g)
        # expm1(lam g)/lam is the exact integral of exp(lam s) over the gap.
        z[:, k + 1] = (decay * z[:, k] + np.expm1(lam * g) / lam * beta * u[k]
                       + beta * schedule.bolus_mg[k + 1])
    ss = -beta[:, None, :] * u[None, :, None] / lam[:, None, :]  # (N, K, m) steady state
    w = z - ss
    a = mf.CV[:, None, :, :] * w[:, :, None, :]
    c = np.einsum("pom,pkm->pko", mf.CV, ss)
    return a, c


@dataclass(frozen=True, slots=True)
class ModalSolution:
    """A batch of patients' exact solutions, ready to be evaluated at any times: modal
    coefficients per input interval, and the expm path for the ill-conditioned ones."""

    system: LinearSystem
    schedule: Schedule
    modal: ModalForm
    a: FloatArray
    c: FloatArray

    def evaluate(self, times: FloatArray, only: str | None = None,
                 out: dict[str, FloatArray] | None = None) -> dict[str, FloatArray]:
        """Outputs at ``times`` (T,) shared or (N, T) per patient; ``only`` one output;
        ``out`` arrays (N, T) to write into."""
        names = tuple(self.system.outputs) if only is None else (only,)
        index = {o: i for i, o in enumerate(self.system.outputs)}
        lam, a, c = self.modal.lam, self.a, self.c
        n, m = lam.shape
        result = out if out is not None else {o: np.empty((n, times.shape[-1])) for o in names}
        if times.ndim == 1:
            # Sorted times fall into contiguous runs per input interval: each run is a
            # constant plus m exponentials, written straight into the output rows.
            order = np.argsort(times, kind="stable")
            ts = times[order]
            target = result if np.array_equal(order, np.arange(ts.size)) else {
                o: np.empty((n, ts.size)) for o in names}
            kidx, tau = _interval_index(self.schedule, ts)
            cuts = np.flatnonzero(np.diff(kidx)) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, ts.size], strict=True):
                k = kidx[lo]
                decay = [np.exp(np.multiply.outer(lam[:, j], tau[lo:hi])) for j in range(m)]
                scratch = np.empty_like(decay[0])
                for o in names:
                    i = index[o]
                    y = target[o][:, lo:hi]
                    y[...] = c[:, k, i, None]
                    for j in range(m):
                        np.multiply(decay[j], a[:, k, i, j, None], out=scratch)
                        y += scratch
            if target is not result:
                for o in names:
                    result[o][:, order] = target[o]
        else:
            kidx, tau = _interval_index(self.schedule, times)
            decay3 = np.exp(lam[:, None, :] * tau[..., None])
            pidx = np.arange(n)[:, None]
            for o in names:
                i = index[o]
                result[o][...] = c[pidx, kidx, i] + np.einsum(
                    "ptm,ptm->pt", a[pidx, kidx, i, :], decay3)
        bad = np.flatnonzero(~self.modal.ok)
        if bad.size:
            rows_all = np.stack([self.system.outputs[o][bad] for o in names], axis=1)
            y = solve_expm(self.system.A[bad], self.system.b[bad], rows_all, self.schedule,
                           times if times.ndim == 1 else times[bad])
            for i, o in enumerate(names):
                result[o][bad] = y[:, i]
        return result


def modal_solution(system: LinearSystem, schedule: Schedule,
                   rows: slice | None = None) -> ModalSolution:
    """Decompose (a slice of) the patients once; evaluate as often as needed."""
    sl = rows or slice(0, system.n_patients)
    names = tuple(system.outputs)
    out_rows = np.stack([system.outputs[o][sl] for o in names], axis=1)
    sub = LinearSystem(system.A[sl], system.b[sl], {o: system.outputs[o][sl] for o in names},
                       system.states, system.amount_states)
    mf = modal_form(sub.A, sub.b, out_rows)
    a, c = _modal_interval_coefficients(mf, schedule)
    return ModalSolution(sub, schedule, mf, a, c)


def solve(
    system: LinearSystem,
    schedule: Schedule,
    times_min: FloatArray,
    *,
    method: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> dict[str, FloatArray]:
    """Every output of ``system`` at ``times_min``, one row per patient.

    Parameters
    ----------
    system : N patients' matrices (see :func:`~ketamine_clinic.pk.compartments.build_system`).
    schedule : the input, in mg and mg/min of the model's compound.
    times_min : (T,) shared times or (N, T) per-patient times [min], all >= 0.
    method : "expm" (every patient by matrix exponentials) or "auto" (modal, with the expm
        path for ill-conditioned patients).
    progress : called with the number of patients finished after each chunk.

    Returns
    -------
    output name -> (N, T) array [ng/mL].
    """
    n = system.n_patients
    names = tuple(system.outputs)
    times = np.asarray(times_min, dtype=float)
    shared = times.ndim == 1
    T = times.shape[-1]
    m = system.A.shape[1]
    result = {o: np.empty((n, T)) for o in names}
    if method == "expm":
        rows = np.stack([system.outputs[o] for o in names], axis=1)
        chunk = max(1, min(n, _CHUNK_BYTES // max(1, 8 * T * m * m)))
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            y = solve_expm(system.A[sl], system.b[sl], rows[sl], schedule,
                           times if shared else times[sl])
            for i, o in enumerate(names):
                result[o][sl] = y[:, i]
            if progress is not None:
                progress(sl.stop - sl.start)
        return result
    chunk = max(1, min(n, _CHUNK_BYTES // max(1, 8 * T * m * (len(names) + 1))))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        part = modal_solution(system, schedule, sl)
        part.evaluate(times if shared else times[sl], out={o: result[o][sl] for o in names})
        if progress is not None:
            progress(sl.stop - sl.start)
    return result
