"""Small view decorators: who may call a view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability

View = Callable[..., HttpResponse]


def capability_required(capability: Capability) -> Callable[[View], View]:
    """Logged in, and the user's role has ``capability``; otherwise 403."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: AuthedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.can(capability):
                raise PermissionDenied(f"Your role may not {capability.label.lower()}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
