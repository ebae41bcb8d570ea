"""Units: the one place where dosing quantities are parsed and converted.

Internal unit system
--------------------
mass ``mg``, body weight ``kg``, height ``cm``, time ``h`` (intervals ``min``), volume
``mL``, concentration ``mg/mL``, rates ``mg/h``, ``mg/kg/h`` and pump ``mL/h``. The unit
of every value is in its name (``rate_mg_per_h``); see ``docs/nomenclature.md``.

Numbers are exact
-----------------
Every quantity in the dosing core is a :class:`fractions.Fraction`. Conversions are then
exact: ``mg/kg/h → mg/h → mL/h`` and back returns the very number that went in, and a
value equal to a limit's bound compares equal to it (no ``0.35000000000000003``). Floats
enter only through :func:`exact`, which reads a float as the shortest decimal that prints
as it (``0.35`` is 35/100, not the binary neighbour), because that is the number a person
or a TOML file wrote. Floats leave only through :func:`to_float`, for JSON and display.

Parsing human strings
---------------------
Strings are read with pint (a registry with exact fractions), after the number has been
split off and read exactly. A bare unit without a number (``"mg/h"``), a number without
a unit where a unit is needed, an unknown unit, a unit of the wrong dimension, zero,
negative and non-finite values are refused with :class:`UsageError` naming the field.

A rate may be given in any of its three forms wherever a rate is expected: ``mg/kg/h``,
``mg/h`` or pump ``mL/h`` (and units pint can convert to them, such as ``mcg/kg/min``).
The form entered is kept (:class:`Rate`), because the wrong-unit cross-check needs it;
converting between forms needs the dosing weight (mg/kg/h ↔ mg/h) and the bag's
concentration (mg/h ↔ mL/h).

Why one module (over 600 lines): the house rule is that conversions live in one place.
Parsing (pint), exact numbers and every conversion between rate, dose, bag and time forms
are one vocabulary; splitting it would make two places a conversion could be written.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from ketamine_clinic.errors import UsageError

if TYPE_CHECKING:
    import pint

__all__ = [
    "Bag",
    "Bolus",
    "BolusForm",
    "ExactInput",
    "Rate",
    "RateForm",
    "RateForms",
    "concentration_mg_per_ml",
    "dose_mg",
    "exact",
    "h_from_min",
    "inch_from_cm",
    "min_from_h",
    "parse_bag",
    "parse_bolus",
    "parse_concentration_mg_per_ml",
    "parse_duration_h",
    "parse_interval_min",
    "parse_mass_mg",
    "parse_rate",
    "parse_volume_ml",
    "parse_weight_kg",
    "positive",
    "pump_rate_ml_per_h_from_mg_per_h",
    "rate_forms",
    "rate_forms_from_mg_per_h",
    "rate_mg_per_h_from_mg_per_kg_per_h",
    "rate_mg_per_h_from_pump_ml_per_h",
    "rate_mg_per_kg_per_h_from_mg_per_h",
    "to_float",
    "volume_ml",
]

ExactInput = Fraction | int | float | Decimal | str


# --------------------------------------------------------------------------- numbers


def exact(value: ExactInput, *, field: str) -> Fraction:
    """``value`` as an exact fraction; :class:`UsageError` naming ``field`` if it is not a number.

    Floats are read as the shortest decimal that round-trips (``0.35`` → 35/100), which is
    what the person or the data file wrote.

    >>> exact(0.35, field="rate")
    Fraction(7, 20)
    >>> exact("0.1", field="rate")
    Fraction(1, 10)
    """
    if isinstance(value, bool):  # bool is an int subclass; True is not a dose
        raise UsageError(field, f"{value!r} is not a number")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(field, f"{value!r} is not a finite number")
        return Fraction(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UsageError(field, f"{value} is not a finite number")
        return Fraction(value)
    if isinstance(value, str):
        return _parse_number(value, field=field)
    raise UsageError(field, f"{value!r} is not a number")


def positive(value: ExactInput, *, field: str) -> Fraction:
    """:func:`exact`, and refuse zero or negative values."""
    number = exact(value, field=field)
    if number <= 0:
        raise UsageError(field, f"must be greater than zero (got {_show(number)})")
    return number


def to_float(value: Fraction) -> float:
    """The nearest float, for JSON and display only (never fed back into the core)."""
    return float(value)


def _show(value: Fraction) -> str:
    return f"{float(value):g}"


# A plain decimal number, optionally signed, optionally with an exponent. Written out so
# that "nan", "inf", "0x10", "1_000" and "½" are refused rather than read.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(rf"^\s*({_NUMBER})\s*(.*?)\s*$")
_DECIMAL_COMMA_RE = re.compile(r"^\s*[-+]?\d+,\d")


def _parse_number(text: str, *, field: str) -> Fraction:
    number, rest = _split_number(text, field=field)
    if rest:
        raise UsageError(field, f"{text!r} is not a plain number")
    return number


def _split_number(text: str, *, field: str) -> tuple[Fraction, str]:
    if _DECIMAL_COMMA_RE.match(text):
        raise UsageError(field, f"{text!r}: use a decimal point, not a comma")
    match = _NUMBER_RE.match(text)
    if match is None:
        raise UsageError(field, f"{text!r} does not start with a number")
    number = Fraction(match.group(1))
    if abs(number) > MAX_MAGNITUDE:
        raise UsageError(field, f"{text!r} is too large a number")
    return number, match.group(2)


# The largest magnitude a parsed number may have: 2**53, beyond which floats (used for
# display and PK) no longer hold whole numbers exactly. Not a clinical limit (those are in
# the protocols): "1e999 mg/h" is refused as a number before any limit is looked at.
MAX_MAGNITUDE = 2**53


# --------------------------------------------------------------------------- pint edge


# Libraries pint imports at its own import when they are installed, only to support array
# and uncertain quantities and locale formatting; every quantity here is one exact Fraction.
# numpy and scipy alone are half of pint's import time (about 0.1 s of a ``dose`` call).
_PINT_OPTIONAL = ("numpy", "scipy", "babel", "uncertainties", "dask")


def _import_pint() -> None:
    """Import pint without the optional libraries it does not need here.

    Only when this is the process's one thread and the libraries are not loaded yet (a
    command line call): hiding a module for the length of an import would make another
    thread's import of it fail. Otherwise pint is imported as it is, with them.
    """
    import sys
    import threading

    if "pint" in sys.modules or threading.active_count() > 1:
        import pint

        return
    hidden = [m for m in _PINT_OPTIONAL if m not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    try:
        import pint  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


@cache
def _registry() -> pint.UnitRegistry[Any]:
    # pint is imported here, not at the top: it takes a fifth of a second, and screening,
    # protocols and the web pages use this module without parsing any unit text.
    _import_pint()
    import pint  # loaded now

    # Fractions, so that conversion factors (1 L = 1000 mL, 1 lb = 0.45359237 kg) are exact.
    # pint's own cache of its parsed definitions (the user's cache folder, keyed by the
    # definitions' content) cuts building the registry from about 0.3 s to 0.05 s; if the
    # cache cannot be read or written, the registry is built from the definitions instead.
    try:
        return pint.UnitRegistry(non_int_type=Fraction, cache_folder=":auto:")
    except Exception:  # an unwritable or damaged cache: same registry, built without it
        return pint.UnitRegistry(non_int_type=Fraction)


@cache
def _factor(from_unit: Any, to_unit: str) -> Fraction:
    """The exact factor that turns a number in ``from_unit`` (text or pint units) into
    ``to_unit``; raises pint's DimensionalityError if they do not convert."""
    ureg = _registry()
    magnitude = ureg.Quantity(Fraction(1), from_unit).to(to_unit).magnitude
    return Fraction(magnitude)


