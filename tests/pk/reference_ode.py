"""An independent reference: the same linear system integrated by scipy's solve_ivp.

The integration restarts at every input event (bolus or rate change), so the solver never
steps across a discontinuity; DOP853 with rtol 1e-13 is accurate to far below 1e-9.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from ketamine_clinic.pk.compartments import LinearSystem
from ketamine_clinic.pk.engine import Schedule


def solve_ode(system: LinearSystem, schedule: Schedule, times: NDArray[np.float64],
              patient: int = 0) -> dict[str, NDArray[np.float64]]:
    """Outputs (T,) per name for one patient, integrated with DOP853 (rtol 1e-13).

    The integration marches from point to point of the sorted union of input events and
    output times, so every output is a step end point (no dense-output interpolation, whose
    error is far larger than the solver's tolerance) and no step crosses a discontinuity.
    """
    A, b = system.A[patient], system.b[patient]
    names = list(system.outputs)
    rows = np.stack([system.outputs[o][patient] for o in names])
    events = schedule.event_min
    grid = np.union1d(events, times)
    x = np.zeros(A.shape[0])
    out = np.full((len(names), times.size), np.nan)
    rate = 0.0
    for i, t in enumerate(grid):
        if i > 0:
            sol = solve_ivp(lambda _t, s, r=rate: A @ s + b * r, (grid[i - 1], t), x,
                            method="DOP853", rtol=1e-13, atol=1e-22)
            assert sol.success, sol.message
            x = sol.y[:, -1]
        k = np.flatnonzero(events == t)
        if k.size:
            x = x + schedule.bolus_mg[k[0]] * b
            rate = schedule.rate_mg_per_min[k[0]]
        out[:, times == t] = (rows @ x)[:, None]
    return {o: out[i] for i, o in enumerate(names)}
