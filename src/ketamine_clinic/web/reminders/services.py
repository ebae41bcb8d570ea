"""Contact consent, STOP, and sending reminders and follow-up links through the outbox.

A send runs in three steps so that a job run twice never sends twice: (1) in a
transaction, claim the outbox row by its idempotency key (a row already sent or skipped
ends the job); (2) send through the backend, passing the key; (3) mark the row sent. Only
a worker killed between (2) and (3) leaves a row "sending"; its retry sends again with the
same key, which the provider (or Django's Message-ID header for email) lets drop.

Nothing goes out for a visit that was cancelled, moved, started or is past; nor without
the patient's consent for the channel in force; nor in quiet hours (the job waits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.outcomes.models import FollowUp
from ketamine_clinic.web.outcomes.services import followup_link_issue
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.reminders.models import Channel, ContactConsent, Message
from ketamine_clinic.web.reminders.policy import policy
from ketamine_clinic.web.reminders.sms import sms_backend
from ketamine_clinic.web.scheduling.checklist import checklist
from ketamine_clinic.web.scheduling.models import Visit

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_SIGNER_SALT = "reminders.email-stop"


def _address(patient: Patient, channel: str) -> str:
    return (patient.email if channel == Channel.EMAIL else patient.phone or "").strip()


def consent_in_force(patient: Patient, channel: str) -> ContactConsent | None:
    """The patient's newest consent record for ``channel`` if it grants contact at the
    address the registry holds now; otherwise None."""
    latest = ContactConsent.objects.filter(patient=patient, channel=channel).order_by(
        "-at", "-id").first()
    if latest is None or not latest.granted or latest.address != _address(patient, channel):
        return None
    return latest


def contact_consent_record(*, actor: Actor, patient: Patient, channel: str, granted: bool,
                           how: str = ContactConsent.How.DESK) -> ContactConsent:
    """Record that the patient agreed (with the current consent text) or withdrew."""
    if channel not in Channel.values:
        raise UsageError("channel", "choose email or text message")
    address = _address(patient, channel)
    if granted and not address:
        what = "email address" if channel == Channel.EMAIL else "phone number"
        raise UsageError("channel", f"the patient has no {what} in the registry: add it first")
    p = policy()
    with transaction.atomic():
        row = ContactConsent.objects.create(
            patient=patient, channel=channel, granted=granted, address=address,
            text_version=p.consent_version, text_sha256=p.consent_sha256, how=how,
            recorded_by=actor.user)
        audit_record(actor=actor.at(patient.site.code),
                     action=(AuditAction.CONTACT_CONSENT_GRANT if granted
                             else AuditAction.CONTACT_CONSENT_WITHDRAW),

                     object_type="patient", object_id=patient.pk,
                     detail={"channel": channel, "how": how, "version": p.consent_version})
    return row


def sms_stop(*, from_number: str, body: str) -> int:
    """An inbound text: STOP (and its synonyms) withdraws SMS consent at once for every
    patient at that number. Returns how many patients it applied to."""
    if body.strip().upper() not in STOP_WORDS:
        return 0
    number = from_number.strip()
    patients = [c.patient for c in ContactConsent.objects.filter(
        channel=Channel.SMS, address=number).select_related("patient", "patient__site")]
    done = 0
    for patient in {p.pk: p for p in patients}.values():
        if consent_in_force(patient, Channel.SMS) is not None:
            contact_consent_record(actor=Actor(user=None, client_address="sms"),
                                   patient=patient, channel=Channel.SMS, granted=False,
                                   how=ContactConsent.How.STOP_REPLY)
            done += 1
    return done


def email_stop_token(patient: Patient) -> str:
    return signing.dumps({"p": patient.pk}, salt=_SIGNER_SALT)


def email_stop(token: str) -> Patient:
    try:
        data = signing.loads(token, salt=_SIGNER_SALT)
    except signing.BadSignature as exc:
        raise UsageError("link", "this stop link is not valid") from exc
    patient = Patient.objects.select_related("site").get(pk=data["p"])
    if consent_in_force(patient, Channel.EMAIL) is not None:
        contact_consent_record(actor=Actor(user=None, client_address="email-link"),
                               patient=patient, channel=Channel.EMAIL, granted=False,
                               how=ContactConsent.How.EMAIL_LINK)
    return patient


# --------------------------------------------------------------------------- scheduling


def _site_tz(patient: Patient) -> ZoneInfo:
    return ZoneInfo(patient.site.time_zone)


def start_key(at: datetime) -> str:
    """A visit's start as the reminder jobs carry it (UTC, so that it compares equal)."""
    return at.astimezone(UTC).isoformat()


