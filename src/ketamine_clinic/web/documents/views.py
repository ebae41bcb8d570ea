"""Pages: patient education (public), consent, and the discharge instruction sheet.

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
from django.views.decorators.http import require_GET, require_POST

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.accounts.roles import Capability, Role, role_can
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents import dates, education, selectors, services
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.documents.forms import ConsentForm, WithdrawForm
from ketamine_clinic.web.documents.instructions import instruction_sheet
from ketamine_clinic.web.documents.markup import render_document
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import form_error, post_and_report
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patient_get_unaudited, patient_read_record
from ketamine_clinic.web.protocols import selectors as protocol_selectors
from ketamine_clinic.web.protocols.models import ProtocolVersion

# --------------------------------------------------------------------------- education


def _sources_url() -> str:
    return reverse("education_sources")


@require_GET
def education_index(request: HttpRequest) -> HttpResponse:
    return render(request, "documents/education_index.html",
                  {"pages": education.pages(), "current": "index"})


@require_GET
def education_page(request: HttpRequest, slug: str) -> HttpResponse:
    page = education.page(slug)
    if page is None:
        raise Http404("No such page")
    pages = education.pages()
    i = pages.index(page)
    return render(request, "documents/education_page.html", {
        "page": page, "pages": pages, "sources_url": _sources_url(), "current": page.slug,
        "protocol_aims": selectors.protocol_aims()
        if any(s.protocol_aims for s in page.sections) else [],
        "previous": pages[i - 1] if i > 0 else None,
        "next": pages[i + 1] if i + 1 < len(pages) else None,
    })


@require_GET
def education_print(request: HttpRequest) -> HttpResponse:
    return render(request, "documents/education_print.html",
                  {"pages": education.pages(), "sources_url": _sources_url(),
                   "protocol_aims": selectors.protocol_aims(),
                   "current": "print"})


@require_GET
def education_sources(request: HttpRequest) -> HttpResponse:
    citing = education.citing_pages()
    rows = [(s, citing.get(s.key, [])) for s in education.sources().values()]
    specials = [(key, text, citing.get(key, []))
                for key, text in education.SPECIAL_SOURCES.items()]
    return render(request, "documents/education_sources.html",
                  {"rows": rows, "specials": specials, "pages": education.pages(),
                   "current": "sources"})


# --------------------------------------------------------------------------- consent


def _patient(request: AuthedHttpRequest, patient_id: int) -> Patient:
    """The patient for a write or a form; the view records the read, with what the
    document it shows is (``patient_read_record``)."""
    return patient_get_unaudited(request.user, patient_id, Actor.from_request(request))


def _clinicians_at(patient: Patient) -> Any:
    roles = [r for r in Role.values if role_can(r, Capability.RECORD_CONSENT)]
    return User.objects.filter(is_active=True, role__in=roles,
                               sites=patient.site).order_by("last_name", "first_name")


def _protocol_version(value: Any) -> ProtocolVersion | None:
    try:
        return ProtocolVersion.objects.filter(pk=int(value)).first()
    except (TypeError, ValueError):
        return None


@capability_required(Capability.RECORD_CONSENT)
def consent_new(request: AuthedHttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(request, patient_id)
    actor = Actor.from_request(request, patient.site.code)
    source = request.POST if request.method == "POST" else request.GET
    pv = _protocol_version(source.get("protocol_version"))
    context: dict[str, Any] = {
        "patient": patient, "protocol_version": pv,
        "versions": selectors.protocol_versions_for_consent(),
        "consents": protocol_selectors.consents_of(patient),
    }
    if pv is None:
        if request.method == "POST":
            messages.error(request, "Choose the protocol version the patient consents to.")
        return render(request, "documents/consent_new.html", context,
                      status=400 if request.method == "POST" else 200)
    try:
        generated = consent_for(pv)
    except (ImportError, UsageError) as exc:
        messages.error(request, f"The consent document of {pv} cannot be generated: {exc}")
        return render(request, "documents/consent_new.html", context, status=409)
    clinicians = _clinicians_at(patient)
    initial = {"protocol_version": pv.pk, "document_sha256": generated.sha256,
               "signed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    if request.user in clinicians:
        initial["explained_by"] = str(request.user.pk)
    form = ConsentForm(request.POST or None, initial=initial, clinicians=clinicians)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                consent = services.consent_record(
                    actor=actor, patient=patient, protocol_version=pv,
                    document_sha256=data["document_sha256"], method=data["method"],
                    explained_by=clinicians.get(pk=int(data["explained_by"])),
                    signed_at=data["signed_at"],
                    signature_strokes=data["signature_strokes"] or "",
                    pad_width=data["pad_width"] or 0, pad_height=data["pad_height"] or 0,
                    paper_attested=data["paper_attested"],
                    paper_reference=data["paper_reference"])
            except UsageError as exc:
                form_error(form, exc, {"signature": "signature_strokes"})
            else:
                messages.success(request, f"Consent recorded for {pv}.")
                return redirect("consent_detail", consent_id=consent.pk)
    else:
        patient_read_record(actor, patient, AuditAction.CONSENT_PREPARE,
                            detail={"protocol_version": pv.pk,
                                    "document_sha256": generated.sha256})
    context.update({
        "form": form, "generated": generated,
        "document_html": render_document(generated.text, _sources_url(), for_patient=True),
        "current": protocol_selectors.consent_current(patient, pv),
    })
    return render(request, "documents/consent_new.html", context, status=status)


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def consent_print(request: AuthedHttpRequest, patient_id: int,
                  protocol_version_id: int) -> HttpResponse:
    """The consent document with the patient's name and lines to sign on paper."""
    patient = _patient(request, patient_id)
    pv = _protocol_version(protocol_version_id)
    if pv is None:
        raise Http404("No such protocol version")
    generated = consent_for(pv)
    patient_read_record(Actor.from_request(request), patient, AuditAction.CONSENT_PRINT,
                        detail={"protocol_version": pv.pk, "document_sha256": generated.sha256})
    return render(request, "documents/consent_print.html", {
        "patient": patient, "protocol_version": pv, "generated": generated,
        "document_html": render_document(generated.text, _sources_url(), for_patient=True),
        "date_order": dates.formats()["numeric_order"],  # how to write the date by hand
    })


