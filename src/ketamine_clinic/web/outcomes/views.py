"""Follow-up worklist and entry, the patient's questionnaire link, and the cohort report.

Views validate and translate; services write; selectors read.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record, client_address
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, refusal_message
from ketamine_clinic.web.orders.models import Series
from ketamine_clinic.web.outcomes import charts, exports, policy, selectors, services, worklist
from ketamine_clinic.web.outcomes.forms import (
    QuestionnaireForm,
    ReportFilterForm,
    StaffAnswerForm,
)
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patient_get_unaudited, patient_read_record


def _patient(request: AuthedHttpRequest, patient_id: int) -> Patient:
    """The patient for a write, or a follow-up's access check: the view records the read."""
    return patient_get_unaudited(request.user, patient_id, Actor.from_request(request))


def _follow_up(request: AuthedHttpRequest, follow_up_id: int) -> FollowUp:
    fu = FollowUp.objects.select_related("patient__site", "series__protocol_version",
                                         "session").filter(pk=follow_up_id).first()
    if fu is None:
        raise Http404("No such follow-up")
    _patient(request, fu.patient_id)  # 404 and an audit entry for another site's patient
    return fu


# --------------------------------------------------------------------------- worklist


@capability_required(Capability.RECORD_FOLLOW_UP)
def followup_worklist(request: AuthedHttpRequest) -> HttpResponse:
    work = worklist.worklist_for(request.user,
                                  page=request.GET.get("page"),
                                  booster_page=request.GET.get("boosters"))
    audit_record(actor=Actor.from_request(request), action=AuditAction.FOLLOW_UP_WORKLIST,
                 detail={"overdue": work.overdue_total, "due": work.due_total,
                         "page": work.page.number, "boosters": len(work.boosters.rows),
                         "booster_page": work.boosters.number})
    return render(request, "outcomes/worklist.html", {
        "work": work, "labels": policy.point_labels(), "due_soon_days": policy.due_soon_days(),
    })


