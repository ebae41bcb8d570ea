"""Number formatting for the outcome pages: None shows as a dash, never as 0."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, places: int = 0) -> str:
    """A proportion (0-1) as a percentage."""
    if value is None:
        return "—"
    return f"{100 * float(value):.{int(places)}f}%"


@register.filter
def num(value: Any, places: int = 1) -> str:
    if value is None:
        return ""
    return f"{float(value):.{int(places)}f}"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    if not mapping:
        return None
    return mapping.get(key)
