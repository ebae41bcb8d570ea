"""Writes: recording and withdrawing consent. Each runs in one transaction and is audited."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.clinical import clock
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.documents.models import ConsentDocument, ConsentWithdrawal
from ketamine_clinic.web.documents.signature import signature_svg
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion
from ketamine_clinic.web.protocols.selectors import consent_current


def _check_time(field: str, value: datetime, patient: Patient) -> datetime:
    clock.not_future(field, value, timezone.now())
    if timezone.localtime(value).date() < patient.date_of_birth:
        raise UsageError(field, "is before the patient's date of birth")
    return value


def consent_record(
    *,
    actor: Actor,
    patient: Patient,
    protocol_version: ProtocolVersion,
    document_sha256: str,
    method: str,
    explained_by: User,
    signed_at: datetime,
    signature_strokes: str = "",
    pad_width: int = 0,
    pad_height: int = 0,
    paper_attested: bool = False,
    paper_reference: str = "",
) -> Consent:
    """Record that the patient consented to a series under ``protocol_version``.

    ``document_sha256`` is the hash of the text shown to the patient; it must be the text
    this protocol version's consent document has now (otherwise the page is out of date and
    the patient must see the current text). With ``method="signature"`` the drawn strokes
    become the stored SVG; with ``method="paper"`` the recorder attests the signed paper form.
    """
    if method not in Consent.Method.values:
        raise UsageError("method", f"must be one of {', '.join(Consent.Method.values)}")
    if not explained_by.can(Capability.RECORD_CONSENT):
        raise UsageError("explained_by", "must be a clinician (physician or nurse)")
    if not explained_by.sites.filter(pk=patient.site_id).exists():
        raise UsageError("explained_by", f"does not work at {patient.site.name}")
    _check_time("signed_at", signed_at, patient)
    generated = consent_for(protocol_version)
    if document_sha256 != generated.sha256:
        raise UsageError("document_sha256", "the consent text has changed since the page was "
                         "opened; show the patient the current text and sign again")
    svg = ""
    paper_reference = (paper_reference or "").strip()
    if method == Consent.Method.SIGNATURE:
        svg = signature_svg(signature_strokes, width=pad_width, height=pad_height)
        paper_reference = ""
    elif not paper_attested:
        raise UsageError("paper_attested", "confirm that the patient signed the paper form")
    with transaction.atomic():
        existing = consent_current(patient, protocol_version)
        if existing is not None and existing.document_sha256 == generated.sha256:
            raise UsageError(
                "protocol_version",
                f"the patient already has a current consent for {protocol_version} on this "
                f"text (signed {timezone.localtime(existing.signed_at):%Y-%m-%d %H:%M})")
        document = ConsentDocument.objects.filter(sha256=generated.sha256).first()
        if document is None:
            document = ConsentDocument.objects.create(
                protocol_version=protocol_version, sha256=generated.sha256,
                title=generated.title, text=generated.text,
                template_sha256=generated.template_sha256)
        consent = Consent.objects.create(
            patient=patient, protocol_version=protocol_version,
            document_sha256=document.sha256, method=method, signature_svg=svg,
            paper_reference=paper_reference, explained_by=explained_by, signed_at=signed_at)
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.CONSENT_RECORD,
                     object_type="consent", object_id=consent.pk,
                     detail={"patient": patient.pk, "protocol_version": protocol_version.pk,
                             "method": method, "document_sha256": document.sha256,
                             "explained_by": explained_by.username})
    return consent


def consent_withdraw(*, actor: Actor, consent: Consent, reason: str,
                     withdrawn_at: datetime | None = None) -> ConsentWithdrawal:
    """The patient withdraws a consent; it stays on record, marked withdrawn."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("reason", "is required")
    withdrawn_at = withdrawn_at or timezone.now()
    _check_time("withdrawn_at", withdrawn_at, consent.patient)
    if withdrawn_at < consent.signed_at:
        raise UsageError("withdrawn_at", "is before the consent was signed")
    with transaction.atomic():
        locked = Consent.objects.select_for_update().get(pk=consent.pk)
        if ConsentWithdrawal.objects.filter(consent=locked).exists():
            raise UsageError("reason", "this consent is already withdrawn")
        current = consent_current(locked.patient_id, locked.protocol_version_id)
        if current is None or current.pk != locked.pk:
            raise UsageError("reason", "a newer consent for this protocol version replaced "
                             "this one; withdraw that one")
        withdrawal = ConsentWithdrawal.objects.create(
            consent=locked, reason=reason, withdrawn_at=withdrawn_at,
            recorded_by=actor.require_user())
        audit_record(actor=actor.at(consent.patient.site.code), action=AuditAction.CONSENT_WITHDRAW,
                     object_type="consent", object_id=consent.pk,
                     detail={"patient": consent.patient_id, "reason": reason})
    return withdrawal