@cache
def _units(unit_text: str) -> Any:
    """pint's units for ``unit_text``; raises whatever pint raises for nonsense."""
    return _registry().parse_units(unit_text)


def _quantity(
    text: str,
    *,
    field: str,
    unit: str,
    what: str,
    bare_number_unit: str | None = None,
) -> Fraction:
    """Parse ``"<number> <unit>"`` and convert it to ``unit``, exactly; must be > 0.

    ``what`` names the expected kind of quantity in messages ("a volume"). A bare number is
    read in ``bare_number_unit`` when one is given (options such as ``--weight-kg``).
    """
    if not isinstance(text, str):
        raise UsageError(field, f"{text!r} is not text")
    number, unit_text = _split_number(text, field=field)
    if not unit_text:
        if bare_number_unit is None:
            raise UsageError(field, f"{text!r} has no unit; give {what} such as '{unit}'")
        unit_text = bare_number_unit
    units = _parse_units(unit_text, field=field)
    from pint import DimensionalityError  # loaded by _parse_units already

    try:
        factor = _factor(units, unit)
    except DimensionalityError:
        raise UsageError(
            field, f"{text!r} is not {what}: {unit_text!r} cannot be converted to {unit}"
        ) from None
    value = number * factor
    if value <= 0:
        raise UsageError(field, f"{text!r}: must be greater than zero")
    return value