def visit_reminders_schedule(visits: Any) -> int:
    """Enqueue each visit's reminders for their times (inside the booking's transaction,
    so a booking rolled back leaves no job). A reminder whose time has passed is not
    queued. Returns how many were queued."""
    # tasks.py imports this module (its jobs call the send functions).
    from ketamine_clinic.web.reminders.tasks import send_visit_reminder

    now = timezone.now()
    queued = 0
    for visit in visits:
        tz = ZoneInfo(visit.site.time_zone)
        day = timezone.localtime(visit.starts_at, tz).date()
        for r in policy().visit_reminders:
            at = r.when(day, tz)
            if at <= now or at >= visit.starts_at:
                continue
            send_visit_reminder.using(run_after=at).enqueue(
                visit.pk, r.key, start_key(visit.starts_at))
            queued += 1
    return queued


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Outcome:
    sent: int = 0
    skipped: int = 0
    deferred_to: datetime | None = None


def _claim(key: str, **fields: Any) -> Message | None:
    """The outbox row for ``key`` if this run should send it; None if a run already
    sent or skipped it."""
    try:
        with transaction.atomic():
            return Message.objects.create(idempotency_key=key, status=Message.Status.SENDING,
                                          **fields)
    except IntegrityError:
        pass
    row = Message.objects.get(idempotency_key=key)
    return row if row.status in (Message.Status.SENDING, Message.Status.FAILED) else None


def _skip(key: str, reason: str, **fields: Any) -> None:
    Message.objects.get_or_create(idempotency_key=key, defaults={
        "status": Message.Status.SKIPPED, "skip_reason": reason, **fields})


def _deliver(row: Message, stop_link: str) -> None:
    try:
        if row.channel == Channel.EMAIL:
            domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "clinic.invalid"
            EmailMessage(subject=row.subject, body=f"{row.body}\n\n{stop_link}",
                         to=[row.to_address],
                         headers={"Message-ID": f"<{row.idempotency_key}@{domain}>",
                                  "Idempotency-Key": row.idempotency_key}).send()
            ref = row.idempotency_key
        else:
            ref = sms_backend().send(to=row.to_address, body=row.body,
                                     idempotency_key=row.idempotency_key)
    except Exception as exc:
        Message.objects.filter(pk=row.pk).update(status=Message.Status.FAILED,
                                                 skip_reason=str(exc)[:300])
        raise
    Message.objects.filter(pk=row.pk).update(status=Message.Status.SENT, sent_at=timezone.now(),
                                             provider_ref=ref[:200])


def _send_all(patient: Patient, key: str, *, subject: str, body: str, **fields: Any) -> Outcome:
    sent = skipped = 0
    for channel in Channel.values:
        ck = f"{key}:{channel}"
        consent = consent_in_force(patient, channel)
        if consent is None:
            skipped += 1
            continue  # no row: consent given later still lets a retried job send
        text = body if channel == Channel.EMAIL else f"{body} Reply STOP to stop texts."
        row = _claim(ck, patient=patient, channel=channel, to_address=consent.address,
                     subject=subject, body=text, **fields)
        if row is None:
            continue
        stop = (f"To stop these emails: {settings.PUBLIC_BASE_URL}"
                f"{reverse('email_stop', args=[email_stop_token(patient)])}")
        _deliver(row, stop)
        sent += 1
    return Outcome(sent=sent, skipped=skipped)


