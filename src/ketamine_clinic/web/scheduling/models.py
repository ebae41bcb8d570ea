"""Chairs, opening hours and booked visits.

A visit holds a chair from its start until the planned infusion and the protocol's minimum
observation time are over (``ends_at``); both lengths are stored on the visit with the
protocol version they came from. A visit is booked, possibly rescheduled, and then either
cancelled (with a reason) or started, which opens its infusion session. A cancelled visit
never becomes a session, so it is never counted as an infusion given. Every step is a
``VisitEvent`` row; the visit row carries the latest state for querying.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.orders.models import Order, Series
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.sessions.models import InfusionSession


class Chair(ClinicModel):
    """An infusion chair (a bookable resource) of a site. Retired, never deleted."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="chairs")
    code = models.CharField(max_length=20, help_text='as staff say it, e.g. "3" or "B2"')
    label = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "code"]
        constraints = [models.UniqueConstraint(fields=["site", "code"],
                                               name="one_chair_code_per_site")]

    def __str__(self) -> str:
        return f"chair {self.code}"


class OpeningHours(ClinicModel):
    """One opening window of a site on a weekday, in the site's own time zone."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["site", "weekday", "opens_at"]
        constraints = [models.CheckConstraint(condition=models.Q(opens_at__lt=models.F(
            "closes_at")), name="opening_hours_open_before_close")]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class SiteClosure(ClinicModel):
    """A day a site is closed although its weekday has hours (a holiday)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="closures")
    day = models.DateField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["site", "day"]
        constraints = [models.UniqueConstraint(fields=["site", "day"],
                                               name="one_closure_per_site_day")]

    def __str__(self) -> str:
        return f"closed {self.day} ({self.reason})"


class Visit(ClinicModel):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        STARTED = "started", "Started"

    class CancelReason(models.TextChoices):
        NO_SHOW = "no_show", "No-show"
        PATIENT_REQUEST = "patient_request", "Patient request"
        CLINICAL = "clinical", "Clinical reason"
        CLINIC = "clinic", "Clinic closed or chair unavailable"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visits")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="visits")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="visits")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="visits")
    chair = models.ForeignKey(Chair, on_delete=models.PROTECT, related_name="visits")
    number = models.PositiveSmallIntegerField(help_text="planned place in the series")
    starts_at = models.DateTimeField()
    infusion_ends_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="chair free again: infusion plus observation")
    # The inputs of the visit's length, with the protocol version they came from.
    infusion_min = models.PositiveSmallIntegerField()
    recovery_min = models.PositiveSmallIntegerField()
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT,
                                         related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    cancel_note = models.TextField(blank=True)
    session = models.OneToOneField(InfusionSession, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="visit")
    # The pre-visit checklist as answered (by phone or at the desk), and who answered it.
    checklist = models.JSONField(default=dict, blank=True)
    checklist_at = models.DateTimeField(null=True, blank=True)
    checklist_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField(auto_now_add=True)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            # The overlap query: a chair's (or a site's) booked visits that cross a window.
            models.Index(fields=["chair", "status", "starts_at", "ends_at"],
                         name="visit_chair_overlap"),
            models.Index(fields=["site", "status", "starts_at"], name="visit_site_day"),
            models.Index(fields=["patient", "status", "starts_at"], name="visit_patient"),
        ]

    def __str__(self) -> str:
        return f"visit {self.number} of series {self.series_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("visit_detail", kwargs={"visit_id": self.pk})


class VisitEvent(AppendOnly):
    """One step of a visit: booked, rescheduled, cancelled, checklist, started."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} of visit {self.visit_id}"