def _parse_units(unit_text: str, *, field: str) -> Any:
    try:
        return _units(unit_text)
    except Exception:  # pint raises many types for nonsense (undefined, syntax, tokenise)
        raise UsageError(field, f"unknown unit {unit_text!r}") from None


# --------------------------------------------------------------------------- rates


class RateForm(enum.Enum):
    """The three forms of an infusion rate, by their internal unit."""

    MG_PER_KG_PER_H = "mg/kg/h"
    MG_PER_H = "mg/h"
    ML_PER_H = "mL/h"

    @property
    def quantity_name(self) -> str:
        return _FORM_NAMES[self]


_FORM_NAMES = {
    RateForm.MG_PER_KG_PER_H: "rate_mg_per_kg_per_h",
    RateForm.MG_PER_H: "rate_mg_per_h",
    RateForm.ML_PER_H: "pump_rate_ml_per_h",
}


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate as entered: its value in the internal unit of its form, and the text typed.

    Attributes
    ----------
    value
        In ``form``'s unit [mg/kg/h, mg/h or mL/h]; > 0.
    form
        Which of the three forms was entered.
    text
        The string as typed (empty when built from a number), kept for the record.
    """

    value: Fraction
    form: RateForm
    text: str = ""

    @classmethod
    def of(cls, value: ExactInput, form: RateForm, *, field: str = "rate") -> Rate:
        """A rate from a number already in ``form``'s unit (> 0)."""
        return cls(positive(value, field=field), form)

    def to_dict(self) -> dict[str, Any]:
        return {"value": to_float(self.value), "unit": self.form.value, "text": self.text}


def _shape(units: Any) -> tuple[tuple[str, int], ...]:
    """The units as sorted (dimension name, power) pairs, e.g. mg/kg/h →
    (("mass", -1), ("mass", 1), ("time", -1)).

    mg/kg/h has the dimension 1/time, like "/h", so the dimension alone cannot tell a
    weight-based rate: it must be a mass over a (body) mass over a time.
    """
    ureg = _registry()
    names = _dimension_names()
    return tuple(
        sorted(
            (names.get(ureg.get_dimensionality(name), "other"), int(power))
            for name, power in units._units.items()
        )
    )


@cache
def _dimension_names() -> dict[Any, str]:
    ureg = _registry()
    return {ureg.get_dimensionality(f"[{name}]"): name for name in ("mass", "time", "volume")}


_RATE_SHAPES: dict[tuple[tuple[str, int], ...], RateForm] = {
    tuple(sorted([("mass", 1), ("mass", -1), ("time", -1)])): RateForm.MG_PER_KG_PER_H,
    tuple(sorted([("mass", 1), ("time", -1)])): RateForm.MG_PER_H,
    tuple(sorted([("volume", 1), ("time", -1)])): RateForm.ML_PER_H,
}


def parse_rate(text: str, *, field: str = "rate") -> Rate:
    """Read an infusion rate in any of its three forms.

    Parameters
    ----------
    text
        ``"0.5 mg/kg/h"``, ``"60 mg/h"``, ``"25 mL/h"``, or any unit pint converts to one
        of them (``"8 mcg/kg/min"``, ``"1 g/h"``, ``"60 mg per hour"``).
    field
        Named in the error.

    Returns
    -------
    Rate
        Value converted to the form's internal unit [mg/kg/h, mg/h or mL/h].
    """
    value, form = _parse_by_shape(text, field=field, shapes=_RATE_SHAPES, kind="a rate")
    return Rate(value, form, text.strip())


