"""Send a user whose password must change to the password page before anything else."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


class PasswordChangeRequired:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated
                and getattr(user, "must_change_password", False)
                and request.path not in (reverse("password_change"), reverse("logout"))
                and not request.path.startswith(("/static/", "/api/", "/fhir/"))):
            return redirect(f"{reverse('password_change')}?next={request.path}")
        return self.get_response(request)
