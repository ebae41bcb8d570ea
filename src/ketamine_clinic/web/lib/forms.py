"""Form helpers: a service's :class:`UsageError` on the form that caused it, or as the page's
message after a form post; typed access to a choice field whose choices are set at run time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest

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
    if target is None:
        form.add_error(None, refusal_sentence(exc))
    else:
        form.add_error(target, exc.problem)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def refusal_sentence(exc: UsageError) -> str:
    """The error in words for a page: a clinical refusal's own sentences; otherwise the
    problem, after the name of its field in words when it has one ("payload.systolic_bp_mmhg"
    becomes "Systolic bp mmhg: ...").

    >>> refusal_sentence(UsageError("reason", "a reason is required"))
    'Reason: a reason is required.'
    >>> refusal_sentence(UsageError("", "the DEA number is missing"))
    'The DEA number is missing.'
    """
    if isinstance(exc, Refusal):
        return " ".join(_sentence(reason) for reason in exc.reasons)
    name = exc.field.rsplit(".", 1)[-1].replace("_", " ").strip()
    if name:
        problem = exc.problem.strip()
        closed = problem if problem.endswith((".", "!", "?")) else f"{problem}."
        return f"{name[0].upper()}{name[1:]}: {closed}"
    return _sentence(exc.problem)


def refusal_message(lead: str, exc: UsageError) -> str:
    """A page message for a refused post: what did not happen, then why."""
    return f"{_sentence(lead)} {refusal_sentence(exc)}".strip()


def post_and_report(request: HttpRequest, action: Callable[[], object], *, done: str,
                    refused: str) -> bool:
    """Run a form post's service call and leave its outcome as the page's message: ``done``
    when it went through, ``refused`` and the reason when the service refused it (nothing
    is recorded then). The caller redirects either way; returns whether it went through."""
    try:
        action()
    except UsageError as exc:
        messages.error(request, refusal_message(refused, exc))
        return False
    messages.success(request, done)
    return True


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