FormT = TypeVar("FormT", bound=enum.Enum)


def _parse_by_shape(
    text: str, *, field: str, shapes: dict[tuple[tuple[str, int], ...], FormT], kind: str
) -> tuple[Fraction, FormT]:
    """Read ``"<number> <unit>"`` whose unit has one of ``shapes``; value in that form's unit."""
    if not isinstance(text, str):
        raise UsageError(field, f"{text!r} is not text")
    number, unit_text = _split_number(text, field=field)
    choices = " or ".join(f.value for f in shapes.values())
    if not unit_text:
        raise UsageError(field, f"{text!r} has no unit; write {kind} in {choices}")
    units = _parse_units(unit_text, field=field)
    form = shapes.get(_shape(units))
    if form is None:
        raise UsageError(field, f"{unit_text!r} is not a unit for {kind}; use {choices}")
    value = number * _factor(units, form.value)
    if value <= 0:
        raise UsageError(field, f"{text!r}: {kind} must be greater than zero")
    return value, form


# --------------------------------------------------------------------------- other quantities


def kg_from_lb(weight_lb: ExactInput) -> Fraction:
    """A weight in pounds as kilograms, exactly (1 lb = 0.45359237 kg, pint's definition)."""
    return exact(weight_lb, field="weight_lb") * _factor("lb", "kg")


def parse_weight_kg(text: str, *, field: str = "weight_kg") -> Fraction:
    """Body weight [kg] from ``"72.5"`` (kg), ``"72.5 kg"`` or ``"160 lb"``; > 0."""
    return _quantity(text, field=field, unit="kg", what="a weight", bare_number_unit="kg")


def parse_mass_mg(text: str, *, field: str = "dose_mg") -> Fraction:
    """Drug amount [mg] from ``"500 mg"``, ``"0.5 g"``, ``"500000 mcg"``; a unit is required."""
    return _quantity(text, field=field, unit="mg", what="an amount of drug")


def parse_volume_ml(text: str, *, field: str = "volume_ml") -> Fraction:
    """Volume [mL] from ``"500 mL"``, ``"0.5 L"``; a unit is required."""
    return _quantity(text, field=field, unit="mL", what="a volume")


def parse_concentration_mg_per_ml(text: str, *, field: str = "concentration") -> Fraction:
    """Concentration [mg/mL] from ``"1 mg/mL"``, ``"1000 mcg/mL"``, ``"1 g/L"``."""
    return _quantity(text, field=field, unit="mg/mL", what="a concentration")


def parse_duration_h(text: str, *, field: str = "duration") -> Fraction:
    """Duration [h] from ``"4 h"``, ``"240 min"``; a bare number is hours."""
    return _quantity(text, field=field, unit="h", what="a duration", bare_number_unit="h")


def parse_interval_min(text: str, *, field: str = "interval") -> Fraction:
    """Interval [min] from ``"15 min"``, ``"0.5 h"``; a bare number is minutes."""
    return _quantity(text, field=field, unit="min", what="a duration", bare_number_unit="min")


class BolusForm(enum.Enum):
    """A bolus is given either as an amount or per kg of dosing weight."""

    MG = "mg"
    MG_PER_KG = "mg/kg"


@dataclass(frozen=True, slots=True)
class Bolus:
    """A bolus as entered: value in its form's unit [mg or mg/kg], > 0."""

    value: Fraction
    form: BolusForm
    text: str = ""

    def dose_mg(self, weight_kg: Fraction) -> Fraction:
        """The bolus [mg] for a dosing weight [kg]."""
        return self.value * weight_kg if self.form is BolusForm.MG_PER_KG else self.value

    def to_dict(self) -> dict[str, Any]:
        return {"value": to_float(self.value), "unit": self.form.value, "text": self.text}


_BOLUS_SHAPES: dict[tuple[tuple[str, int], ...], BolusForm] = {
    (("mass", 1),): BolusForm.MG,
    tuple(sorted([("mass", 1), ("mass", -1)])): BolusForm.MG_PER_KG,
}