@require_GET
@capability_required(Capability.VIEW_PATIENTS)
def consent_detail(request: AuthedHttpRequest, consent_id: int) -> HttpResponse:
    consent = selectors.consent_get_for(request.user, consent_id, Actor.from_request(request),
                                        read=AuditAction.CONSENT_VIEW)
    patient = consent.patient
    document = selectors.consent_document(consent)
    withdrawal = getattr(consent, "withdrawal", None)
    current = protocol_selectors.consent_current(patient, consent.protocol_version_id)
    try:
        wording_changed = consent_for(consent.protocol_version).sha256 != consent.document_sha256
    except UsageError:
        wording_changed = False
    return render(request, "documents/consent_detail.html", {
        "wording_changed": wording_changed,
        "consent": consent, "patient": patient, "document": document,
        "document_html": render_document(document.text, _sources_url()) if document else "",
        "withdrawal": withdrawal, "in_force": current is not None and current.pk == consent.pk,
        "withdraw_form": WithdrawForm(),
    })


@require_POST
@capability_required(Capability.RECORD_CONSENT)
def consent_withdraw(request: AuthedHttpRequest, consent_id: int) -> HttpResponse:
    consent = selectors.consent_get_unaudited(request.user, consent_id,
                                              Actor.from_request(request))
    form = WithdrawForm(request.POST)
    if form.is_valid():
        post_and_report(request, lambda: services.consent_withdraw(
            actor=Actor.from_request(request), consent=consent,
            reason=form.cleaned_data["reason"]),
            done="Consent withdrawn; it stays on record, marked withdrawn.",
            refused="Not withdrawn.")
    else:
        messages.error(request, "A reason is required to withdraw a consent.")
    return redirect("consent_detail", consent_id=consent.pk)


def consent_panel(request: AuthedHttpRequest, patient: Patient) -> str:
    """The patient page's consent section."""
    consents = list(protocol_selectors.consents_of(patient))
    in_force = protocol_selectors.consents_in_force(consents)
    for c in consents:
        c.in_force = c.pk in in_force  # type: ignore[attr-defined]
    return render_to_string("documents/_consent_panel.html",
                            {"patient": patient, "consents": consents}, request=request)


# --------------------------------------------------------------------------- instructions


def _sheet(request: AuthedHttpRequest, session_id: int, action: AuditAction) -> Any:
    # The sheet's entry names the end of the infusion it was made for, known only once the
    # summary is derived: the read is recorded here, as the sheet's (documents.selectors).
    session = selectors.session_get_unaudited(request.user, session_id,
                                              Actor.from_request(request))
    summary = selectors.session_summary(session)
    sheet = instruction_sheet(summary)
    selectors.sheet_read_record(Actor.from_request(request), session, action,
                                infusion_ended_at=summary.to_dict()["infusion_ended_at"])
    return sheet


@require_GET
@capability_required(Capability.DISCHARGE_PATIENT)
def session_instructions(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    sheet = _sheet(request, session_id, AuditAction.DISCHARGE_INSTRUCTIONS_VIEW)
    return render(request, "documents/instructions.html",
                  {"sheet": sheet, "patient": sheet.summary.session.patient})


@require_GET
@capability_required(Capability.DISCHARGE_PATIENT)
def session_instructions_pdf(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    from weasyprint import HTML

    sheet = _sheet(request, session_id, AuditAction.DISCHARGE_INSTRUCTIONS_PDF)
    if not sheet.summary.ended:
        return HttpResponse("The infusion has not ended: the sheet needs the end time.",
                            status=409, content_type="text/plain")
    html = render_to_string("documents/instructions_pdf.html",
                            {"sheet": sheet, "patient": sheet.summary.session.patient},
                            request=request)
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    patient = sheet.summary.session.patient
    response["Content-Disposition"] = (
        f'inline; filename="discharge-instructions-{patient.mrn}-session-'
        f'{sheet.summary.session.pk}.pdf"')
    response["Cache-Control"] = "no-store"
    return response
