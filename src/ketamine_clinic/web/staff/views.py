"""Staff administration pages (clinic administrators) and everyone's password page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.models import ApiToken, User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report, refusal_message
from ketamine_clinic.web.staff import services
from ketamine_clinic.web.staff.forms import DeactivateForm, DeviceForm, StaffForm, TokenForm


def _actor(request: AuthedHttpRequest) -> Actor:
    return Actor.from_request(request)


def _member(request: AuthedHttpRequest, user_id: int) -> User:
    user = services.staff_visible_to(request.user).filter(pk=user_id).first()
    if user is None:
        raise Http404("No such staff account at your sites")
    return user


@capability_required(Capability.MANAGE_STAFF)
def staff_list(request: AuthedHttpRequest) -> HttpResponse:
    users = list(services.staff_visible_to(request.user))
    rows = [{"u": u, "locked": services.login_locked(u)} for u in users
            if not hasattr(u, "device")]
    devices = [u for u in users if hasattr(u, "device")]
    return render(request, "staff/list.html", {
        "rows": rows, "devices": devices,
        "device_form": DeviceForm(sites=request.user.sites.all())})


@capability_required(Capability.MANAGE_STAFF)
def staff_create(request: AuthedHttpRequest) -> HttpResponse:
    sites = request.user.sites.all()
    form = StaffForm(request.POST or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            user, password = services.staff_create(
                actor=_actor(request), username=d["username"], first_name=d["first_name"],
                last_name=d["last_name"], role=d["role"], sites=form.chosen_sites(),
                title=d["title"], email=d["email"])
        except UsageError as exc:
            form_error(form, exc)
        else:
            return render(request, "staff/password_once.html", {"member": user,
                                                                "password": password})
    return render(request, "staff/form.html", {"form": form, "creating": True})


def _detail(request: AuthedHttpRequest, user: User, form: StaffForm | None = None,
            status: int = 200, **extra: Any) -> HttpResponse:
    sites = request.user.sites.all()
    form = form or StaffForm(sites=sites, editing=True, initial={
        "first_name": user.first_name, "last_name": user.last_name, "title": user.title,
        "role": user.role, "sites": [str(pk) for pk in user.sites.values_list("pk", flat=True)]})
    return render(request, "staff/detail.html", {
        "member": user, "form": form, "locked": services.login_locked(user),
        "is_device": hasattr(user, "device"), "deactivate": DeactivateForm(),
        "tokens": ApiToken.objects.filter(user=user).order_by("-created_at"),
        "token_form": TokenForm(), **extra}, status=status)


@capability_required(Capability.MANAGE_STAFF)
def staff_detail(request: AuthedHttpRequest, user_id: int) -> HttpResponse:
    user = _member(request, user_id)
    if request.method == "POST":
        form = StaffForm(request.POST, sites=request.user.sites.all(), editing=True)
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.staff_update(actor=_actor(request), user=user, role=d["role"],
                                      sites=form.chosen_sites(), title=d["title"],
                                      first_name=d["first_name"], last_name=d["last_name"])
            except UsageError as exc:
                form_error(form, exc)
            else:
                messages.success(request, "Account saved.")
                return redirect("staff_detail", user_id=user.pk)
        return _detail(request, user, form, status=400)
    return _detail(request, user)


@require_POST
@capability_required(Capability.MANAGE_STAFF)
def staff_action(request: AuthedHttpRequest, user_id: int, action: str) -> HttpResponse:
    user = _member(request, user_id)
    actor = _actor(request)
    try:
        if action == "unlock":
            cleared = services.staff_unlock(actor=actor, user=user)
            messages.success(request, f"Log-in unlocked for {user.username} "
                                      f"({cleared} failed-attempt record(s) cleared).")
        elif action == "deactivate":
            form = DeactivateForm(request.POST)
            reason = form.data.get("reason", "")
            services.staff_set_active(actor=actor, user=user, active=False, reason=reason)
            messages.success(request, f"{user.username} deactivated; the records stay.")
        elif action == "reactivate":
            services.staff_set_active(actor=actor, user=user, active=True)
            messages.success(request, f"{user.username} can log in again.")
        elif action == "force-password":
            services.staff_force_password_change(actor=actor, user=user)
            messages.success(request, f"{user.username} must choose a new password at the "
                                      "next page.")
        elif action == "temporary-password":
            password = services.staff_force_password_change(actor=actor, user=user,
                                                            temporary=True)
            return render(request, "staff/password_once.html", {"member": user,
                                                                "password": password})
        elif action == "token":
            return _issue_token(request, user)
        else:
            raise Http404("No such action")
    except UsageError as exc:
        messages.error(request, refusal_message("Nothing was changed.", exc))
    return redirect("staff_detail", user_id=user.pk)


def _issue_token(request: AuthedHttpRequest, user: User) -> HttpResponse:
    if not hasattr(user, "device"):
        raise UsageError("user", "tokens here are for monitor devices; staff create their "
                                 "own API tokens with the command line")
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _detail(request, user, token_form=form, status=400)
    token, raw = services.token_issue(actor=_actor(request), device=user.device,
                                      label=form.cleaned_data["label"],
                                      expires_days=form.cleaned_data["expires_days"])
    return render(request, "staff/token_once.html", {"member": user, "token": token,
                                                     "raw": raw})


@require_POST
@capability_required(Capability.MANAGE_STAFF)
def token_revoke(request: AuthedHttpRequest, user_id: int, token_id: int) -> HttpResponse:
    user = _member(request, user_id)
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise Http404("No such token")
    post_and_report(request, lambda: services.token_revoke(actor=_actor(request), token=token),
                    done=f"Token {token.prefix}… revoked.", refused="Not revoked.")
    return redirect("staff_detail", user_id=user.pk)


@require_POST
@capability_required(Capability.MANAGE_STAFF)
def device_create(request: AuthedHttpRequest) -> HttpResponse:
    sites = request.user.sites.all()
    form = DeviceForm(request.POST, sites=sites)
    if form.is_valid():
        try:
            device = services.device_create(actor=_actor(request),
                                            site=sites.get(pk=form.cleaned_data["site"]),
                                            name=form.cleaned_data["name"])
        except UsageError as exc:
            messages.error(request, refusal_message("No device was added.", exc))
        else:
            return redirect("staff_detail", user_id=device.user_id)
    else:
        messages.error(request, "Name the device and choose its site.")
    return redirect("staff_list")


@login_required
def password_change(request: AuthedHttpRequest) -> HttpResponse:
    """Everyone's own password page; the one page open while a change is required."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        services.password_changed(actor=_actor(request), user=user)
        messages.success(request, "Password changed.")
        target = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = ""
        return redirect(target or "home")
    return render(request, "staff/password_change.html", {
        "form": form, "next": request.GET.get("next", ""),
        "required": getattr(request.user, "must_change_password", False)})
