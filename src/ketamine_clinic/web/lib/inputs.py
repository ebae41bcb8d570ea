"""Small input checks every area's services share, so that each is written once."""

from __future__ import annotations

from ketamine_clinic.errors import UsageError


def required_text(field: str, value: str | None) -> str:
    """``value`` without surrounding blanks; a :class:`UsageError` naming ``field`` when
    nothing is left."""
    text = (value or "").strip()
    if not text:
        raise UsageError(field, "is required")
    return text
