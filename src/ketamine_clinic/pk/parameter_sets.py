"""Published ketamine PK/PD models, loaded from ``pk/models.toml``.

The TOML file holds every model in its published form (volumes and clearances, or V1 and
micro-constants), with units, weight-scaling rules, sampling site, compound, validity ranges
and inter-individual variability, each with a reference key. This module turns it into frozen
dataclasses and derives individual parameters and rate constants in one tested place
(:func:`individual_parameters`, :func:`rate_constants`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.units import is_per_kg, rate_constant_from_half_life, to_internal
from ketamine_clinic.reference import read_toml

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g}"


@dataclass(frozen=True, slots=True)
class Validity:
    """A weight and age range with its source (a studied population or a policy)."""

    weight_kg: Range | None
    age_years: Range | None
    source: str


@dataclass(frozen=True, slots=True)
class Parameter:
    """One published parameter: value in its published unit, scaling rule and source."""

    name: str
    value: float
    unit: str
    source: str
    weight_exponent: float | None = None
    same_as: str | None = None


@dataclass(frozen=True, slots=True)
class Ke0:
    """An effect-site rate constant [1/min] and what it rests on."""

    per_min: float
    status: str  # fitted | t_peak matched | assumed | user-given
    source: str
    published: str  # as printed, e.g. "0.238 1/min" or "t1/2 11 s"
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Metabolite:
    compound: str
    units: str  # "mass" (as published) or "molar" (nmol/mL, parent-mass states)
    n_transit: int
    source: str
    notes: str


@dataclass(frozen=True, slots=True)
class IIV:
    """Log-normal inter-individual variability: variances and covariances of eta."""

    omega2: Mapping[str, float]
    covariance: tuple[tuple[str, str, float], ...]
    source: str
    label: str  # "published (KEY)" or "user-given"
    notes: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.omega2)

    def matrix(self) -> FloatArray:
        """The covariance matrix of eta, in the order of :attr:`names`."""
        names = self.names
        omega = np.diag([self.omega2[n] for n in names]).astype(float)
        for a, b, cov in self.covariance:
            i, j = names.index(a), names.index(b)
            omega[i, j] = omega[j, i] = cov
        return omega


@dataclass(frozen=True, slots=True)
class PKModel:
    """A published pharmacokinetic model (see ``models.toml`` for the field meanings)."""

    id: str
    name: str
    compound: str
    sampling: str
    structure: str  # "micro" or "clearances"
    reference_weight_kg: float
    parameters: Mapping[str, Parameter]
    ke0: Ke0 | None
    metabolite: Metabolite | None
    iiv: IIV | None
    validity: Validity
    refuse: Validity | None
    source: str
    notes: str
    version: str

    @property
    def n_compartments(self) -> int:
        return 3 if ("V3" in self.parameters or "k13" in self.parameters) else 2


@dataclass(frozen=True, slots=True)
class PDModel:
    """An effect-compartment PD model that rides on a PK model of the same compound."""

    id: str
    name: str
    research_model: bool
    compound: str
    pk_model: str
    ke0: Ke0
    c50_ng_per_ml: float
    hill: float
    readout: str
    source: str
    notes: str
    version: str


@dataclass(frozen=True, slots=True)
class Drug:
    key: str
    name: str
    s_ketamine_fraction: float
    source: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    pk: Mapping[str, PKModel]
    pd: Mapping[str, PDModel]
    drugs: Mapping[str, Drug]
    molecular_weight_g_per_mol: Mapping[str, float]
    references: Mapping[str, str]
    limits: Validity
    paediatric_below_age_years: float  # a model studied below this age is paediatric


def _range(raw: Any) -> Range | None:
    if raw is None:
        return None
    low, high = raw
    return Range(float(low), float(high))


def _validity(raw: Mapping[str, Any] | None) -> Validity | None:
    if raw is None:
        return None
    return Validity(_range(raw.get("weight_kg")), _range(raw.get("age_years")), raw["source"])


def _ke0(raw: Mapping[str, Any] | None) -> Ke0 | None:
    if raw is None:
        return None
    unit = raw["unit"]
    if "t_half" in raw:
        per_min = rate_constant_from_half_life(to_internal(float(raw["t_half"]), unit))
        published = f"t1/2 {raw['t_half']:g} {unit}"
    else:
        per_min = to_internal(float(raw["value"]), unit)
        published = f"{raw['value']:g} {unit}"
    return Ke0(per_min, raw["status"], raw["source"], published, raw.get("notes", ""))


def _iiv(raw: Mapping[str, Any] | None) -> IIV | None:
    if raw is None:
        return None
    if "omega2" in raw:
        omega2 = {k: float(v) for k, v in raw["omega2"].items()}
    else:
        # Published as a percentage; with the "omega" convention the percentage is the SD
        # of eta (x 100), so the variance is its square.
        if raw["cv_convention"] != "omega":
            raise UsageError("iiv", f"unknown cv_convention {raw['cv_convention']!r}")
        omega2 = {k: (float(v) / 100.0) ** 2 for k, v in raw["cv_percent"].items()}
    cov = tuple((str(a), str(b), float(c)) for a, b, c in raw.get("covariance", []))
    return IIV(
        MappingProxyType(omega2), cov, raw["source"], f"published ({raw['source']})",
        raw.get("notes", ""),
    )


def _pk_model(key: str, raw: Mapping[str, Any], version: str) -> PKModel:
    params = {
        name: Parameter(
            name=name,
            value=float(p.get("value", np.nan)),
            unit=p.get("unit", ""),
            source=p["source"],
            weight_exponent=p.get("weight_exponent"),
            same_as=p.get("same_as"),
        )
        for name, p in raw["parameters"].items()
    }
    met = raw.get("metabolite")
    metabolite = (
        None
        if met is None
        else Metabolite(met["compound"], met["units"], int(met["n_transit"]), met["source"],
                        met.get("notes", ""))
    )
    validity = _validity(raw["validity"])
    assert validity is not None
    return PKModel(
        id=key,
        name=raw["name"],
        compound=raw["compound"],
        sampling=raw["sampling"],
        structure=raw["structure"],
        reference_weight_kg=float(raw.get("reference_weight_kg", 70.0)),
        parameters=MappingProxyType(params),
        ke0=_ke0(raw.get("ke0")),
        metabolite=metabolite,
        iiv=_iiv(raw.get("iiv")),
        validity=validity,
        refuse=_validity(raw.get("refuse")),
        source=raw["source"],
        notes=raw.get("notes", ""),
        version=version,
    )


def _pd_model(key: str, raw: Mapping[str, Any], version: str) -> PDModel:
    ke0 = _ke0(raw["ke0"])
    assert ke0 is not None
    effect = raw["effect"]
    return PDModel(
        id=key,
        name=raw["name"],
        research_model=bool(raw.get("research_model", False)),
        compound=raw["compound"],
        pk_model=raw["pk_model"],
        ke0=ke0,
        c50_ng_per_ml=to_internal(float(effect["c50"]["value"]), effect["c50"]["unit"]),
        hill=float(effect["hill"]["value"]),
        readout=effect["readout"],
        source=raw["source"],
        notes=raw.get("notes", ""),
        version=version,
    )


@cache
def catalogue() -> Catalogue:
    """Every model in ``models.toml`` (read once)."""
    raw = read_toml("models.toml", "ketamine_clinic.pk")
    version = raw["version"]
    pk: dict[str, PKModel] = {}
    pd: dict[str, PDModel] = {}
    for key, m in raw["models"].items():
        if m["kind"] == "pk":
            pk[key] = _pk_model(key, m, version)
        else:
            pd[key] = _pd_model(key, m, version)
    drugs = {
        k: Drug(k, d["name"], float(d["s_ketamine_fraction"]), d["source"])
        for k, d in raw["drugs"].items()
    }
    mw = {k: float(c["molecular_weight_g_per_mol"]) for k, c in raw["compounds"].items()}
    limits = _validity(raw["limits"])
    assert limits is not None
    return Catalogue(
        version, MappingProxyType(pk), MappingProxyType(pd), MappingProxyType(drugs),
        MappingProxyType(mw), MappingProxyType(dict(raw["references"])), limits,
        float(raw["paediatric"]["below_age_years"]),
    )


def model_ids() -> tuple[str, ...]:
    """All model ids, PK then PD, in file order."""
    cat = catalogue()
    return (*cat.pk, *cat.pd)


def get_model(model_id: str, *, field: str = "model") -> PKModel | PDModel:
    """The PK or PD model with this id; :class:`UsageError` naming ``field`` if unknown."""
    cat = catalogue()
    if model_id in cat.pk:
        return cat.pk[model_id]
    if model_id in cat.pd:
        return cat.pd[model_id]
    raise UsageError(field, f"unknown model {model_id!r}; known: {', '.join(model_ids())}")


def individual_parameters(
    model: PKModel, weight_kg: ArrayLike, eta: Mapping[str, ArrayLike] | None = None
) -> dict[str, FloatArray]:
    """Each parameter of ``model`` for a patient, in internal units (L, L/min, 1/min, min).

    Parameters
    ----------
    model : the published model.
    weight_kg : body weight [kg], scalar or one per virtual patient.
    eta : log-scale random effects per parameter name (individual = typical x exp(eta)).

    Returns
    -------
    Arrays broadcast to the shape of ``weight_kg`` (and of eta). A ``same_as`` parameter
    takes the other's individual value, random effect included (Simons 2022: VN1 = VK1).
    """
    w = np.asarray(weight_kg, dtype=float)
    eta = eta or {}
    if eta:
        unknown = set(eta) - set(model.parameters)
        if unknown:
            raise UsageError("omega2",
                             f"{model.id} has no parameter(s) {', '.join(sorted(unknown))}")
    table = _parameter_table(model)
    flat = w.reshape(1, -1)
    # One pass for every parameter: value x W (per kg), x (W / W_ref)^e, or x 1 (e = 0).
    scaled = table.value[:, None] * np.where(
        table.per_kg[:, None], flat, (flat / model.reference_weight_kg) ** table.exponent[:, None])
    # Rows of ``scaled`` already have the weights' shape when the weights are a vector.
    rows = scaled if w.ndim == 1 else [row.reshape(w.shape) for row in scaled]
    out: dict[str, FloatArray] = dict(zip(table.names, rows, strict=True))
    for name, e in eta.items():
        if name in out:  # a same_as parameter takes the other's value, its eta included
            out[name] = out[name] * np.exp(np.asarray(e, dtype=float))
    for name, same_as in table.aliases:
        out[name] = out[same_as]
    return out


@dataclass(frozen=True, slots=True)
class _ParameterTable:
    """A model's parameters converted once: names (``same_as`` ones apart), internal value,
    per-kg flag and allometric exponent (0: not weight-scaled)."""

    names: tuple[str, ...]
    value: FloatArray
    per_kg: NDArray[np.bool_]
    exponent: FloatArray
    aliases: tuple[tuple[str, str], ...]


_tables: dict[int, tuple[PKModel, _ParameterTable]] = {}


def _parameter_table(model: PKModel) -> _ParameterTable:
    """Unit conversion and scaling rules of ``model``'s parameters, worked out on first use
    (models are frozen; the table is kept with the model it was made from)."""
    hit = _tables.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    free = [p for p in model.parameters.values() if p.same_as is None]
    table = _ParameterTable(
        names=tuple(p.name for p in free),
        value=np.array([to_internal(p.value, p.unit) for p in free]),
        per_kg=np.array([is_per_kg(p.unit) for p in free], dtype=bool),
        exponent=np.array([0.0 if is_per_kg(p.unit) or p.weight_exponent is None
                           else float(p.weight_exponent) for p in free]),
        aliases=tuple((p.name, p.same_as) for p in model.parameters.values()
                      if p.same_as is not None),
    )
    _tables[id(model)] = (model, table)
    return table


@dataclass(frozen=True, slots=True)
class RateConstants:
    """Volumes [L], clearances [L/min] and micro-constants [1/min] of a mammillary model.

    For a two-compartment model V3, Q3, k13 and k31 are zero.
    """

    V1: FloatArray
    V2: FloatArray
    V3: FloatArray
    CL: FloatArray
    Q2: FloatArray
    Q3: FloatArray
    k10: FloatArray
    k12: FloatArray
    k13: FloatArray
    k21: FloatArray
    k31: FloatArray
    n_compartments: int


def rate_constants(p: Mapping[str, FloatArray], structure: str) -> RateConstants:
    """Derive the full set of volumes, clearances and micro-constants (the one place).

    Parameters
    ----------
    params : individual parameters in internal units (from :func:`individual_parameters`).
    structure : "clearances" (V1, V2[, V3], CL, Q2[, Q3]) or "micro" (V1, k10, k12,
        k21[, k13, k31]).

    Notes
    -----
    k10 = CL/V1, k12 = Q2/V1, k21 = Q2/V2 (and the same for compartment 3); conversely
    V2 = V1 k12/k21, CL = k10 V1, Q2 = k12 V1. Test vector: Domino at 70 kg gives V1 4.41,
    V2 10.56972, V3 178.2123 L; CL 1.93158, Q2 2.61072, Q3 2.6019 L/min (stanpumpR).
    """
    zero = np.zeros_like(p["V1"])
    if structure == "micro":
        V1 = p["V1"]
        k10, k12, k21 = p["k10"], p["k12"], p["k21"]
        k13, k31 = p.get("k13", zero), p.get("k31", zero)
        three = "k13" in p
        V2 = V1 * k12 / k21
        V3 = V1 * k13 / k31 if three else zero
        CL, Q2, Q3 = k10 * V1, k12 * V1, k13 * V1
    elif structure == "clearances":
        V1, V2, CL, Q2 = p["V1"], p["V2"], p["CL"], p["Q2"]
        three = "V3" in p
        V3, Q3 = (p["V3"], p["Q3"]) if three else (zero, zero)
        k10, k12, k21 = CL / V1, Q2 / V1, Q2 / V2
        k13 = Q3 / V1
        k31 = Q3 / V3 if three else zero
    else:
        raise UsageError("structure", f"unknown model structure {structure!r}")
    return RateConstants(V1, V2, V3, CL, Q2, Q3, k10, k12, k13, k21, k31, 3 if three else 2)