def _quiet_defer(tz: ZoneInfo, now: datetime) -> datetime | None:
    local = now.astimezone(tz)
    later = policy().after_quiet_hours(local)
    return later if later != local else None


def visit_reminder_send(visit_id: int, reminder_key: str, starts_at_iso: str,
                        now: datetime | None = None) -> Outcome:
    """The job: send one reminder of one visit, if it still applies."""
    now = now or timezone.now()
    visit = (Visit.objects.select_related("patient", "patient__site", "site", "chair")
             .filter(pk=visit_id).first())
    key = f"visit-{visit_id}-{reminder_key}-{starts_at_iso}"
    fields = {"patient": visit.patient, "visit": visit, "kind": Message.Kind.VISIT_REMINDER} \
        if visit is not None else {}
    if visit is None:
        return Outcome()
    if visit.status != Visit.Status.BOOKED:
        _skip(key, f"the visit is {visit.get_status_display().lower()}", channel="", **fields)
        return Outcome(skipped=1)
    if start_key(visit.starts_at) != starts_at_iso:
        _skip(key, "the visit was moved (its new time has its own reminders)", channel="",
              **fields)
        return Outcome(skipped=1)
    if visit.starts_at <= now:
        _skip(key, "the visit has begun", channel="", **fields)
        return Outcome(skipped=1)
    tz = ZoneInfo(visit.site.time_zone)
    defer = _quiet_defer(tz, now)
    if defer is not None:
        # tasks.py imports this module (its jobs call the send functions).
        from ketamine_clinic.web.reminders.tasks import send_visit_reminder

        send_visit_reminder.using(run_after=defer).enqueue(visit_id, reminder_key,
                                                            starts_at_iso)
        return Outcome(deferred_to=defer)
    local = timezone.localtime(visit.starts_at, tz)
    hours = (visit.ends_at - visit.starts_at).total_seconds() / 3600
    items = " ".join(i.reminder for i in checklist().items)
    site = visit.site
    call = f" To change or cancel, call {site.phone}." if site.phone else ""
    body = (f"Reminder from {settings.CLINIC_NAME}: your infusion visit at {site.name} is on "
            f"{local:%A %d %B} at {local:%H:%M} and lasts about {hours:g} hours with "
            f"recovery. Before you come: {items}{call}")
    return _send_all(visit.patient, key, subject=f"Your visit on {local:%A %d %B} at "
                     f"{local:%H:%M}", body=body, visit=visit,
                     kind=Message.Kind.VISIT_REMINDER)


def followup_links_send(now: datetime | None = None) -> Outcome:
    """The job: for every follow-up due by today (site's clock) and not answered, send
    the patient a personal questionnaire link once, if the site's send time has come."""
    now = now or timezone.now()
    sent = skipped = 0
    due = (FollowUp.objects.filter(due_on__lte=(now + timedelta(days=1)).date(),
                                   due_on__gte=(now - timedelta(days=7)).date(),
                                   responses__isnull=True)
           .exclude(messages__status=Message.Status.SENT)
           .select_related("patient", "patient__site").distinct())
    for fu in due:
        tz = _site_tz(fu.patient)
        local = now.astimezone(tz)
        if fu.due_on > local.date() or local.time() < policy().follow_up_send_at or \
                policy().in_quiet_hours(local):
            continue
        if not any(consent_in_force(fu.patient, c) for c in Channel.values):
            skipped += 1
            continue
        with transaction.atomic():
            _link, raw = followup_link_issue(actor=Actor(user=None, client_address="job"),
                                             follow_up=fu)
            url = f"{settings.PUBLIC_BASE_URL}{reverse('patient_questionnaire', args=[raw])}"
        out = _send_all(fu.patient, f"follow-up-{fu.pk}", subject="How are you doing?",
                        body=(f"{settings.CLINIC_NAME} asks how your pain has been since your "
                              f"infusion. Please answer a few questions: {url}"),
                        follow_up=fu, kind=Message.Kind.FOLLOW_UP_LINK)
        sent += out.sent
    return Outcome(sent=sent, skipped=skipped)
