from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ketamine_clinic.web.accounts.roles import Capability


def clinic(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    caps: set[str] = set()
    if user.is_authenticated:
        caps = {c.value for c in Capability if user.can(c)}  # type: ignore[union-attr]
    return {
        "clinic_name": settings.CLINIC_NAME,
        "caps": caps,
        "idle_logout_seconds": settings.SESSION_COOKIE_AGE,
    }
