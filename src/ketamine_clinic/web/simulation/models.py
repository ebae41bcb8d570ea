from __future__ import annotations

from django.conf import settings
from django.db import models

from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel


class Prediction(AppendOnly):
    """A PK/PD prediction as it was shown: its inputs, the model version and the summary."""

    patient = models.ForeignKey("patients.Patient", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="predictions")
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="predictions")
    session = models.ForeignKey("infusion_sessions.InfusionSession", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="predictions")
    purpose = models.CharField(max_length=20, help_text="planner, order, session, what-if")
    model_id = models.CharField(max_length=40)
    model_version = models.CharField(max_length=40)
    inputs = models.JSONField()
    inputs_sha256 = models.CharField(max_length=64, db_index=True, default="",
                                     help_text="same inputs and model: the stored record is "
                                               "shown again instead of a new one")
    summary = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_id} prediction {self.pk}"


class PopulationJob(ClinicModel):
    """A virtual-population simulation too large to answer within its request
    (``PK_SYNC_MAX_WORK`` patients × times): run by the job worker, with its progress.

    Holds no patient data: the covariates and regimen the client sent, and the bands."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    inputs = models.JSONField()
    n = models.PositiveIntegerField()
    patients_done = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"population job {self.pk} ({self.status})"
