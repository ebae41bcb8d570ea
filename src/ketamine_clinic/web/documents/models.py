"""Consent documents as shown and signed, and withdrawals of consent.

The consent itself is ``protocols.Consent`` (one row per signature, append-only). This app
keeps the exact text each consent's ``document_sha256`` names, so a consent can be shown
later exactly as the patient saw it, and the withdrawals that end a consent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketamine_clinic.web.lib.models import AppendOnly
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion


class ConsentDocument(AppendOnly):
    """The text of a consent document for one protocol version, stored once per hash."""

    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="consent_documents")
    sha256 = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    text = models.TextField(help_text="the exact text hashed, in the documents markup")
    template_sha256 = models.CharField(
        max_length=64, help_text="hash of the consent content file that produced the text")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"consent document {self.sha256[:12]} for {self.protocol_version}"


class ConsentWithdrawal(AppendOnly):
    """The patient withdrew a consent: it no longer allows a session to start."""

    consent = models.OneToOneField(Consent, on_delete=models.PROTECT, related_name="withdrawal")
    reason = models.TextField()
    withdrawn_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-withdrawn_at", "-id"]

    def __str__(self) -> str:
        return f"withdrawal of consent {self.consent_id}"
