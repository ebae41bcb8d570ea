"""Reminders: the patient page's contact-consent panel, the SMS provider's inbound webhook
(STOP), and the stop link in emails."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import post_and_report
from ketamine_clinic.web.patients.selectors import patient_get_unaudited
from ketamine_clinic.web.reminders import services
from ketamine_clinic.web.reminders.models import Channel, Message
from ketamine_clinic.web.reminders.policy import policy


def patient_reminders_panel(request: AuthedHttpRequest, patient: Any) -> str:
    """Contact consent per channel and the messages sent (AppConfig.patient_panels)."""
    if not request.user.can(Capability.VIEW_PATIENTS):
        return ""
    channels = [{"value": c, "label": label, "consent": services.consent_in_force(patient, c),
                 "address": services._address(patient, c)}
                for c, label in Channel.choices]
    return render_to_string("reminders/patient_panel.html", {
        "patient": patient, "channels": channels, "policy": policy(),
        "messages_sent": Message.objects.filter(patient=patient).select_related("visit")[:20],
        "can_record": request.user.can(Capability.ANSWER_CHECKLIST),
    }, request=request)


@require_POST
@capability_required(Capability.ANSWER_CHECKLIST)
def contact_consent(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_unaudited(request.user, patient_id, Actor.from_request(request))
    post_and_report(request, lambda: services.contact_consent_record(
        actor=Actor.from_request(request), patient=patient,
        channel=request.POST.get("channel", ""), granted=request.POST.get("granted") == "yes"),
        done="Contact consent recorded.", refused="Not recorded.")
    return redirect(f"{patient.get_absolute_url()}#reminders")


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """The SMS provider's webhook for replies: STOP withdraws text consent at once."""
    secret = settings.SMS_WEBHOOK_SECRET
    if not secret:
        raise Http404("The SMS webhook is not configured")
    given = request.headers.get("X-Webhook-Secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return HttpResponseForbidden("wrong webhook secret")
    count = services.sms_stop(from_number=request.POST.get("From", ""),
                              body=request.POST.get("Body", ""))
    return HttpResponse(f"stopped {count}", content_type="text/plain")


def email_stop(request: HttpRequest, token: str) -> HttpResponse:
    """The stop link in every email: a page that asks, then withdraws email consent."""
    done = False
    if request.method == "POST":
        try:
            services.email_stop(token)
        except UsageError as exc:
            return render(request, "reminders/stop.html", {"error": str(exc)}, status=400)
        done = True
    return render(request, "reminders/stop.html", {"done": done, "token": token})
