"""Numbers and sources as a clinician reads them at the bedside.

Clinical precision: whole minutes and clock times, whole mmHg and beats, two decimals for
mg/kg/h, up to one decimal for mg/h and mL/h. A source is shown as a short tag
("[consensus guideline]", "[clinic policy]"); the full citation stays on the protocol page.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cache
from zoneinfo import ZoneInfo

from ketamine_clinic.clinical.protocol import references

VITAL_WORDS: dict[str, tuple[str, str]] = {
    "systolic_bp_mmhg": ("Systolic blood pressure", "mmHg"),
    "diastolic_bp_mmhg": ("Diastolic blood pressure", "mmHg"),
    "heart_rate_per_min": ("Heart rate", "/min"),
    "respiratory_rate_per_min": ("Respiratory rate", "/min"),
    "spo2_percent": ("SpO2", "%"),
    "etco2_mmhg": ("End-tidal CO2", "mmHg"),
    "temperature_c": ("Temperature", "°C"),
}


def num(value: float | Fraction | int, places: int = 0) -> str:
    """``value`` rounded to ``places`` decimals, without trailing zeros."""
    text = f"{float(value):.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def vital(name: str, value: float) -> str:
    """``"Systolic blood pressure 186 mmHg"``."""
    label, unit = VITAL_WORDS.get(name, (name.replace("_", " "), ""))
    places = 1 if name == "temperature_c" else 0
    sep = "" if unit in ("%", "/min") else " "
    return f"{label} {num(value, places)}{sep}{unit}"


def vital_value(name: str, value: float) -> str:
    """``"186 mmHg"``, ``"88%"``."""
    _, unit = VITAL_WORDS.get(name, ("", ""))
    places = 1 if name == "temperature_c" else 0
    sep = "" if unit in ("%", "/min") else " "
    return f"{num(value, places)}{sep}{unit}"


def rate(mg_per_h: Fraction, mg_per_kg_per_h: Fraction, ml_per_h: Fraction) -> str:
    """``"120 mg/h (1.71 mg/kg/h, 120 mL/h)"``."""
    return (f"{num(mg_per_h, 1)} mg/h ({num(mg_per_kg_per_h, 2)} mg/kg/h, "
            f"{num(ml_per_h, 1)} mL/h)")


def minutes(span: timedelta) -> str:
    """Whole minutes: ``"45 min"``."""
    return f"{round(span / timedelta(minutes=1))} min"


def clock(at: datetime, time_zone: str) -> str:
    """``"14:05"`` in the site's time zone."""
    return at.astimezone(ZoneInfo(time_zone)).strftime("%H:%M")


_KEY = re.compile(r"\b(S\d+(?:-[A-Za-z]+)?|clinic-page)\b")


@cache
def tag(source: str) -> str:
    """The short source tag for a source string: ``"[clinic policy]"``, ``"[S38 ED
    ketamine protocol]"`` → ``"[ED ketamine protocol]"``; ``""`` when none is named."""
    text = source.strip()
    if text.startswith("clinic policy"):
        return "[clinic policy]"
    if text.startswith("signed order"):
        return "[signed order]"
    refs = references()
    shorts: list[str] = []
    for key in _KEY.findall(text):
        ref = refs.get(key)
        short = (ref.short if ref is not None and ref.short else key)
        if short not in shorts:
            shorts.append(short)
    return f"[{', '.join(shorts[:2])}]" if shorts else ""


QUANTITY_WORDS: dict[str, tuple[str, str]] = {
    "rate_mg_per_kg_per_h": ("rate", "mg/kg/h"), "rate_mg_per_h": ("rate", "mg/h"),
    "titration_step_mg_per_h": ("step", "mg/h"),
    "titration_interval_min": ("time between changes", "min"),
    "session_total_mg": ("session total", "mg"),
    "session_total_mg_per_kg": ("session total", "mg/kg"),
    "series_total_mg": ("series total", "mg"), "series_total_mg_per_kg": ("series total", "mg/kg"),
    "session_duration_h": ("session", "h"), "concentration_mg_per_ml": ("bag", "mg/mL"),
    "bolus_mg_per_kg": ("bolus", "mg/kg"),
}


def limit(quantity: str, kind: str, lower: Fraction | float | None,
          upper: Fraction | float | None) -> str:
    """``"session total ≤ 400 mg (soft limit)"``."""
    label, unit = QUANTITY_WORDS.get(quantity, (quantity.replace("_", " "), ""))
    places = 2 if "per_kg" in quantity else 1
    parts = []
    if lower is not None:
        parts.append(f"≥ {num(lower, places)} {unit}".strip())
    if upper is not None:
        parts.append(f"≤ {num(upper, places)} {unit}".strip())
    return f"{label} {' and '.join(parts)} ({kind} limit)"
