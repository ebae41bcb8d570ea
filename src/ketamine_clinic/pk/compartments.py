"""The linear state-space form dx/dt = A x + b u of a model, batched over patients.

States (amounts in mg of the parent compound, or parent-mass equivalents for the
metabolite; the effect site is a concentration in mg/L):

    central, peripheral 2, [peripheral 3], [effect site], [transit 1..n], [metabolite
    central, metabolite peripheral], [sinks]

``u`` is the infusion rate into the central compartment [mg/min] of the model's compound.
Outputs are rows ``C`` with ``y = C x`` in ng/mL of the compound each describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from ketamine_clinic.pk.parameter_sets import PKModel, RateConstants, catalogue, rate_constants
from ketamine_clinic.pk.units import NG_PER_ML_PER_MG_PER_L

FloatArray = NDArray[np.float64]

PLASMA = "plasma"
EFFECT = "effect_site"
METABOLITE = "norketamine"


@dataclass(frozen=True, slots=True)
class LinearSystem:
    """``A`` (N, m, m) [1/min], ``b`` (N, m) [per mg/min], ``outputs`` name -> (N, m) rows
    giving ng/mL, ``states`` the state names, ``amount_states`` the indices holding mg."""

    A: FloatArray
    b: FloatArray
    outputs: Mapping[str, FloatArray]
    states: tuple[str, ...]
    amount_states: tuple[int, ...]

    @property
    def n_patients(self) -> int:
        return int(self.A.shape[0])


def metabolite_output_factor(model: PKModel) -> float:
    """ng/mL of metabolite per ng/mL of parent-mass equivalents in its central compartment.

    "mass" models (Otto 2021) are used as published, without molecular-weight conversion;
    "molar" models (Simons 2022, fitted in nmol/mL) convert one mole of parent to one mole of
    metabolite: multiply by MW(metabolite) / MW(parent).
    """
    met = model.metabolite
    if met is None or met.units == "mass":
        return 1.0
    mw = catalogue().molecular_weight_g_per_mol
    return mw[met.compound] / mw[model.compound]


def build_system(
    model: PKModel,
    params: Mapping[str, FloatArray],
    ke0_per_min: FloatArray | None = None,
    *,
    sinks: bool = False,
) -> LinearSystem:
    """Assemble A, b and the output rows for N patients.

    Parameters
    ----------
    model : the PK model.
    params : individual parameters, arrays of shape (N,) [internal units].
    ke0_per_min : effect-site rate constant [1/min], shape (N,) or None (no effect site).
    sinks : add states collecting eliminated drug, so that the amount states sum to the
        dose given (for mass-balance checks; the matrix is then singular).
    """
    pk = rate_constants(params, model.structure)
    n = int(np.atleast_1d(pk.V1).shape[0])
    effect = ke0_per_min is not None
    met = model.metabolite
    n_transit = met.n_transit if met else 0
    names = _state_names(pk.n_compartments, effect, n_transit, met is not None, sinks)
    idx = {s: i for i, s in enumerate(names)}
    m = len(names)
    # Every entry of A is written once, by assignment (numpy broadcasts a parameter of shape
    # () or (N,)); an in-place update of a column view costs five times as much.
    A = np.zeros((n, m, m))
    b = np.zeros((n, m))
    c, p2 = idx["central"], idx["peripheral2"]
    _mammillary(A, pk, c, p2, idx.get("peripheral3"))
    b[:, c] = 1.0
    outputs: dict[str, FloatArray] = {}
    row = np.zeros((n, m))
    row[:, c] = NG_PER_ML_PER_MG_PER_L / pk.V1
    outputs[PLASMA] = row
    if effect:
        e = idx[EFFECT]
        ke0 = np.asarray(ke0_per_min, dtype=float)
        A[:, e, c] = ke0 / pk.V1
        A[:, e, e] = -ke0
        row = np.zeros((n, m))
        row[:, e] = NG_PER_ML_PER_MG_PER_L
        outputs[EFFECT] = row
    eliminated_parent = pk.k10
    if met:
        mk = rate_constants({"V1": params["VM1"], "V2": params["VM2"], "CL": params["CLM"],
                             "Q2": params["QM2"]}, "clearances")
        fm = np.asarray(params["FM"], dtype=float)
        mc, mp = idx["metabolite_central"], idx["metabolite_peripheral"]
        _mammillary(A, mk, mc, mp, None)
        if n_transit:
            ktr = n_transit / np.asarray(params["MTT"], dtype=float)
            first = idx["transit1"]
            A[:, first, c] = eliminated_parent
            for i in range(n_transit):
                t = first + i
                A[:, t, t] = -ktr
                if i + 1 < n_transit:
                    A[:, t + 1, t] = ktr
            A[:, mc, first + n_transit - 1] = fm * ktr
            lost_from, lost_rate = first + n_transit - 1, (1.0 - fm) * ktr
        else:
            A[:, mc, c] = fm * eliminated_parent
            lost_from, lost_rate = c, (1.0 - fm) * eliminated_parent
        row = np.zeros((n, m))
        row[:, mc] = NG_PER_ML_PER_MG_PER_L * metabolite_output_factor(model) / mk.V1
        outputs[METABOLITE] = row
        if sinks:
            s = idx["eliminated"]
            A[:, s, lost_from] = lost_rate
            A[:, s, mc] = mk.k10
    elif sinks:
        A[:, idx["eliminated"], c] = eliminated_parent
    amount = tuple(i for i, s in enumerate(names) if s != EFFECT)
    return LinearSystem(A, b, outputs, tuple(names), amount)


@cache
def _state_names(n_compartments: int, effect: bool, n_transit: int, metabolite: bool,
                 sinks: bool) -> tuple[str, ...]:
    """The states of a model of this shape, in the order of the module docstring."""
    names = ["central", "peripheral2"]
    if n_compartments == 3:
        names.append("peripheral3")
    if effect:
        names.append(EFFECT)
    names += [f"transit{i + 1}" for i in range(n_transit)]
    if metabolite:
        names += ["metabolite_central", "metabolite_peripheral"]
    if sinks:
        names += ["eliminated"]
    return tuple(names)


def _mammillary(A: FloatArray, k: RateConstants, c: int, p2: int, p3: int | None) -> None:
    """Fill the block of a mammillary model with central ``c`` and peripherals ``p2``, ``p3``
    (entries still zero: each is assigned once)."""
    A[:, c, c] = -(k.k10 + k.k12 + k.k13)
    A[:, c, p2] = k.k21
    A[:, p2, c] = k.k12
    A[:, p2, p2] = -k.k21
    if p3 is not None:
        A[:, c, p3] = k.k31
        A[:, p3, c] = k.k13
        A[:, p3, p3] = -k.k31
