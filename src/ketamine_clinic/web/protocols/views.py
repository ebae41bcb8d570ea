"""Pages of the protocols area: protocol versions (read, compare, publish), the references
they cite, and eligibility screening (form, decision, overrides, patient panel)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from ketamine_clinic.clinical.protocol import (
    condition_vocabulary,
    protocol_diff,
    references,
    source_keys,
)
from ketamine_clinic.clinical.scales import scales
from ketamine_clinic.clinical.screening import budapest_criteria
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import (
    patient_get_for,
    patient_get_unaudited,
    patient_read_record,
)
from ketamine_clinic.web.protocols import selectors, services
from ketamine_clinic.web.protocols.forms import OverrideForm, PublishForm, ScreeningForm
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.protocols.presentation import diff_lines, sections

# --------------------------------------------------------------------------- protocols


@require_GET
@capability_required(Capability.VIEW_PROTOCOLS)
def protocol_list(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "protocols/protocol_list.html",
                  {"entries": selectors.protocol_entries()})


@require_GET
@capability_required(Capability.VIEW_PROTOCOLS)
def protocol_detail(request: AuthedHttpRequest, name: str, version: int) -> HttpResponse:
    pv = selectors.protocol_version_get(name, version)
    protocol = pv.protocol()
    versions = list(ProtocolVersion.objects.filter(name=name).order_by("-version")
                    .values_list("pk", "version"))
    previous = next((pk for pk, v in versions if v < version), None)
    newest = versions[0][1] if versions else version
    return render(request, "protocols/protocol_detail.html", {
        "pv": pv, "protocol": protocol, "sections": sections(protocol),
        "previous_id": previous, "newest": newest, "versions": versions,
        # Notes for the medical director, kept off the bedside page.
        "unconfirmed_scales": [s for s in scales().values() if s.unconfirmed]})


@require_GET
@capability_required(Capability.VIEW_PROTOCOLS)
def protocol_toml(request: AuthedHttpRequest, name: str, version: int) -> HttpResponse:
    pv = selectors.protocol_version_get(name, version)
    response = HttpResponse(pv.toml_text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{pv.name}.v{pv.version}.toml"'
    return response


def _version_param(request: AuthedHttpRequest, key: str) -> ProtocolVersion:
    value = request.GET.get(key, "")
    pv = (ProtocolVersion.objects.select_related("published_by")
          .filter(pk=int(value)).first() if value.isdigit() else None)
    if pv is None:
        raise Http404(f"choose the {key} version")
    return pv


@require_GET
@capability_required(Capability.VIEW_PROTOCOLS)
def protocol_compare(request: AuthedHttpRequest) -> HttpResponse:
    old, new = _version_param(request, "old"), _version_param(request, "new")
    show_all = request.GET.get("all") == "1"
    rows = protocol_diff(old.protocol(), new.protocol(),
                         include_unchanged=show_all)
    lines = diff_lines(rows)
    counts = {c: sum(1 for line in lines if line.change == c)
              for c in ("changed", "added", "removed", "same")}
    return render(request, "protocols/protocol_compare.html", {
        "old": old, "new": new, "lines": lines, "counts": counts, "show_all": show_all,
        "all_versions": ProtocolVersion.objects.order_by("name", "-version")})


@require_GET
@capability_required(Capability.VIEW_PROTOCOLS)
def protocol_references(request: AuthedHttpRequest) -> HttpResponse:
    cited: dict[str, list[str]] = {}
    for entry in selectors.protocol_entries():
        protocol = entry.newest.protocol()
        keys = {k for row in protocol.rows for k in source_keys(row.source)}
        for rule in protocol.screening.rules:
            keys.update(source_keys(rule.source))
        for key in keys:
            cited.setdefault(key, []).append(protocol.label)
    refs = [(ref, sorted(cited.get(ref.key, []))) for ref in references().values()]
    return render(request, "protocols/references.html", {"refs": refs})


def _publish_error(form: PublishForm, exc: UsageError) -> None:
    if exc.field in ("change_note",):
        form.add_error("change_note", exc.problem)
        return
    origin, _, path = exc.field.partition(":")
    where = path or ("the text" if origin in ("upload", "toml_text") else exc.field)
    form.add_error("toml_text", f"{where}: {exc.problem}")


@capability_required(Capability.PUBLISH_PROTOCOL)
def protocol_publish(request: AuthedHttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    base = request.GET.get("from", "")
    if base.isdigit():
        pv = ProtocolVersion.objects.filter(pk=int(base)).first()
        if pv is not None:
            initial["toml_text"] = pv.toml_text
    form = PublishForm(request.POST or None, request.FILES or None, initial=initial)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["toml_text"]
        try:
            if "publish" in request.POST:
                pv = services.protocol_publish(actor=Actor.from_request(request),
                                               toml_text=text,
                                               change_note=form.cleaned_data["change_note"])
                messages.success(request, f"Published {pv.name} version {pv.version}. "
                                 "Earlier versions stay readable and in use where chosen.")
                return redirect("protocol_detail", name=pv.name, version=pv.version)
            protocol, previous = services.protocol_check(toml_text=text)
        except UsageError as exc:
            _publish_error(form, exc)
        else:
            context.update(checked=protocol, previous=previous, lines=diff_lines(
                protocol_diff(previous.protocol(), protocol)
            ) if previous else [])
    return render(request, "protocols/protocol_publish.html", context,
                  status=400 if request.method == "POST" and form.errors else 200)


# --------------------------------------------------------------------------- screening


def _patient(request: AuthedHttpRequest, patient_id: int, action: AuditAction) -> Patient:
    """The patient, the read recorded as ``action``."""
    return patient_get_for(request.user, patient_id, Actor.from_request(request), read=action)


def screening_panel(request: AuthedHttpRequest, patient: Patient) -> str:
    """The patient page's screening section: each protocol's newest screening, judged today."""
    rows = selectors.screening_panel_rows(patient)
    return render_to_string("protocols/_screening_panel.html",
                            {"patient": patient, "rows": rows}, request=request)


def _registry_view(patient: Patient) -> tuple[dict[str, Any], dict[str, str]]:
    return selectors.registry_facts(patient, timezone.localdate())


@capability_required(Capability.SCREEN_PATIENT)
def screening_new(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_unaudited(request.user, patient_id, Actor.from_request(request))
    versions = selectors.protocol_versions_for_screening()
    initial = {}
    wanted = request.GET.get("protocol_version", "")
    if wanted.isdigit():
        initial["protocol_version"] = int(wanted)
    elif versions:
        standard = [pv for pv in versions if pv.name == "clinic-standard"]
        initial["protocol_version"] = (standard or versions)[0].pk
    form = ScreeningForm(request.POST or None, versions=versions, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            s = services.screening_record(
                actor=Actor.from_request(request), patient=patient,
                protocol_version=form.cleaned_data["protocol_version"],
                answers=form.answers())
        except UsageError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Screening recorded: {s.decision}.")
            return redirect("screening_detail", screening_id=s.pk)
    facts, where = _registry_view(patient)
    patient_read_record(Actor.from_request(request), patient, AuditAction.SCREENING_FORM)
    crit = budapest_criteria()
    return render(request, "protocols/screening_form.html", {
        "patient": patient, "form": form, "facts": facts, "where": where,
        "vocabulary": condition_vocabulary(), "budapest": crit,
        "medications": patient.medications.filter(entered_in_error_at__isnull=True),
    }, status=400 if request.method == "POST" else 200)


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def screening_detail(request: AuthedHttpRequest, screening_id: int) -> HttpResponse:
    s = selectors.screening_get_for(request.user, screening_id, Actor.from_request(request),
                                    read=AuditAction.SCREENING_VIEW)
    status = selectors.screening_status(s)
    overrides = {o.rule: o for o in s.overrides.select_related("physician")}
    reasons = [{**r, "override": overrides.get(r["rule"])} for r in s.reasons]
    newest = selectors.screening_latest(s.patient, s.protocol_version)
    return render(request, "protocols/screening_detail.html", {
        "s": s, "patient": s.patient, "status": status, "reasons": reasons,
        "override_form": OverrideForm(), "is_newest": newest is not None and newest.pk == s.pk,
        "facts": s.facts, "vocabulary": condition_vocabulary(),
    })


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def screening_list(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(request, patient_id, AuditAction.SCREENING_LIST)
    screenings = list(selectors.screenings_of(patient))
    return render(request, "protocols/screening_list.html",
                  {"patient": patient, "screenings": screenings})


@require_POST
@capability_required(Capability.OVERRIDE_SCREENING)
def screening_override(request: AuthedHttpRequest, screening_id: int) -> HttpResponse:
    s = selectors.screening_get_unaudited(request.user, screening_id, Actor.from_request(request))
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An override needs a written justification.")
        return redirect("screening_detail", screening_id=s.pk)
    post_and_report(request, lambda: services.screening_override(
        actor=Actor.from_request(request), screening=s, rule=form.cleaned_data["rule"],
        justification=form.cleaned_data["justification"]),
        done=f"Override of {form.cleaned_data['rule']} recorded.", refused="Not overridden.")
    return redirect("screening_detail", screening_id=s.pk)
