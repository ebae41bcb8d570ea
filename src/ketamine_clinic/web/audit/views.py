from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.selectors import visible_entries
from ketamine_clinic.web.audit.services import Actor, audit_record, audit_verify
from ketamine_clinic.web.lib.decorators import capability_required

FILTERS = ("username", "action", "object_type", "object_id", "site_code")


@capability_required(Capability.VIEW_AUDIT)
def audit_list(request: AuthedHttpRequest) -> HttpResponse:
    qs = visible_entries(request.user).select_related("link").order_by("-id")
    applied: dict[str, str] = {}
    for name in FILTERS:
        value = request.GET.get(name, "").strip()
        if value:
            applied[name] = value
            qs = qs.filter(**({f"{name}__startswith": value} if name == "action"
                              else {name: value}))
    for name, lookup in (("from", "at__date__gte"), ("to", "at__date__lte")):
        raw = request.GET.get(name, "").strip()
        if raw:
            try:
                qs = qs.filter(**{lookup: date.fromisoformat(raw)})
                applied[name] = raw
            except ValueError:
                pass
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    audit_record(actor=Actor.from_request(request), action=AuditAction.AUDIT_BROWSE, detail=applied)
    verify = audit_verify() if request.GET.get("verify") else None
    context = {"page": page, "applied": applied, "verify": verify,
               "querystring": "&".join(f"{k}={v}" for k, v in applied.items())}
    return render(request, "audit/audit_list.html", context)
