"""Bulk export jobs (FHIR Bulk Data, asynchronous pattern) and the files they wrote."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from ketamine_clinic.web.accounts.models import ApiToken, Site
from ketamine_clinic.web.lib.models import ClinicModel


class ExportJob(ClinicModel):
    """One ``$export`` request: what was asked, by whom, and how far it got.

    Only the requester may poll it or download its files, and only until ``expires_at``;
    the files are deleted then (a deferred job), and the row stays as the record.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    level = models.CharField(max_length=10, help_text="patient or group")
    group_site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    types = models.JSONField(default=list)
    since = models.DateTimeField(null=True, blank=True)
    request_url = models.TextField()
    client_address = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    transaction_time = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    patients_total = models.PositiveIntegerField(default=0)
    patients_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"


class ExportFile(ClinicModel):
    """One NDJSON file of a finished export: a resource type's resources, one per line."""

    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="files")
    resource_type = models.CharField(max_length=40)
    name = models.CharField(max_length=80)
    count = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "name"],
                                               name="one_export_file_name_per_job")]

    def __str__(self) -> str:
        return f"{self.name} of export {self.job_id}"
