"""Form helpers: a service's :class:`UsageError` on the form that caused it; typed access
to a choice field whose choices are set at run time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from ketamine_clinic.errors import Refusal, UsageError


def form_error(form: Any, exc: UsageError, aliases: Mapping[str, str] | None = None) -> None:
    """Attach the error to the form field it names (``aliases`` maps a service's field name
    to the form's), or to the whole form. Pages show the problem in words, never the
    internal field name; a clinical refusal shows each of its sentences."""
    field = (aliases or {}).get(exc.field, exc.field)
    target = field if field in form.fields else None
    if isinstance(exc, Refusal):
        for sentence in exc.reasons:
            form.add_error(target, sentence)
        return
    if target is None and exc.field:
        # In words: "payload.systolic_bp_mmhg" -> "Systolic bp mmhg: ..."
        name = exc.field.rsplit(".", 1)[-1].replace("_", " ").strip().capitalize()
        form.add_error(None, f"{name}: {exc.problem}" if name else exc.problem)
    else:
        form.add_error(target, exc.problem)


def choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """``form.fields[name]`` as the choice field it is (its choices come from the database
    or the protocol, so they are set in ``__init__``)."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, "
                        "not a choice field")
    return field


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """``form.fields[name]`` as the model choice field it is (its queryset is set in
    ``__init__``, from the user's sites or the versions on offer)."""
    field = form.fields[name]
    if not isinstance(field, forms.ModelChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, "
                        "not a model choice field")
    return field
