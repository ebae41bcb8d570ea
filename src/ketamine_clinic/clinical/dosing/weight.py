"""The dosing weight: a recorded measurement, ideal and adjusted body weight, and the choice
between them by the protocol's weight rule (inputs and outputs in kg).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.dosing._data import frac, read_reference
from ketamine_clinic.clinical.dosing.rules import WeightBasis
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.clinical.units import (
    inch_from_cm,
    to_float,
)
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True, slots=True)
class _BodyWeightData:
    ibw_base_kg: dict[str, Fraction]
    ibw_base_height_in: Fraction
    ibw_kg_per_in: Fraction
    ibw_source: str
    adjusted_factor: Fraction
    adjusted_source: str


@cache
def _body_weight_data() -> _BodyWeightData:
    raw = read_reference("body_weight.toml")
    ibw, adj = raw["ideal_body_weight"], raw["adjusted_body_weight"]
    return _BodyWeightData(
        ibw_base_kg={sex: frac(kg, "body_weight.toml") for sex, kg in ibw["base_kg"].items()},
        ibw_base_height_in=frac(ibw["base_height_in"], "body_weight.toml"),
        ibw_kg_per_in=frac(ibw["kg_per_in_over_base"], "body_weight.toml"),
        ibw_source=str(ibw["source"]),
        adjusted_factor=frac(adj["factor_of_excess"], "body_weight.toml"),
        adjusted_source=str(adj["source"]),
    )


# --------------------------------------------------------------------------- dosing weight


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A recorded body weight.

    ``height_cm`` and ``sex`` (``"male"`` or ``"female"``, the two Devine formulas) are
    needed only when the protocol doses on ideal or adjusted weight.
    """

    weight_kg: Fraction
    measured_on: date
    height_cm: Fraction | None = None
    sex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_kg": to_float(self.weight_kg),
            "measured_on": self.measured_on.isoformat(),
            "height_cm": None if self.height_cm is None else to_float(self.height_cm),
            "sex": self.sex,
        }


@dataclass(frozen=True, slots=True)
class DosingWeight:
    """The weight doses are computed on, and how it was chosen.

    Attributes
    ----------
    weight_kg
        Dosing weight [kg].
    basis
        Which weight it is (actual, ideal or adjusted).
    actual_kg, ideal_kg, adjusted_kg
        The candidates [kg] (ideal/adjusted ``None`` when not computed).
    age_days
        Age of the measurement on the day of the check [days].
    sources
        References of the formulas used.
    """

    weight_kg: Fraction
    basis: WeightBasis
    actual_kg: Fraction
    ideal_kg: Fraction | None
    adjusted_kg: Fraction | None
    measurement: WeightMeasurement
    age_days: int
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_kg": to_float(self.weight_kg),
            "basis": self.basis.value,
            "actual_kg": to_float(self.actual_kg),
            "ideal_kg": None if self.ideal_kg is None else to_float(self.ideal_kg),
            "adjusted_kg": None if self.adjusted_kg is None else to_float(self.adjusted_kg),
            "measurement": self.measurement.to_dict(),
            "age_days": self.age_days,
            "sources": list(self.sources),
        }


def ideal_body_weight_kg(height_cm: Fraction, sex: str) -> Fraction:
    """Ideal body weight by Devine [kg].

    Parameters
    ----------
    height_cm
        Height [cm], within the plausibility range.
    sex
        ``"male"`` or ``"female"``.

    Notes
    -----
    IBW = base_kg(sex) + kg_per_in × (height_in − 60); below 60 in the line is extrapolated.
    Coefficients and source: ``reference/body_weight.toml`` (Devine 1974).

    Examples
    --------
    >>> from fractions import Fraction
    >>> round(float(ideal_body_weight_kg(Fraction(180), "male")), 1)
    75.0
    """
    data = _body_weight_data()
    check_plausible("height_cm", float(height_cm), field="height_cm")
    base = data.ibw_base_kg.get(sex)
    if base is None:
        raise UsageError("sex", f"the Devine formula needs one of {sorted(data.ibw_base_kg)}")
    ibw = base + data.ibw_kg_per_in * (inch_from_cm(height_cm) - data.ibw_base_height_in)
    if ibw <= 0:
        raise UsageError("height_cm", "too short for the Devine formula; dose on actual weight")
    return ibw


def adjusted_body_weight_kg(actual_kg: Fraction, ideal_kg: Fraction) -> Fraction:
    """Adjusted body weight [kg] = IBW + factor × (actual − IBW) (factor from body_weight.toml)."""
    return ideal_kg + _body_weight_data().adjusted_factor * (actual_kg - ideal_kg)


def dosing_weight(
    measurement: WeightMeasurement,
    *,
    basis: WeightBasis,
    max_age_days: int,
    on: date,
    obesity_threshold_ratio: Fraction | None = None,
) -> DosingWeight:
    """Choose the dosing weight and refuse an outdated or implausible measurement.

    Parameters
    ----------
    measurement
        The most recent weight (and height/sex when needed).
    basis
        Actual, ideal or adjusted, as the protocol says.
    max_age_days
        Oldest accepted measurement [days]; a weight exactly that old is accepted.
    on
        The day of the check (order writing, signing, the session).
    obesity_threshold_ratio
        If given, ideal/adjusted weight applies only when actual ≥ ratio × IBW.

    Notes
    -----
    The dosing weight never exceeds the actual weight: an ideal weight above the actual
    one (a thin patient) would overdose, so the actual weight is used then.

    Raises
    ------
    UsageError
        field ``weight`` (outdated, measured in the future, implausible), ``height_cm`` or
        ``sex`` (missing when the basis needs them).
    """
    actual = measurement.weight_kg
    check_plausible("weight_kg", float(actual), field="weight")
    age_days = (on - measurement.measured_on).days
    if age_days < 0:
        raise UsageError("weight", f"measured on {measurement.measured_on}, after {on}")
    if age_days > max_age_days:
        raise UsageError(
            "weight",
            f"measured {age_days} days ago ({measurement.measured_on}); the protocol "
            f"accepts a weight at most {max_age_days} days old: weigh the patient again",
        )
    if basis is WeightBasis.ACTUAL:
        return DosingWeight(actual, basis, actual, None, None, measurement, age_days)
    if measurement.height_cm is None:
        raise UsageError("height_cm", f"needed for {basis.value} body weight")
    if measurement.sex is None:
        raise UsageError("sex", f"needed for {basis.value} body weight")
    data = _body_weight_data()
    ideal = ideal_body_weight_kg(measurement.height_cm, measurement.sex)
    adjusted = adjusted_body_weight_kg(actual, ideal)
    sources = (data.ibw_source,) + (
        (data.adjusted_source,) if basis is WeightBasis.ADJUSTED else ()
    )
    obese = actual > ideal and (
        obesity_threshold_ratio is None or actual >= obesity_threshold_ratio * ideal
    )
    if not obese:
        return DosingWeight(
            actual, WeightBasis.ACTUAL, actual, ideal, adjusted, measurement, age_days, sources
        )
    chosen = ideal if basis is WeightBasis.IDEAL else adjusted
    return DosingWeight(chosen, basis, actual, ideal, adjusted, measurement, age_days, sources)
