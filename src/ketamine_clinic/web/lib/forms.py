"""Showing a service's :class:`UsageError` on the form that caused it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketamine_clinic.errors import UsageError


def form_error(form: Any, exc: UsageError, aliases: Mapping[str, str] | None = None) -> None:
    """Attach the error to the form field it names (``aliases`` maps a service's field name
    to the form's), or to the whole form with the field named in the message."""
    field = (aliases or {}).get(exc.field, exc.field)
    if field in form.fields:
        form.add_error(field, exc.problem)
    else:
        form.add_error(None, str(exc))
