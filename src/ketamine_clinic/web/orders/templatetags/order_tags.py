"""Display helpers for dose numbers and limit names (formatting only, no arithmetic)."""

from __future__ import annotations

from typing import Any

from django import template

from ketamine_clinic.web.orders.selectors import can_see_numbers

register = template.Library()

# How each limited quantity is named on screen and on paper, with its unit.
QUANTITY_LABELS = {
    "rate_mg_per_kg_per_h": "Rate (mg/kg/h)",
    "rate_mg_per_h": "Rate (mg/h)",
    "pump_rate_ml_per_h": "Pump rate (mL/h)",
    "titration_step_mg_per_h": "Titration step (mg/h)",
    "titration_step_mg_per_kg_per_h": "Titration step (mg/kg/h)",
    "titration_interval_min": "Time between increases (min)",
    "session_total_mg": "Session total (mg)",
    "session_total_mg_per_kg": "Session total (mg/kg)",
    "session_duration_h": "Session duration (h)",
    "series_total_mg": "Series total (mg)",
    "series_total_mg_per_kg": "Series total (mg/kg)",
    "bolus_mg": "Bolus (mg)",
    "bolus_mg_per_kg": "Bolus (mg/kg)",
    "concentration_mg_per_ml": "Concentration (mg/mL)",
    "pump_rate_equals_mg_per_h": "Wrong-unit check (mL/h vs mg/h)",
    "usual_rate_ratio": "Decimal-slip check (× usual rate)",
}


@register.filter
def num(value: Any, places: int = 3) -> str:
    """A number for people: at most ``places`` decimals, no trailing zeros."""
    if value is None or value == "":
        return "—"
    try:
        text = f"{float(value):.{int(places)}f}"
    except (TypeError, ValueError):
        return str(value)
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


@register.filter
def qlabel(quantity: str) -> str:
    return QUANTITY_LABELS.get(quantity, quantity.replace("_", " "))


@register.filter
def bounds(check: dict[str, Any]) -> str:
    lower, upper = check.get("lower"), check.get("upper")
    if lower is not None and upper is not None:
        return f"{num(lower)}–{num(upper)}"
    if upper is not None:
        return f"≤ {num(upper)}"
    return f"≥ {num(lower)}"


@register.filter
def get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def words(code: str) -> str:
    """A stored code for reading: ``racemic_ketamine`` → ``racemic ketamine``."""
    return str(code).replace("_", " ")


@register.filter
def numbers_visible(order: Any, user: Any) -> bool:
    """Whether ``user`` may see the order's rates and concentration (no order: yes). Until
    the independent double check, only the prescribers may (``selectors.can_see_numbers``)."""
    if order is None:
        return True

    return can_see_numbers(user, order)
