"""Treatment series and infusion orders with their limit events.

An order's clinical content is written once (at drafting) and never edited after it is
signed; a change is a discontinuation plus a new order that points back at it. The
workflow's steps are OrderEvent rows; ``Order.status`` is their latest result, kept on the
row for querying and guarded by the services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ketamine_clinic.clinical.protocol import DosingBasis, DrugForm
from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.patients.models import Measurement, Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening


class Series(ClinicModel):
    """A course of infusions (a loading course, or boosters) under one protocol version."""

    class Kind(models.TextChoices):
        LOADING = "loading", "Loading course"
        BOOSTER = "booster", "Booster"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="series")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="series")
    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="series")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LOADING)
    planned_sessions = models.PositiveSmallIntegerField()
    spacing_days = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return f"series {self.pk} of patient {self.patient_id}"


# The drug forms and dosing bases a protocol may name (``clinical.protocol``).
DRUG_CHOICES = [(DrugForm.RACEMIC.value, "Racemic ketamine"),
                (DrugForm.ESKETAMINE.value, "Esketamine")]
DOSING_BASIS_CHOICES = [(DosingBasis.FIXED.value, "Fixed rate (mg/h)"),
                        (DosingBasis.WEIGHT.value, "By weight (mg/kg/h)")]


class Order(ClinicModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SIGNED = "signed", "Signed, awaiting the second check"
        ACTIVE = "active", "Active (verified)"
        COMPLETED = "completed", "Completed"
        DISCONTINUED = "discontinued", "Discontinued"

    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="orders")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="orders")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="orders")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="replaced_by")

    # What the physician wrote (inputs), with units in the names.
    drug = models.CharField(max_length=20, choices=DRUG_CHOICES)
    vial_strength_mg_per_ml = models.DecimalField(max_digits=8, decimal_places=3)
    bag_drug_mg = models.DecimalField(max_digits=9, decimal_places=3)
    bag_volume_ml = models.DecimalField(max_digits=9, decimal_places=3)
    dosing_basis = models.CharField(max_length=30, choices=DOSING_BASIS_CHOICES)
    dosing_weight_kg = models.DecimalField(max_digits=7, decimal_places=3)
    weight_measurement = models.ForeignKey(Measurement, on_delete=models.PROTECT,
                                           related_name="+")
    weight_rule = models.CharField(max_length=20, help_text="actual, ideal or adjusted")
    start_rate_text = models.CharField(max_length=40, help_text='e.g. "60 mg/h"')
    titration_step_text = models.CharField(max_length=40)
    max_rate_text = models.CharField(max_length=40)
    min_step_interval_min = models.PositiveSmallIntegerField()
    planned_duration_min = models.PositiveSmallIntegerField()
    bolus_text = models.CharField(max_length=40, blank=True, help_text='e.g. "0.35 mg/kg"')
    premedications = models.JSONField(default=list)
    rescue_medications = models.JSONField(default=list)
    # Soft-limit overrides (quantity, reason_code, free_text) and confirmed wrong-unit
    # guards the physician gave when writing; signing reuses them.
    overrides = models.JSONField(default=list)
    confirmed = models.JSONField(default=list)
    # What the core computed from them: every rate form, totals, titration table, checks.
    computed = models.JSONField()
    # The same check re-run at signing (the weight may have aged); None until signed.
    signed_computed = models.JSONField(null=True, blank=True)

    written_at = models.DateTimeField(auto_now_add=True)
    written_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    ended_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-written_at", "-id"]
        indexes = [models.Index(fields=["status"])]
        # The high-alert drug's two checks, held by the database as well as the services:
        # the second check is another clinician's, and no order is active without a
        # signature and that check. (Completed and discontinued orders are left out: the
        # synthetic cohort's completed orders carry neither.)
        constraints = [
            models.CheckConstraint(
                condition=(Q(signed_by__isnull=True) | Q(verified_by__isnull=True)
                           | ~Q(verified_by=F("signed_by"))),
                name="order_verifier_is_not_signer"),
            models.CheckConstraint(
                condition=(~Q(status__in=["signed", "active"])
                           | Q(signed_by__isnull=False, signed_at__isnull=False)),
                name="order_signed_has_signature"),
            models.CheckConstraint(
                condition=(~Q(status="active")
                           | Q(verified_by__isnull=False, verified_at__isnull=False)),
                name="order_active_is_verified"),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class OrderEvent(AppendOnly):
    """One step of an order's workflow: written, signed, verified, mismatch, discontinued."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on order {self.order_id}"


class LimitEvent(AppendOnly):
    """A limit that was hit, overridden or blocked, kept for quality review."""

    class Context(models.TextChoices):
        WRITE = "write", "Order written"
        SIGN = "sign", "Order signed"
        VERIFY = "verify", "Second check"
        RATE_CHANGE = "rate_change", "Rate change during a session"

    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="limit_events")
    # Set when no order exists (a write that was blocked): the report scopes by site.
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    session_id_value = models.BigIntegerField(null=True, blank=True, db_column="session_id")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="+")
    context = models.CharField(max_length=12, choices=Context.choices)
    quantity = models.CharField(max_length=60)
    kind = models.CharField(max_length=20, help_text="hard, soft or cross-check")
    outcome = models.CharField(max_length=12, help_text="blocked, overridden, confirmed, hit")
    value = models.FloatField()
    bound = models.FloatField(null=True)
    reason_code = models.CharField(max_length=40, blank=True)
    reason_text = models.TextField(blank=True)
    detail = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at"]), models.Index(fields=["quantity"])]

    def __str__(self) -> str:
        return f"{self.outcome} {self.quantity} ({self.context})"
