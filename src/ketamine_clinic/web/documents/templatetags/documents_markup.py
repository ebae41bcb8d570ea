from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

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