def parse_bolus(text: str, *, field: str = "bolus") -> Bolus:
    """Read a bolus, ``"0.35 mg/kg"`` or ``"20 mg"`` (any mass, or mass per body mass)."""
    value, form = _parse_by_shape(text, field=field, shapes=_BOLUS_SHAPES, kind="a bolus")
    return Bolus(value, form, text.strip())


@dataclass(frozen=True, slots=True)
class Bag:
    """A prepared infusion bag: drug amount in a final volume.

    Attributes
    ----------
    drug_mg
        Ketamine in the bag [mg].
    volume_ml
        Final volume of the bag [mL] (drug plus diluent, as the label states it).
    text
        The string as typed, if it came from one.
    """

    drug_mg: Fraction
    volume_ml: Fraction
    text: str = ""

    @property
    def concentration_mg_per_ml(self) -> Fraction:
        return concentration_mg_per_ml(self.drug_mg, self.volume_ml)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drug_mg": to_float(self.drug_mg),
            "volume_ml": to_float(self.volume_ml),
            "concentration_mg_per_ml": to_float(self.concentration_mg_per_ml),
            "text": self.text,
        }


# "<amount> in <volume>". Split before pint sees it: to pint, "in" is the inch.
_BAG_RE = re.compile(r"^\s*(.+?)\s+in\s+(.+?)\s*$", re.IGNORECASE)


def parse_bag(text: str, *, field: str = "bag") -> Bag:
    """Read a bag preparation, ``"500 mg in 500 mL"`` (also ``"0.5 g in 0.25 L"``).

    The volume is the bag's final volume [mL]; the concentration is drug_mg / volume_ml.

    >>> parse_bag("500 mg in 250 mL").concentration_mg_per_ml
    Fraction(2, 1)
    """
    if not isinstance(text, str):
        raise UsageError(field, f"{text!r} is not text")
    match = _BAG_RE.match(text)
    if match is None:
        raise UsageError(
            field, f"{text!r}: write the bag as '<amount> in <volume>', e.g. '500 mg in 500 mL'"
        )
    drug_mg = parse_mass_mg(match.group(1), field=field)
    volume = parse_volume_ml(match.group(2), field=field)
    return Bag(drug_mg, volume, text.strip())


# --------------------------------------------------------------------------- conversions
# All exact; each pair is a pair of inverses (tests/clinical/test_units.py proves it).


def rate_mg_per_h_from_mg_per_kg_per_h(
    rate_mg_per_kg_per_h: Fraction, weight_kg: Fraction
) -> Fraction:
    """Rate [mg/h] = rate [mg/kg/h] × dosing weight [kg]."""
    return rate_mg_per_kg_per_h * weight_kg


def rate_mg_per_kg_per_h_from_mg_per_h(rate_mg_per_h: Fraction, weight_kg: Fraction) -> Fraction:
    """Rate [mg/kg/h] = rate [mg/h] ÷ dosing weight [kg] (weight > 0)."""
    return rate_mg_per_h / weight_kg


def pump_rate_ml_per_h_from_mg_per_h(
    rate_mg_per_h: Fraction, concentration_mg_per_ml: Fraction
) -> Fraction:
    """Pump rate [mL/h] = rate [mg/h] ÷ concentration [mg/mL] (concentration > 0)."""
    return rate_mg_per_h / concentration_mg_per_ml


def rate_mg_per_h_from_pump_ml_per_h(
    pump_rate_ml_per_h: Fraction, concentration_mg_per_ml: Fraction
) -> Fraction:
    """Rate [mg/h] = pump rate [mL/h] × concentration [mg/mL]."""
    return pump_rate_ml_per_h * concentration_mg_per_ml


def concentration_mg_per_ml(drug_mg: Fraction, volume_ml: Fraction) -> Fraction:
    """Concentration [mg/mL] = drug [mg] ÷ final volume [mL] (volume > 0)."""
    return drug_mg / volume_ml


def dose_mg(rate_mg_per_h: Fraction, duration_h: Fraction) -> Fraction:
    """Drug given [mg] = rate [mg/h] × time [h]."""
    return rate_mg_per_h * duration_h


