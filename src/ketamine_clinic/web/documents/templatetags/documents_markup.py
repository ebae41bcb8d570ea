from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from ketamine_clinic.web.documents import dates
from ketamine_clinic.web.documents.markup import render_inline, strip_citations

register = template.Library()


@register.filter
def cite(text: str, sources_url: str) -> SafeString:
    """A paragraph of content with its source keys as links to the sources page."""
    return render_inline(str(text), sources_url)


@register.filter
def nocite(text: str) -> str:
    """The text without its source keys (for summaries and lists)."""
    return strip_citations(str(text))


@register.filter
def pdate(value: Any) -> str:
    """A date on a patient document, in the clinic's locale ("Tuesday, March 4, 2025")."""
    return dates.patient_date(value) if value else ""


@register.filter
def pnumdate(value: Any) -> str:
    """A date in digits that says its order ("03/04/1985 (month/day/year)")."""
    return dates.patient_numeric_date(value) if value else ""


@register.filter
def ptime(value: Any) -> str:
    """A clock time on a patient document ("1:30 PM")."""
    return dates.patient_time(value) if value else ""
