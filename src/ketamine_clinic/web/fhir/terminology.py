"""The FHIR API's terminology, read from ``reference/fhir.toml``.

Every code system URI, code, display, UCUM unit and profile a resource carries comes from
here: the mapping code names concepts (``"heart_rate"``, ``"kg"``), never codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.codes import SYSTEM_URIS
from ketamine_clinic.reference import read_toml


def data() -> Mapping[str, Any]:
    return read_toml("fhir.toml")


def system(name: str) -> str:
    """The URI of a code system named in ``[systems]`` (or a registry system key)."""
    systems = data()["systems"]
    if name in systems:
        return str(systems[name])
    return SYSTEM_URIS[name]


def coding(entry: dict[str, Any]) -> dict[str, Any]:
    """``{system, code, display}`` from a TOML entry whose ``system`` is a name."""
    out = {"system": system(entry["system"]), "code": str(entry["code"])}
    if entry.get("display"):
        out["display"] = entry["display"]
    return out


def concept(entry: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": [coding(entry)]}
    if text:
        cc["text"] = text
    return cc


def section(name: str) -> dict[str, Any]:
    return dict(data()[name])


def profile(name: str) -> str:
    """A canonical profile URL: US Core profiles by their short name, others as written."""
    if name.startswith("http"):
        return name
    return str(data()["fhir"]["us_core"]) + name


def unit(name: str) -> dict[str, str]:
    return dict(data()["units"][name])


def quantity(value: Fraction | Decimal | float | int, unit_name: str,
             places: int | None = None) -> dict[str, Any]:
    """A UCUM quantity; ``places`` rounds (half-even) a derived value for output."""
    u = unit(unit_name)
    return {"value": number(value, places), "unit": u["display"], "system": system("ucum"),
            "code": u["code"]}


def number(value: Fraction | Decimal | float | int, places: int | None = None) -> Decimal:
    """A FHIR decimal: exact values (Fractions) rounded to ``places`` for output."""
    if isinstance(value, Fraction):
        dec = Decimal(value.numerator) / Decimal(value.denominator)
    elif isinstance(value, float):
        dec = Decimal(repr(value))
    else:
        dec = Decimal(value)
    if places is not None:
        dec = dec.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    dec = dec.normalize()
    if dec == dec.to_integral_value():
        dec = dec.quantize(Decimal(1))
    return dec


def precision(name: str) -> int:
    return int(data()["precision"][name])


def unit_key(unit_text: str) -> str | None:
    """The ``[units]`` key of a unit as charted (``"mg"``, ``"mcg"``, ``"mL"``), if known."""
    key = unit_text.strip().lower().replace("/", "_per_")
    return key if key in data()["units"] else None


def route(route_text: str) -> dict[str, Any]:
    """A route CodeableConcept: SNOMED CT where the route is known, text always."""
    entry = data()["route"].get(route_text.strip().lower())
    if entry is None:
        return {"text": route_text}
    return {"coding": [{"system": system("snomed"), "code": entry["snomed"],
                        "display": entry["display"]}], "text": route_text}


def drug(name: str, *, strength_mg_per_ml: Decimal | None = None) -> dict[str, Any]:
    """A medication CodeableConcept: RxNorm where the fact sheet confirms a code, always
    with text; the clinic's local drug code otherwise."""
    key = name.strip().lower()
    entry = data()["drug"].get(key)
    if entry is None:
        return {"coding": [{"system": system("local_drug"), "code": key, "display": name}],
                "text": name}
    codings = []
    text = entry["display"]
    if strength_mg_per_ml is not None and "rxnorm_by_strength" in entry:
        strength = f"{number(strength_mg_per_ml)}"
        text = entry["product_display"].format(strength=strength)
        code = entry["rxnorm_by_strength"].get(strength)
        if code:
            codings.append({"system": system("rxnorm"), "code": code, "display": text})
    elif entry.get("rxnorm"):
        codings.append({"system": system("rxnorm"), "code": entry["rxnorm"],
                        "display": entry["display"]})
    if not codings:
        codings.append({"system": system("local_drug"), "code": key, "display": text})
    return {"coding": codings, "text": text}


def code_systems_used() -> dict[str, str]:
    """Every code system the API may send, by name (for the docs and the tests)."""
    return {k: v for k, v in data()["systems"].items() if not v.endswith(":")}
