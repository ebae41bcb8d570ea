"""The visit's billing summary: a printable page and a CSV."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.billing.selectors import billing_summary
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.sessions.selectors import session_get_for

CSV_COLUMNS = ("section", "code", "description", "units", "quantity", "ndc", "time",
               "detail")


def _summary(request: AuthedHttpRequest, session_id: int, action: AuditAction) -> Any:
    """The session (if the user may see it), its summary and inputs; the read audited."""
    session = session_get_for(request.user, session_id, Actor.from_request(request), read=action)
    summary, inputs = billing_summary(session)
    return session, summary, inputs


@capability_required(Capability.VIEW_BILLING)
def billing_page(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    session, summary, inputs = _summary(request, session_id, AuditAction.BILLING_VIEW)
    return render(request, "billing/summary.html", {"session": session, "s": summary,
                                                    "inputs": inputs})


@capability_required(Capability.VIEW_BILLING)
def billing_csv(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    session, summary, inputs = _summary(request, session_id, AuditAction.BILLING_CSV)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="billing-session-'
                                       f'{session.pk}.csv"')
    w = csv.writer(response)
    w.writerow(CSV_COLUMNS)

    tz = ZoneInfo(session.site.time_zone)

    def local(at: datetime | None) -> str:
        return timezone.localtime(at, tz).isoformat(timespec="minutes") if at else ""

    w.writerow(("infusion", "", "infusion start", "", "", "", local(summary.infusion_started_at),
                ""))
    w.writerow(("infusion", "", "infusion stop", "", "", "", local(summary.infusion_stopped_at),
                f"{summary.infusion_minutes} min" if summary.infusion_minutes is not None
                else ""))
    for line in summary.procedures:
        w.writerow(("procedure", line.code, line.label, line.units, "", "", local(line.at),
                    line.detail))
    for line in summary.drugs:
        w.writerow(("drug", line.code, line.label, line.units, line.quantity, line.ndc,
                    local(line.at), ""))
    for code in summary.diagnoses:
        w.writerow(("diagnosis", code, "ICD-10-CM", "", "", "", "", ""))
    for problem in summary.problems:
        w.writerow(("problem", "", problem, "", "", "", "", ""))
    w.writerow(("inputs", "", "; ".join(f"{k}={v}" for k, v in inputs.items()), "", "", "",
                "", ""))
    return response
