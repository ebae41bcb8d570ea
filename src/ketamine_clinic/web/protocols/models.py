"""Protocol versions as stored data, eligibility screenings and informed consent."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import models

from ketamine_clinic.clinical.protocol import Protocol, load_protocol_text
from ketamine_clinic.web.lib.models import AppendOnly
from ketamine_clinic.web.patients.models import Patient

# Parsed protocols by the SHA-256 of their text. A stored version never changes, so its
# parse is kept; parsing costs tens of milliseconds and pages, the dose-check endpoint and
# screenings read the same few versions all day. Bounded (oldest out first) because tests
# and clinics may store many versions over the life of a process.
_PARSED_MAX = 128
_parsed: dict[str, Protocol] = {}
_parsed_lock = threading.Lock()


def parsed_protocol(pv: ProtocolVersion) -> Protocol:
    """The core's reading of a stored version, parsed once per text (keyed by ``sha256``).

    The cached entry is used only when its text is the row's text, so a row whose stored
    ``sha256`` does not describe its text is parsed afresh rather than given another
    version's protocol. Raises :class:`UsageError` as ``load_protocol_text`` does.
    """
    hit = _parsed.get(pv.sha256)
    if hit is not None and hit.text == pv.toml_text:
        return hit
    protocol = load_protocol_text(pv.toml_text, f"db:{pv.name}/v{pv.version}")
    if protocol.sha256 == pv.sha256:
        with _parsed_lock:
            while len(_parsed) >= _PARSED_MAX:
                del _parsed[next(iter(_parsed))]
            _parsed[pv.sha256] = protocol
    return protocol


class ProtocolVersion(AppendOnly):
    """One published version of a protocol: its TOML text, never changed once stored.

    Orders, screenings, sessions and consents point at the exact version they used, so
    an old version stays readable after a new one is published.
    """

    name = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    toml_text = models.TextField()
    sha256 = models.CharField(max_length=64)
    change_note = models.TextField(blank=True)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(  # null for versions shipped with the software
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+")

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"],
                                               name="unique_protocol_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def protocol(self) -> Protocol:
        """The parsed protocol of this version (cached: see :func:`parsed_protocol`)."""
        return parsed_protocol(self)


class Screening(AppendOnly):
    """An eligibility screening: the facts used, the protocol version, the decision."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="screenings")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="screenings")
    facts = models.JSONField()
    facts_sha256 = models.CharField(max_length=64)
    decision = models.CharField(max_length=32)
    reasons = models.JSONField()
    result = models.JSONField(help_text="the core's full result, as returned")
    screened_at = models.DateTimeField(auto_now_add=True)
    screened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    valid_until = models.DateField()

    class Meta:
        ordering = ["-screened_at", "-id"]

    def __str__(self) -> str:
        return f"screening {self.pk} of {self.patient_id}: {self.decision}"


class ScreeningOverride(AppendOnly):
    """A physician's documented override of one reviewable reason of a screening."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="overrides")
    rule = models.CharField(max_length=80)
    justification = models.TextField()
    physician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["screening", "rule"],
                                               name="one_override_per_rule")]

    def __str__(self) -> str:
        return f"override {self.rule} on screening {self.screening_id}"


class Consent(AppendOnly):
    """Informed consent for a series under one protocol version."""

    class Method(models.TextChoices):
        SIGNATURE = "signature", "Signature captured"
        PAPER = "paper", "Paper consent attested"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="consents")
    document_sha256 = models.CharField(max_length=64, help_text="the consent text shown")
    method = models.CharField(max_length=10, choices=Method.choices)
    signature_svg = models.TextField(blank=True)
    paper_reference = models.CharField(
        max_length=200, blank=True,
        help_text="for a paper consent: where the signed form is kept (e.g. scan id)")
    explained_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    signed_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-signed_at", "-id"]

    def __str__(self) -> str:
        return f"consent of {self.patient_id} for {self.protocol_version}"
