"""The API tokens page: create your own, list and revoke (yours; an administrator's also
those of the users of their sites). Services in ``accounts/tokens.py``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.tokens import (
    token_issue,
    token_revoke,
    token_status,
    tokens_visible_to,
)
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.forms import form_error, post_and_report


class TokenForm(forms.Form):
    label = forms.CharField(max_length=100, required=False,
                            help_text="what the token is for, e.g. the infusion pump gateway")
    days = forms.IntegerField(min_value=1, max_value=settings.API_TOKEN_MAX_DAYS,
                              initial=settings.API_TOKEN_DAYS, label="Valid for (days)")


@login_required
def token_list(request: AuthedHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    raw = ""
    if request.method == "POST" and form.is_valid():
        try:
            _token, raw = token_issue(actor=Actor.from_request(request),
                                     user=request.user,
                                     label=form.cleaned_data["label"],
                                     days=form.cleaned_data["days"])
        except UsageError as exc:
            form_error(form, exc)
        else:
            form = TokenForm()
    tokens = [(t, token_status(t)) for t in tokens_visible_to(request.user)]
    response = render(request, "accounts/tokens.html",
                      {"form": form, "raw": raw, "tokens": tokens},
                      status=400 if request.method == "POST" and not raw else 200)
    response["Cache-Control"] = "no-store"  # the new token is on this page once
    return response


@require_POST
@login_required
def token_revoke_view(request: AuthedHttpRequest, token_id: int) -> HttpResponse:
    token = tokens_visible_to(request.user).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token")
    post_and_report(request, lambda: token_revoke(actor=Actor.from_request(request), token=token),
                    done=f"Token {token.prefix}… of {token.user.username} revoked: it "
                         "authenticates nothing from now on.", refused="Not revoked.")
    return redirect("token_list")
