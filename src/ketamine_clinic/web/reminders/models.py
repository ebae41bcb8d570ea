"""Contact consent (append-only: the newest per channel decides) and the message outbox.

Every message has an idempotency key, unique in the outbox: a job that runs twice finds
the row and sends nothing more; the key also goes to the email or SMS backend so that a
provider can drop a duplicate of a send that was cut off before it was marked done.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.outcomes.models import FollowUp
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.scheduling.models import Visit


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "Text message (SMS)"


class ContactConsent(AppendOnly):
    class How(models.TextChoices):
        DESK = "desk", "Recorded by staff"
        STOP_REPLY = "stop_reply", "Replied STOP"
        EMAIL_LINK = "email_link", "Stop link in an email"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT,
                                related_name="contact_consents")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    granted = models.BooleanField()
    address = models.CharField(max_length=200, help_text="the phone or email it applies to")
    text_version = models.PositiveIntegerField()
    text_sha256 = models.CharField(max_length=64)
    how = models.CharField(max_length=20, choices=How.choices)
    at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["patient", "channel", "at"])]

    def __str__(self) -> str:
        return f"{self.channel} {'granted' if self.granted else 'withdrawn'}"


class Message(ClinicModel):
    class Kind(models.TextChoices):
        VISIT_REMINDER = "visit_reminder", "Visit reminder"
        FOLLOW_UP_LINK = "follow_up_link", "Follow-up questionnaire link"

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent"
        FAILED = "failed", "Failed"

    idempotency_key = models.CharField(max_length=200, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="messages")
    visit = models.ForeignKey(Visit, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="messages")
    follow_up = models.ForeignKey(FollowUp, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="messages")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    to_address = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    skip_reason = models.CharField(max_length=300, blank=True)
    provider_ref = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to patient {self.patient_id} ({self.status})"