def amount_mg(volume_ml: Fraction, concentration_mg_per_ml: Fraction) -> Fraction:
    """Drug in a volume [mg] = volume [mL] × concentration [mg/mL]."""
    return volume_ml * concentration_mg_per_ml


def volume_ml(amount_mg: Fraction, concentration_mg_per_ml: Fraction) -> Fraction:
    """Volume holding ``amount_mg`` [mL] = amount [mg] ÷ concentration [mg/mL]."""
    return amount_mg / concentration_mg_per_ml


def h_from_min(t_min: Fraction) -> Fraction:
    """Minutes to hours."""
    return t_min * _factor("min", "h")


def min_from_h(t_h: Fraction) -> Fraction:
    """Hours to minutes."""
    return t_h * _factor("h", "min")


_MICROSECONDS_PER_HOUR = 3_600_000_000  # timedeltas count whole microseconds


def h_from_timedelta(duration: timedelta) -> Fraction:
    """A duration in hours [h], exactly."""
    return Fraction(duration // timedelta(microseconds=1), _MICROSECONDS_PER_HOUR)


def timedelta_from_h(t_h: Fraction) -> timedelta:
    """Hours as a timedelta, rounded down to the microsecond (so a bound computed with it
    is reached at, not after, the time returned)."""
    micros = t_h * _MICROSECONDS_PER_HOUR
    return timedelta(microseconds=micros.numerator // micros.denominator)


def inch_from_cm(height_cm: Fraction) -> Fraction:
    """Centimetres to inches (exact: 1 in = 2.54 cm), for body-weight formulas in inches."""
    return height_cm * _factor("cm", "inch")


@dataclass(frozen=True, slots=True)
class RateForms:
    """One rate in all three forms at once.

    Attributes
    ----------
    rate_mg_per_kg_per_h
        [mg/kg/h] of dosing weight.
    rate_mg_per_h
        [mg/h].
    pump_rate_ml_per_h
        [mL/h] at the bag's concentration.
    """

    rate_mg_per_kg_per_h: Fraction
    rate_mg_per_h: Fraction
    pump_rate_ml_per_h: Fraction

    def value_in(self, form: RateForm) -> Fraction:
        if form is RateForm.MG_PER_KG_PER_H:
            return self.rate_mg_per_kg_per_h
        if form is RateForm.MG_PER_H:
            return self.rate_mg_per_h
        return self.pump_rate_ml_per_h

    def to_dict(self) -> dict[str, float]:
        return {
            "rate_mg_per_kg_per_h": to_float(self.rate_mg_per_kg_per_h),
            "rate_mg_per_h": to_float(self.rate_mg_per_h),
            "pump_rate_ml_per_h": to_float(self.pump_rate_ml_per_h),
        }


def rate_forms(rate: Rate, *, weight_kg: Fraction, concentration_mg_per_ml: Fraction) -> RateForms:
    """``rate`` in all three forms, whichever form it was entered in.

    Parameters
    ----------
    rate
        As entered (any form).
    weight_kg
        Dosing weight [kg], > 0.
    concentration_mg_per_ml
        The bag's concentration [mg/mL], > 0.
    """
    if rate.form is RateForm.MG_PER_KG_PER_H:
        mg_per_h = rate_mg_per_h_from_mg_per_kg_per_h(rate.value, weight_kg)
    elif rate.form is RateForm.MG_PER_H:
        mg_per_h = rate.value
    else:
        mg_per_h = rate_mg_per_h_from_pump_ml_per_h(rate.value, concentration_mg_per_ml)
    return rate_forms_from_mg_per_h(
        mg_per_h, weight_kg=weight_kg, concentration_mg_per_ml=concentration_mg_per_ml
    )


def rate_forms_from_mg_per_h(
    rate_mg_per_h: Fraction, *, weight_kg: Fraction, concentration_mg_per_ml: Fraction
) -> RateForms:
    """All three forms of a rate given in [mg/h]."""
    return RateForms(
        rate_mg_per_kg_per_h=rate_mg_per_kg_per_h_from_mg_per_h(rate_mg_per_h, weight_kg),
        rate_mg_per_h=rate_mg_per_h,
        pump_rate_ml_per_h=pump_rate_ml_per_h_from_mg_per_h(rate_mg_per_h, concentration_mg_per_ml),
    )
