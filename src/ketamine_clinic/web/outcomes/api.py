"""Follow-up and outcome endpoints under /api/v1/."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.clinical import clock
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.outcomes import selectors, services, worklist
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
from ketamine_clinic.web.outcomes.schemas import (
    AnswersIn,
    FollowUpOut,
    ReportOut,
    ResponseOut,
    TrajectoryOut,
)
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.patients.selectors import patient_get_for, patient_get_unaudited

router = Router(tags=["outcomes"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
API_FOLLOW_UPS_MAX = 500  # rows of /follow-ups/due, the soonest first (a response-size bound)


@router.get("/outcomes/report", response={200: ReportOut, **ERRORS})
def outcome_report(request: HttpRequest, site: str = "", protocol: str = "",
                   diagnosis: str = "", date_from: date | None = None,
                   date_to: date | None = None) -> Any:
    """The cohort report over your sites: the same numbers as the page and the CLI."""
    user = require(request, Capability.VIEW_REPORTS)
    sites = selectors.visible_sites(user)
    if site and not sites.filter(code=site).exists():
        raise UsageError("site", "is not one of your sites")
    if diagnosis and diagnosis not in selectors.DIAGNOSIS_GROUPS:
        raise UsageError("diagnosis", "must be crps or other")
    if date_from and date_to and date_from > date_to:
        raise UsageError("date_to", "is before date_from")
    filters = selectors.CohortFilters(sites=(site,) if site else (), protocol=protocol,
                                      diagnosis=diagnosis, date_from=date_from,
                                      date_to=date_to)
    report = selectors.outcome_report_for(sites.values_list("id", flat=True), filters)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_OUTCOMES_REPORT,
                 detail={"filters": filters.to_dict(), "series": report.report.n_series})
    return {"report": report.to_dict()}


@router.get("/follow-ups/due", response={200: list[FollowUpOut], **ERRORS})
def follow_ups_due(request: HttpRequest) -> Any:
    """Unanswered follow-ups that are overdue or due soon, at your sites."""
    user = require(request, Capability.RECORD_FOLLOW_UP)
    today = timezone.localdate()
    rows = list(worklist.open_follow_ups(user, today)[:API_FOLLOW_UPS_MAX])
    overdue = sum(1 for f in rows if f.due_on < today)
    audit_record(actor=Actor.from_request(request), action=AuditAction.API_FOLLOW_UP_WORKLIST,
                 detail={"overdue": overdue, "due": len(rows) - overdue})
    return [{"id": f.pk, "patient_id": f.patient_id, "series_id": f.series_id,
             "session_id": f.session_id, "point": f.point, "due_on": f.due_on,
             "overdue": f.due_on < today} for f in rows]


def _response_out(r: FollowUpResponse) -> dict[str, Any]:
    return {"id": r.pk, "follow_up_id": r.follow_up_id, "answered_at": r.answered_at,
            "pain_average_nrs": r.pain_average_nrs, "pain_worst_nrs": r.pain_worst_nrs,
            "global_impression": r.global_impression,
            "opioid_mme_per_day": r.opioid_mme_per_day, "corrects_id": r.corrects_id,
            "via_patient_link": r.via_patient_link}


@router.post("/follow-ups/{follow_up_id}/responses", response={201: ResponseOut, **ERRORS})
def answer_follow_up(request: HttpRequest, follow_up_id: int, payload: AnswersIn) -> Any:
    """Record answers at a follow-up point, or (with ``corrects``) correct them."""
    user = require(request, Capability.RECORD_FOLLOW_UP)
    fu = FollowUp.objects.select_related("patient__site").filter(pk=follow_up_id).first()
    if fu is None:
        raise HttpError(404, "no such follow-up")
    # Another site's patient: the same 404 as no follow-up (and the refusal audited).
    found(lambda: patient_get_unaudited(user, fu.patient_id, Actor.from_request(request)),
          "follow-up")
    data = payload.dict()
    clock.aware_or_none("answered_at", data["answered_at"])
    corrects = None
    if data["corrects"] is not None:
        corrects = FollowUpResponse.objects.filter(pk=data["corrects"], follow_up=fu).first()
        if corrects is None:
            raise UsageError("corrects", "is not an answer to this follow-up")
    answers = services.Answers.check(
        pain_average_nrs=data["pain_average_nrs"], pain_worst_nrs=data["pain_worst_nrs"],
        global_impression=data["global_impression"],
        opioid_mme_per_day=data["opioid_mme_per_day"])
    r = services.followup_respond(
        actor=Actor.from_request(request, fu.patient.site.code), follow_up=fu,
        answers=answers, answered_at=data["answered_at"], corrects=corrects,
        correction_reason=data["correction_reason"])
    return Status(201, _response_out(r))


@router.get("/patients/{patient_id}/pain-trajectory", response={200: TrajectoryOut, **ERRORS})
def pain_trajectory(request: HttpRequest, patient_id: int) -> Any:
    """Pain before and at the end of each infusion, and at each follow-up, over time."""
    user = require(request, Capability.VIEW_PATIENTS)
    patient = found(lambda: patient_get_for(user, patient_id, Actor.from_request(request),
                                            read=AuditAction.API_OUTCOMES_TRAJECTORY), "patient")
    return worklist.patient_trajectory(patient)
