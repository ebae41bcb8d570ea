from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.lib.areas import nav_items


def clinic(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    caps: set[str] = set()
    if user.is_authenticated:
        caps = {c.value for c in Capability if user.can(c)}


    nav = [
        (label, reverse(url_name)) for label, url_name, capability in nav_items()
        if user.is_authenticated and (capability is None or capability in caps)
    ]
    return {
        "clinic_name": settings.CLINIC_NAME,
        "nav": nav,
        "caps": caps,
        "idle_logout_seconds": settings.SESSION_COOKIE_AGE,
    }
