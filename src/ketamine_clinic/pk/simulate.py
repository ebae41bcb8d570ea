"""Simulate one patient: plasma, effect-site and norketamine concentrations.

Public entry points: :func:`simulate`, :func:`t_peak_min`, :func:`ke0_for_t_peak`,
:func:`check_patient`. Results are frozen dataclasses that carry their inputs, the model id,
version and references, and every warning, so the web layer can store them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.compartments import (
    EFFECT,
    METABOLITE,
    PLASMA,
    LinearSystem,
    build_system,
)
from ketamine_clinic.pk.engine import (
    ModalForm,
    Schedule,
    modal_form,
    modal_solution,
    solve,
)
from ketamine_clinic.pk.parameter_sets import (
    Ke0,
    PDModel,
    PKModel,
    Range,
    catalogue,
    get_model,
    individual_parameters,
)
from ketamine_clinic.pk.regimen import Bolus, Regimen

FloatArray = NDArray[np.float64]
SERIES = (PLASMA, EFFECT, METABOLITE)

# Search horizon for threshold crossings: start at 12 h after the last input and widen
# fourfold until every curve is below the threshold and falling at the horizon.
_CROSSING_FIRST_HORIZON_MIN = 720.0
_CROSSING_GRID_POINTS = 513
_CROSSING_MAX_WIDENINGS = 12
_BISECTION_STEPS = 60


@dataclass(frozen=True, slots=True)
class Patient:
    """The covariates a model may use. Height and sex are recorded; no current model uses
    them."""

    weight_kg: float
    age_years: float | None = None
    height_cm: float | None = None
    sex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"weight_kg": self.weight_kg, "age_years": self.age_years,
                "height_cm": self.height_cm, "sex": self.sex}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a stored prediction must say about the model that made it."""

    id: str
    name: str
    version: str
    compound: str
    metabolite_compound: str | None
    sampling: str
    references: Mapping[str, str]
    ke0_per_min: float | None
    ke0_status: str | None
    ke0_source: str | None
    research_model: bool
    pd_readout: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "version": self.version,
            "compound": self.compound, "metabolite_compound": self.metabolite_compound,
            "sampling": self.sampling, "references": dict(self.references),
            "ke0_per_min": self.ke0_per_min, "ke0_status": self.ke0_status,
            "ke0_source": self.ke0_source, "research_model": self.research_model,
            "pd_readout": self.pd_readout,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Concentrations [ng/mL of the model's compound] at ``times_min`` for one patient.

    ``effect_site_ng_per_ml`` is None when the model has no effect site; ``norketamine_ng_per_ml``
    when it has no metabolite; ``pd_effect`` is the PD model's readout (dahan2011-crps) or None.
    ``threshold_crossing_min`` maps a series name to the time [min] at which it falls below
    ``threshold_ng_per_ml`` for good after the last input (None: no threshold asked).
    """

    model: ModelInfo
    patient: Patient
    regimen: Regimen
    times_min: FloatArray
    plasma_ng_per_ml: FloatArray
    effect_site_ng_per_ml: FloatArray | None
    norketamine_ng_per_ml: FloatArray | None
    pd_effect: FloatArray | None
    warnings: tuple[str, ...]
    threshold_ng_per_ml: float | None = None
    threshold_crossing_min: Mapping[str, float] = field(default_factory=dict)

    def series(self) -> dict[str, FloatArray]:
        """The concentration series this model has, by name [ng/mL]."""
        out = {PLASMA: self.plasma_ng_per_ml}
        if self.effect_site_ng_per_ml is not None:
            out[EFFECT] = self.effect_site_ng_per_ml
        if self.norketamine_ng_per_ml is not None:
            out[METABOLITE] = self.norketamine_ng_per_ml
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times and concentrations, the inputs and the model's provenance."""

        def arr(a: FloatArray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in a]

        return {
            "model": self.model.id,
            "times_min": arr(self.times_min),
            "plasma_ng_per_ml": arr(self.plasma_ng_per_ml),
            "effect_site_ng_per_ml": arr(self.effect_site_ng_per_ml),
            "norketamine_ng_per_ml": arr(self.norketamine_ng_per_ml),
            "pd_effect": arr(self.pd_effect),
            "warnings": list(self.warnings),
            "threshold_ng_per_ml": self.threshold_ng_per_ml,
            "threshold_crossing_min": dict(self.threshold_crossing_min),
            "model_info": self.model.to_dict(),
            "patient": self.patient.to_dict(),
            "regimen": self.regimen.to_dict(),
        }


# ----------------------------------------------------------------------------- validation

def _outside(r: Range | None, x: float | None) -> bool:
    return r is not None and x is not None and not r.contains(x)


def check_patient(model: PKModel, patient: Patient, *, label: str | None = None) -> list[str]:
    """Warnings for a patient outside ``model``'s validity; :class:`UsageError` where the
    model would be meaningless (its ``refuse`` ranges) or the weight is outside every model's
    range.

    Fields named: ``weight_kg``, ``age_years``.
    """
    cat = catalogue()
    name = label or model.id
    w = patient.weight_kg
    if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
        raise UsageError("weight_kg", f"must be a positive number, got {w!r}")
    if patient.age_years is not None and (
        not math.isfinite(patient.age_years) or patient.age_years < 0
    ):
        raise UsageError("age_years", f"must be a number >= 0, got {patient.age_years!r}")
    if _outside(cat.limits.weight_kg, w) or _outside(cat.limits.age_years, patient.age_years):
        raise UsageError("weight_kg" if _outside(cat.limits.weight_kg, w) else "age_years",
                         "outside the range of a human patient")
    ranges = _model_weight_ranges()
    if not any(r.contains(w) for r in ranges):
        low = min(r.low for r in ranges)
        high = max(r.high for r in ranges)
        raise UsageError("weight_kg", f"{w:g} kg is outside every model's range "
                                      f"({low:g}-{high:g} kg)")
    refuse = model.refuse
    if refuse is not None:
        for fld, r, x, unit in (("weight_kg", refuse.weight_kg, w, "kg"),
                                ("age_years", refuse.age_years, patient.age_years, "years")):
            if _outside(r, x):
                raise UsageError(fld, f"{x:g} {unit} is far outside what {name} describes "
                                      f"(refused outside {r} {unit}: {refuse.source})")
    warnings: list[str] = []
    v = model.validity
    if _outside(v.weight_kg, w):
        warnings.append(f"weight {w:g} kg is outside the validity range of {name} "
                        f"({v.weight_kg} kg; {v.source})")
    if _outside(v.age_years, patient.age_years):
        warnings.append(f"age {patient.age_years:g} years is outside the validity range of "
                        f"{name} ({v.age_years} years; {v.source})")
    paediatric = catalogue().paediatric_below_age_years
    if patient.age_years is None and v.age_years is not None and v.age_years.low < paediatric:
        warnings.append(f"age not given: {name} is a paediatric model "
                        f"({v.age_years} years) and the age could not be checked")
    return warnings


@cache
def _model_weight_ranges() -> tuple[Range, ...]:
    """The weight range of every PK model (read once from the catalogue)."""
    return tuple(m.validity.weight_kg for m in catalogue().pk.values() if m.validity.weight_kg)


# ------------------------------------------------------------------------------- assembly

@dataclass(frozen=True, slots=True)
class Prepared:
    """A model, patient(s) and regimen made ready for the engine (internal)."""

    pk: PKModel
    pd: PDModel | None
    info: ModelInfo
    schedule: Schedule
    ke0: Ke0 | None
    warnings: tuple[str, ...]


def resolve_models(model_id: str) -> tuple[PKModel, PDModel | None]:
    """The PK model to run for ``model_id`` and the PD model on top of it, if any."""
    model = get_model(model_id)
    if isinstance(model, PDModel):
        pk = get_model(model.pk_model)
        assert isinstance(pk, PKModel)
        return pk, model
    return model, None


@dataclass(frozen=True, slots=True)
class _Setup:
    """What a model id, a drug and a ke0 override decide, whatever the patient."""

    pk: PKModel
    pd: PDModel | None
    info: ModelInfo
    fraction: float
    ke0: Ke0 | None
    label: str
    warnings: tuple[str, ...]


@lru_cache(maxsize=256)
def _setup(model_id: str, drug_key: str, ke0_per_min: float | None) -> _Setup:
    """Model, drug fraction, ke0, references and the warnings that do not depend on the
    patient: worked out once per (model, drug, ke0) and reused (an error is not cached)."""
    pk, pd = resolve_models(model_id)
    cat = catalogue()
    warnings: list[str] = []
    drug = cat.drugs[drug_key]
    if pk.compound == "S-ketamine":
        fraction = drug.s_ketamine_fraction
        if fraction < 1.0:
            warnings.append(
                f"{drug.name} given to an S-ketamine model: its S-ketamine part "
                f"({fraction:.0%}) is simulated; R-ketamine is not shown")
    elif drug_key == "racemic":
        fraction = 1.0
    else:
        raise UsageError("drug", f"{pk.id} describes racemic ketamine; choose an S-ketamine "
                                 f"model (fanta2015-otto2021, simons2022) for {drug.name}")
    ke0 = pd.ke0 if pd is not None else pk.ke0
    if ke0_per_min is not None:
        if not math.isfinite(ke0_per_min) or ke0_per_min <= 0:
            raise UsageError("ke0", f"must be a positive rate constant [1/min], got "
                                    f"{ke0_per_min!r}")
        ke0 = Ke0(float(ke0_per_min), "user-given", "user", f"{ke0_per_min:g} 1/min")
        warnings.append(f"effect-site ke0 {ke0_per_min:g} /min is user-given, not from a "
                        "published model")
    elif ke0 is not None and ke0.status == "assumed":
        warnings.append(f"effect-site ke0 {ke0.per_min:g} /min of {pk.id} is an assumption "
                        f"({ke0.source}: {ke0.notes}), not a fitted value")
    if pd is not None and pd.research_model:
        warnings.append(f"{pd.id} is a research model ({pd.readout}); not a prediction for "
                        "an individual patient")
    keys = [pk.source, *(p.source for p in pk.parameters.values())]
    if ke0 is not None and ke0.source in cat.references:
        keys.append(ke0.source)
    if pd is not None:
        keys.append(pd.source)
    refs = {k: cat.references[k] for k in dict.fromkeys(keys) if k in cat.references}
    info = ModelInfo(
        id=model_id,
        name=pk.name if pd is None else f"{pd.name} on {pk.name}",
        version=pk.version,
        compound=pk.compound,
        metabolite_compound=pk.metabolite.compound if pk.metabolite else None,
        sampling=pk.sampling,
        references=refs,
        ke0_per_min=ke0.per_min if ke0 else None,
        ke0_status=ke0.status if ke0 else None,
        ke0_source=ke0.source if ke0 else None,
        research_model=bool(pd and pd.research_model),
        pd_readout=pd.readout if pd else None,
    )
    label = pk.id if pd is None else f"{pk.id} (PK of {model_id})"
    return _Setup(pk, pd, info, fraction, ke0, label, tuple(warnings))


def prepare(model_id: str, patient: Patient, regimen: Regimen,
            ke0_per_min: float | None = None) -> Prepared:
    """Validate the inputs against the model and gather the model's provenance."""
    if not isinstance(model_id, str):
        raise UsageError("model", f"unknown model {model_id!r}")
    ke0: float | None = None
    if ke0_per_min is not None:
        try:
            ke0 = float(ke0_per_min)
        except (TypeError, ValueError):
            raise UsageError("ke0", f"must be a positive rate constant [1/min], got "
                                    f"{ke0_per_min!r}") from None
    setup = _setup(model_id, regimen.drug, ke0)
    warnings = check_patient(setup.pk, patient, label=setup.label)
    return Prepared(setup.pk, setup.pd, setup.info, regimen.schedule(setup.fraction),
                    setup.ke0, (*warnings, *setup.warnings))


def check_times(times_min: ArrayLike, field: str = "times_min") -> FloatArray:
    """Output times [min] as a float array; finite, >= 0 and at least one."""
    try:
        t = np.asarray(times_min, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(field, "times must be numbers [min]") from None
    if t.size == 0:
        raise UsageError(field, "give at least one time")
    if not math.isfinite(float(t.sum())) and not np.all(np.isfinite(t)):  # sum: one pass
        raise UsageError(field, "times must be finite numbers [min]")
    if float(t.min()) < 0:
        raise UsageError(field, f"time {float(t[t < 0][0]):g} min is before time 0")
    return t


def pd_effect(pd: PDModel, effect_site_ng_per_ml: FloatArray) -> FloatArray:
    """The PD readout: Ce^h / (C50^h + Ce^h), a fraction of the maximal effect."""
    ce = np.maximum(effect_site_ng_per_ml, 0.0) ** pd.hill
    return np.asarray(ce / (pd.c50_ng_per_ml**pd.hill + ce))


def make_system(prep: Prepared, params: Mapping[str, FloatArray]) -> LinearSystem:
    """The batched linear system for these individual parameters (one patient per entry)."""
    ke0 = None
    if prep.ke0 is not None:
        ke0 = np.full(np.atleast_1d(params["V1"]).shape, prep.ke0.per_min)
    return build_system(prep.pk, params, ke0)


def evaluator(prep: Prepared, system: LinearSystem, method: str = "auto"
              ) -> Callable[[FloatArray, str], FloatArray]:
    """A function of output times -> outputs, for the crossing search (the modal form is
    computed once)."""
    if method == "expm":

        def evaluate(times: FloatArray, series: str) -> FloatArray:
            return solve(system, prep.schedule, times, method=method)[series]

        return evaluate
    solution = modal_solution(system, prep.schedule)

    def evaluate_modal(times: FloatArray, series: str) -> FloatArray:
        return solution.evaluate(times, only=series)[series]

    return evaluate_modal


def crossing_times(evaluate: Callable[[FloatArray, str], FloatArray], series: str,
                   t_from_min: float, threshold: float, n: int) -> FloatArray:
    """Per patient, the time [min] after which ``series`` stays below ``threshold``.

    The curve is evaluated exactly on a grid from ``t_from_min`` to a horizon that widens
    until every curve is below the threshold and falling there; the last grid interval where
    it was at or above the threshold is then bisected on the exact solution to 1e-9 min
    precision. A curve already below at ``t_from_min`` and never above afterwards gives
    ``t_from_min``. (A rise above the threshold shorter than the grid step, horizon/512,
    would be missed; after the last input the curves here rise at most once.)
    """
    horizon = _CROSSING_FIRST_HORIZON_MIN
    for _ in range(_CROSSING_MAX_WIDENINGS):
        grid = t_from_min + horizon * np.linspace(0.0, 1.0, _CROSSING_GRID_POINTS)
        y = evaluate(grid, series)
        settled = (y[:, -1] < threshold) & (y[:, -1] <= y[:, -2])
        if settled.all():
            break
        horizon *= 4.0
    above = y >= threshold
    any_above = above.any(axis=1)
    last = np.where(any_above, grid.size - 1 - np.argmax(above[:, ::-1], axis=1), 0)
    lo = grid[last].copy()
    hi = grid[np.minimum(last + 1, grid.size - 1)].copy()
    for _ in range(_BISECTION_STEPS):
        if np.all(hi - lo <= 1e-9):
            break
        mid = 0.5 * (lo + hi)
        ym = evaluate(mid[:, None], series)[:, 0]
        up = ym >= threshold
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return np.where(any_above, hi, t_from_min)


def simulate(
    model_id: str,
    patient: Patient,
    regimen: Regimen,
    times_min: ArrayLike,
    *,
    ke0_per_min: float | None = None,
    threshold_ng_per_ml: float | None = None,
) -> SimulationResult:
    """Concentrations for one (typical) patient, by the exact closed form the population
    uses (:mod:`~ketamine_clinic.pk.engine`; decomposition cached per parameter set).

    Parameters
    ----------
    model_id : a PK model id (``domino``, ``kamp2020``, ...) or ``dahan2011-crps``.
    patient : weight [kg] (and age [years]) checked against the model's validity.
    regimen : segments [mg/h] and boluses [mg] of the drug given.
    times_min : output times [min] >= 0.
    ke0_per_min : override of the effect-site rate constant [1/min] (labelled user-given).
    threshold_ng_per_ml : if given, the time each series falls below it for good after the
        last input is returned in ``threshold_crossing_min``.

    Returns
    -------
    SimulationResult, concentrations in ng/mL of the model's compound (and metabolite).
    """
    prep = prepare(model_id, patient, regimen, ke0_per_min)
    times = check_times(times_min)
    if threshold_ng_per_ml is not None and (not math.isfinite(threshold_ng_per_ml)
                                            or threshold_ng_per_ml <= 0):
        raise UsageError("threshold", f"must be a positive concentration [ng/mL], got "
                                      f"{threshold_ng_per_ml!r}")
    system, modal = typical_patient(prep.pk.id, float(patient.weight_kg),
                                    None if prep.ke0 is None else prep.ke0.per_min)
    solution = modal_solution(system, prep.schedule, modal=modal)
    out = solution.evaluate(times)
    crossing: dict[str, float] = {}
    if threshold_ng_per_ml is not None:

        def evaluate(at: FloatArray, series: str) -> FloatArray:
            return solution.evaluate(at, only=series)[series]

        for s in out:
            crossing[s] = float(crossing_times(evaluate, s, prep.schedule.last_input_min,
                                               threshold_ng_per_ml, 1)[0])
    return _result(prep, patient, regimen, times, {k: v[0] for k, v in out.items()},
                   threshold_ng_per_ml, crossing)


@lru_cache(maxsize=512)
def typical_patient(pk_id: str, weight_kg: float, ke0_per_min: float | None
                    ) -> tuple[LinearSystem, ModalForm]:
    """One patient's linear system and its eigen-decomposition, computed once per distinct
    parameter set (model, weight [kg], ke0 [1/min]) and shared read-only: an order page,
    its what-if and its population's typical curve decompose the same matrix once."""
    pk = catalogue().pk[pk_id]
    params = individual_parameters(pk, np.array([weight_kg]))
    ke0 = None if ke0_per_min is None else np.array([ke0_per_min])
    system = build_system(pk, params, ke0)
    rows = np.array(list(system.outputs.values())).swapaxes(0, 1)  # (1, outputs, m)
    modal = modal_form(system.A, system.b, rows)
    for a in (system.A, system.b, *system.outputs.values(), modal.lam, modal.beta,
              modal.CV, modal.ok):
        a.setflags(write=False)
    return system, modal


def _readonly(a: FloatArray, *, fresh: bool = False) -> FloatArray:
    """A read-only array: ``a`` itself when it is ``fresh`` (made for this result, nobody
    else holds it), else a copy."""
    a = np.asarray(a, dtype=float) if fresh else np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _result(prep: Prepared, patient: Patient, regimen: Regimen, times: FloatArray,
            out: Mapping[str, FloatArray], threshold: float | None,
            crossing: Mapping[str, float], *, fresh: bool = True) -> SimulationResult:
    effect = out.get(EFFECT)
    return SimulationResult(
        model=prep.info,
        patient=patient,
        regimen=regimen,
        times_min=_readonly(times),
        plasma_ng_per_ml=_readonly(out[PLASMA], fresh=fresh),
        effect_site_ng_per_ml=None if effect is None else _readonly(effect, fresh=fresh),
        norketamine_ng_per_ml=None if METABOLITE not in out else _readonly(out[METABOLITE],
                                                                           fresh=fresh),
        pd_effect=None if prep.pd is None or effect is None else _readonly(
            pd_effect(prep.pd, effect), fresh=True),
        warnings=prep.warnings,
        threshold_ng_per_ml=threshold,
        threshold_crossing_min=dict(crossing),
    )


def t_peak_min(model_id: str, weight_kg: float, ke0_per_min: float | None = None) -> float:
    """Time [min] of the effect-site peak after an instantaneous bolus (at dCe/dt = 0).

    Checks: Domino with ke0 0.238 /min and Kamp 2020 with 1.39 /min both give 1.61 min
    (pk-models.md section 5). Independent of the dose (linearity).
    """
    prep = prepare(model_id, Patient(weight_kg), Regimen(boluses=(Bolus(0.0, 1.0),)),
                   ke0_per_min)
    if prep.ke0 is None:
        raise UsageError("ke0", f"{model_id} has no effect site; give ke0")
    system, modal = typical_patient(prep.pk.id, float(weight_kg), prep.ke0.per_min)
    solution = modal_solution(system, prep.schedule, modal=modal)

    def evaluate(at: FloatArray, series: str) -> FloatArray:
        return solution.evaluate(at, only=series)[series]

    def slope(t: float) -> float:
        at = np.array([t])
        return float(evaluate(at, PLASMA)[0, 0] - evaluate(at, EFFECT)[0, 0])  # dCe/dt sign

    hi = 1.0 / prep.ke0.per_min
    while slope(hi) > 0:
        hi *= 2.0
    return float(brentq(slope, 1e-9, hi, xtol=1e-12, rtol=1e-12))


def ke0_for_t_peak(model_id: str, weight_kg: float, t_peak: float) -> float:
    """The ke0 [1/min] that gives ``model_id`` the effect-site peak time ``t_peak`` [min]
    after a bolus (how SimTIVA transferred Navarrete's Domino ke0 to Kamp 2020)."""
    return float(np.exp(brentq(
        lambda lk: t_peak_min(model_id, weight_kg, float(np.exp(lk))) - t_peak,
        np.log(1e-4), np.log(100.0), xtol=1e-12)))