@capability_required(Capability.RECORD_FOLLOW_UP)
def followup_detail(request: AuthedHttpRequest, follow_up_id: int) -> HttpResponse:
    fu = _follow_up(request, follow_up_id)
    actor = Actor.from_request(request, fu.patient.site.code)
    responses = list(fu.responses.select_related("entered_by", "corrects")
                     .order_by("answered_at", "id"))
    corrected = {r.corrects_id for r in responses if r.corrects_id}
    current = next((r for r in reversed(responses) if r.pk not in corrected), None)
    initial: dict[str, Any] = {"answered_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    if current is not None:
        initial.update(pain_average_nrs=current.pain_average_nrs,
                       pain_worst_nrs=current.pain_worst_nrs,
                       global_impression=current.global_impression,
                       opioid_mme_per_day=current.opioid_mme_per_day, corrects=current.pk)
    form = StaffAnswerForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            corrects = None
            if data.get("corrects"):
                corrects = FollowUpResponse.objects.filter(pk=data["corrects"],
                                                           follow_up=fu).first()
                if corrects is None:
                    form.add_error(None, "The answer to correct was not found.")
            try:
                if not form.errors:
                    answers = services.Answers.check(
                        pain_average_nrs=data["pain_average_nrs"],
                        pain_worst_nrs=data["pain_worst_nrs"],
                        global_impression=data.get("global_impression"),
                        opioid_mme_per_day=data.get("opioid_mme_per_day"))
                    services.followup_respond(
                        actor=actor, follow_up=fu, answers=answers,
                        answered_at=data["answered_at"], corrects=corrects,
                        correction_reason=data.get("correction_reason") or "")
            except UsageError as exc:
                form_error(form, exc)
            if not form.errors:
                messages.success(request, "Correction recorded; the earlier answer stays "
                                 "visible." if corrects else "Follow-up answers recorded.")
                return redirect("followup_detail", follow_up_id=fu.pk)
        status = 400
    else:
        audit_read(actor=actor, action=AuditAction.FOLLOW_UP_VIEW, object_type="follow_up",
                   object_id=fu.pk, site_code=fu.patient.site.code, patient_id=fu.patient_id)
    return render(request, "outcomes/followup_detail.html", {
        "fu": fu, "form": form, "responses": responses, "current": current,
        "corrected": corrected, "labels": policy.point_labels(),
        "impressions": dict(policy.global_impression_choices()),
        "links": fu.links.order_by("-created_at"), "now": timezone.now(),
    }, status=status)


@require_POST
@capability_required(Capability.RECORD_FOLLOW_UP)
def followup_link_create(request: AuthedHttpRequest, follow_up_id: int) -> HttpResponse:
    fu = _follow_up(request, follow_up_id)
    try:
        link, raw = services.followup_link_issue(
            actor=Actor.from_request(request, fu.patient.site.code), follow_up=fu)
    except UsageError as exc:
        messages.error(request, refusal_message("No link was issued.", exc))
        return redirect("followup_detail", follow_up_id=fu.pk)
    url = request.build_absolute_uri(reverse("patient_questionnaire", args=[raw]))
    response = render(request, "outcomes/link_issued.html",
                      {"fu": fu, "link": link, "url": url, "labels": policy.point_labels()})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@capability_required(Capability.RECORD_FOLLOW_UP)
def series_followups_schedule(request: AuthedHttpRequest, series_id: int) -> HttpResponse:
    series = Series.objects.filter(pk=series_id).first()
    if series is None:
        raise Http404("No such series")
    patient = _patient(request, series.patient_id)
    new = services.followups_schedule(actor=Actor.from_request(request, patient.site.code),
                                      series=series)
    messages.success(request, f"{len(new)} follow-up point(s) scheduled." if new
                     else "Every follow-up point due so far is already scheduled.")
    return redirect(f"{patient.get_absolute_url()}#outcomes")


# --------------------------------------------------------------------------- patient link


@never_cache
def patient_questionnaire(request: HttpRequest, token: str) -> HttpResponse:
    """The patient's own questionnaire: no login, only this one follow-up, once."""
    address = client_address(request)
    try:
        link = services.followup_link_get(token, client_address=address)
    except services.LinkUnusable as exc:
        return _link_refused(request, exc.reason)
    fu = link.follow_up
    form = QuestionnaireForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            answers = services.Answers.check(
                pain_average_nrs=data["pain_average_nrs"],
                pain_worst_nrs=data["pain_worst_nrs"],
                global_impression=data.get("global_impression"),
                opioid_mme_per_day=data.get("opioid_mme_per_day"))
            services.followup_link_answer(raw=token, answers=answers, client_address=address)
        except services.LinkUnusable as exc:
            return _link_refused(request, exc.reason)
        except UsageError as exc:
            form_error(form, exc)
        else:
            return _no_referrer(render(request, "outcomes/questionnaire_done.html", {}))
    if request.method == "GET":
        audit_record(actor=Actor(user=None, client_address=address,
                                 site_code=fu.patient.site.code),
                     action=AuditAction.FOLLOW_UP_LINK_OPEN,
                     object_type="follow_up", object_id=fu.pk,
                     detail={"link": link.pk})
    return _no_referrer(render(request, "outcomes/questionnaire.html", {
        "form": form, "point": policy.point_labels().get(fu.point, fu.point),
        "expires_at": link.expires_at,
    }, status=400 if request.method == "POST" else 200))


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The token is in the address: never send it to another site. ("no-referrer" would
    # also make the browser send "Origin: null" with the form, which CSRF refuses.)
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    return response


def _link_refused(request: HttpRequest, reason: str) -> HttpResponse:
    status = 404 if reason == "unknown" else 410
    return _no_referrer(render(request, "outcomes/questionnaire_refused.html",
                               {"reason": reason}, status=status))


# --------------------------------------------------------------------------- report


def _report_request(request: AuthedHttpRequest) -> tuple[ReportFilterForm, Any]:
    user = request.user
    sites = selectors.visible_sites(user)
    site_ids = list(sites.values_list("id", flat=True))
    form = ReportFilterForm(request.GET or None, sites=sites,
                            protocols=selectors.protocols_at(site_ids))
    if request.GET and not form.is_valid():
        return form, None
    data = form.cleaned_data if request.GET else {}
    filters = selectors.CohortFilters(
        sites=(data["site"],) if data.get("site") else (),
        protocol=data.get("protocol") or "", diagnosis=data.get("diagnosis") or "",
        date_from=data.get("date_from"), date_to=data.get("date_to"))
    report = selectors.outcome_report_for(site_ids, filters)
    audit_record(actor=Actor.from_request(request), action=AuditAction.OUTCOMES_REPORT,
                 detail={"filters": filters.to_dict(), "series": report.report.n_series,
                         "format": request.resolver_match.url_name
                         if request.resolver_match else ""})
    return form, report


@capability_required(Capability.VIEW_REPORTS)
def outcome_report(request: AuthedHttpRequest) -> HttpResponse:
    form, report = _report_request(request)
    if report is None:
        return render(request, "outcomes/report.html", {"form": form, "data": None},
                      status=400)
    data = report.to_dict()
    plots = {
        "responders": charts.responder_bars(data),
        "km_diagnosis": charts.km_curves(data["relief_by_diagnosis"],
                                         "Relief by diagnosis (Kaplan–Meier)"),
        "km_protocol": charts.km_curves(data["relief_by_protocol"],
                                        "Relief by protocol (Kaplan–Meier)"),
        "trajectories": charts.trajectories(data),
    } if data["n_series"] else {}
    return render(request, "outcomes/report.html", {
        "form": form, "data": data, "plots": plots, "query": request.GET.urlencode(),
        "group_labels": charts.GROUP_LABELS,
        "schedule_source": policy.schedule_source(),
    })


@capability_required(Capability.VIEW_REPORTS)
def outcome_report_csv(request: AuthedHttpRequest) -> HttpResponse:
    form, report = _report_request(request)
    if report is None:
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    response = HttpResponse(exports.report_csv(report.to_dict()),
                            content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="outcomes.csv"'
    return response


@capability_required(Capability.VIEW_REPORTS)
def outcome_report_pdf(request: AuthedHttpRequest) -> HttpResponse:
    form, report = _report_request(request)
    if report is None:
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    user = request.user
    pdf = exports.report_pdf(report.to_dict(), title="Outcome report",
                             generated_for=getattr(user, "display_name", ""))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="outcomes.pdf"'
    return response


# --------------------------------------------------------------------------- patient page


def outcomes_panel(request: AuthedHttpRequest, patient: Patient) -> str:
    """Series, follow-ups, suggested booster and the pain trajectory, on the patient page."""
    series = worklist.patient_series(patient)
    if not series:
        return ""
    traj = worklist.patient_trajectory(patient)
    booster = worklist.boosters_suggested([patient.site_id], patient=patient)
    patient_read_record(Actor.from_request(request), patient, AuditAction.OUTCOMES_PATIENT_PANEL)
    plot = (charts.patient_trajectory(traj)
            if traj["session_pain"] or traj["follow_up_pain"] else "")
    return render_to_string("outcomes/_patient_panel.html", {
        "patient": patient, "series": series, "plot": plot,
        "booster": booster[0] if booster else None, "labels": policy.point_labels(),
        "today": timezone.localdate(),
    }, request=request)
