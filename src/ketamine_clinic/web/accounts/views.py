from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.vendor import plotly_source


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(actor=Actor.from_request(self.request), action=AuditAction.AUTH_LOGIN)
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            audit_record(actor=Actor.from_request(request), action=AuditAction.AUTH_LOGOUT)
        return super().post(request, *args, **kwargs)


@require_GET
@login_required
def home(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "home.html", {"sites": request.user.sites.all()})


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def plotly_js(request: HttpRequest) -> HttpResponse:
    """Plotly's bundled JavaScript, uncompressed, until ``prepare_vendor_files`` has run
    (then the middleware serves it compressed at this same URL, see ``web/lib/vendor.py``).
    The URL carries the file's hash, so it may be cached for good."""
    response = HttpResponse(plotly_source().read_bytes(), content_type="text/javascript")
    response["Cache-Control"] = "max-age=31536000, public, immutable"
    return response
