"""An independent exact reference: the same linear system solved in 40-digit arithmetic.

Nothing of the engine is used but the model's matrices (checked against published values in
test_models.py): every transition is mpmath's matrix exponential of the augmented matrix
[[A, b u], [0, 0]] at 40 significant digits, and the state is carried through the sorted
union of input events and output times in the same precision. Rounding is then some 1e-35
of the values, so any difference from a double-precision result is that result's error.
Inputs are floats, converted exactly (every double is an exact binary fraction).
"""

from __future__ import annotations

from collections.abc import Mapping

import mpmath
import numpy as np
from numpy.typing import NDArray

from ketamine_clinic.pk.compartments import LinearSystem
from ketamine_clinic.pk.engine import Schedule

FloatArray = NDArray[np.float64]
DIGITS = 40


def exact_outputs(system: LinearSystem, schedule: Schedule, times: FloatArray,
                  patient: int = 0) -> dict[str, FloatArray]:
    """Every output (T,) of one patient at ``times`` [min], rounded to double at the end."""
    names = tuple(system.outputs)
    rows = np.stack([system.outputs[o][patient] for o in names])
    key = (system.A[patient].tobytes(), system.b[patient].tobytes(), rows.tobytes(),
           schedule.event_min.tobytes(), schedule.rate_mg_per_min.tobytes(),
           schedule.bolus_mg.tobytes(), np.asarray(times, dtype=float).tobytes())
    if key not in _memo:
        _memo[key] = _exact(system.A[patient], system.b[patient], rows, schedule,
                            np.asarray(times, dtype=float))
    values = _memo[key]
    return {o: values[i].copy() for i, o in enumerate(names)}


_memo: dict[tuple[bytes, ...], FloatArray] = {}


def _exact(A_: FloatArray, b_: FloatArray, rows_: FloatArray, schedule: Schedule,
           times: FloatArray) -> FloatArray:
    m = A_.shape[0]
    with mpmath.workdps(DIGITS):
        A = mpmath.matrix(A_.tolist())
        b = [mpmath.mpf(float(v)) for v in b_]
        rows = [[mpmath.mpf(float(v)) for v in r] for r in rows_]
        events = [float(e) for e in schedule.event_min]
        grid = sorted(set(events) | {float(t) for t in times})
        transitions: dict[tuple[float, float], list[list[mpmath.mpf]]] = {}

        def transition(gap: float, rate: float) -> list[list[mpmath.mpf]]:
            key = (gap, rate)
            if key not in transitions:
                M = mpmath.zeros(m + 1, m + 1)
                for i in range(m):
                    for j in range(m):
                        M[i, j] = A[i, j] * mpmath.mpf(gap)
                    M[i, m] = b[i] * mpmath.mpf(rate) * mpmath.mpf(gap)
                E = mpmath.expm(M)
                transitions[key] = [[E[i, j] for j in range(m + 1)] for i in range(m + 1)]
            return transitions[key]

        x = [mpmath.mpf(0)] * m + [mpmath.mpf(1)]
        rate = 0.0
        at: dict[float, list[float]] = {}
        previous = grid[0]
        for t in grid:
            if t > previous:
                T = transition(t - previous, rate)
                x = [mpmath.fdot(T[i], x) for i in range(m + 1)]
            previous = t
            if t in events:
                k = events.index(t)
                dose = mpmath.mpf(float(schedule.bolus_mg[k]))
                x = [x[i] + dose * b[i] for i in range(m)] + [x[m]]
                rate = float(schedule.rate_mg_per_min[k])
            at[t] = [float(mpmath.fdot(r, x[:m])) for r in rows]
    return np.array([at[float(t)] for t in times]).T


def max_relative_error(got: Mapping[str, FloatArray], exact: Mapping[str, FloatArray]
                       ) -> float:
    """The largest |got - exact| / |exact| over every series and every time where the exact
    value is not zero. Where it is exactly zero (an effect site or metabolite at the instant
    of a bolus into the central compartment), a relative error does not exist: there
    ``got`` must be within 1e-13 of the series' peak, else the result is inf."""
    worst = 0.0
    for name, ref in exact.items():
        y = np.asarray(got[name], dtype=float)
        nonzero = ref != 0
        if np.any(np.abs(y[~nonzero]) > 1e-13 * np.abs(ref).max()):
            return float("inf")
        if nonzero.any():
            worst = max(worst, float(np.max(np.abs(y[nonzero] - ref[nonzero])
                                            / np.abs(ref[nonzero]))))
    return worst
