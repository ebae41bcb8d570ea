"""Template filters for protocol pages: values with units, sources with linked keys."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe

from ketamine_clinic.clinical.protocol import references, source_keys

register = template.Library()

SEVERITY_BADGE = {"exclude": "bad", "review": "warn", "condition": "", "note": ""}
DECISION_BADGE = {"ineligible": "bad", "needs-physician-review": "warn",
                  "eligible-with-conditions": "ok", "eligible": "ok"}


@register.filter
def sourcelinks(source: str) -> SafeString:
    """The source text, each reference key a link to its citation on the references page."""
    text = str(conditional_escape(source or ""))
    keys = [k for k in source_keys(source or "") if k in references()]
    if not keys:
        return mark_safe(text)  # escaped above
    url = reverse("protocol_references")
    pattern = re.compile(r"(?<![\w-])(" + "|".join(
        re.escape(k) for k in sorted(keys, key=len, reverse=True)) + r")(?![\w-])")

    def link(m: re.Match[str]) -> str:
        key = m.group(1)
        title = escape(references()[key].citation)
        return f'<a class="ref" href="{url}#{key}" title="{title}">{key}</a>'

    return mark_safe(pattern.sub(link, text))  # escaped; keys are [A-Za-z0-9-]


@register.filter
def severity_badge(severity: str) -> str:
    return SEVERITY_BADGE.get(str(severity), "")


@register.filter
def decision_badge(decision: Any) -> str:
    return DECISION_BADGE.get(str(decision), "")


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None
