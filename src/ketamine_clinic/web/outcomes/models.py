"""Scheduled follow-up points and the answers given at them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.orders.models import Series
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.sessions.models import InfusionSession


class FollowUp(ClinicModel):
    """A point at which pain and function are asked (end of infusion, day 1, week 1, ...)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="follow_ups")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="follow_ups")
    session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="follow_ups")
    point = models.CharField(max_length=20, help_text="e.g. end, day1, week1, week12")
    due_on = models.DateField()

    class Meta:
        ordering = ["due_on", "id"]
        indexes = [models.Index(fields=["due_on"])]

    def __str__(self) -> str:
        return f"{self.point} follow-up of series {self.series_id}"


class FollowUpResponse(AppendOnly):
    """Answers at one follow-up point; a correction is a new response that points back."""

    follow_up = models.ForeignKey(FollowUp, on_delete=models.PROTECT, related_name="responses")
    answered_at = models.DateTimeField()
    pain_average_nrs = models.PositiveSmallIntegerField()
    pain_worst_nrs = models.PositiveSmallIntegerField()
    global_impression = models.SmallIntegerField(null=True, blank=True)
    opioid_mme_per_day = models.DecimalField(max_digits=7, decimal_places=1, null=True,
                                             blank=True)
    extra = models.JSONField(default=dict, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    via_patient_link = models.BooleanField(default=False)
    corrects = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="corrections")
    correction_reason = models.TextField(blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["answered_at", "id"]

    def __str__(self) -> str:
        return f"response to follow-up {self.follow_up_id}"


class FollowUpLink(ClinicModel):
    """A personal, expiring, single-purpose link for the patient to answer one follow-up."""

    follow_up = models.ForeignKey(FollowUp, on_delete=models.PROTECT, related_name="links")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link for follow-up {self.follow_up_id}"


class FollowUpCell(ClinicModel):
    """What the outcome report reads of a series' follow-up answers at one point (and the
    session it follows, for a point that follows each session), derived from the answers
    (``clinical.outcomes.charted.follow_up_cells``): not a record, a cache of the records,
    worked out again for the whole series in the transaction that records an answer or its
    correction (``summaries.followup_summaries_refresh``). One row, by column, so that the
    report takes each series' place by place in SQL instead of decoding JSON per cell: the
    pain of the last effective answer and the MME of the last that recorded one, each with
    its answer's id (to put answers that compete for one follow-up day in time order)."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+")
    point = models.CharField(max_length=20)
    session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    pain_nrs = models.FloatField()
    pain_response = models.ForeignKey(FollowUpResponse, on_delete=models.CASCADE,
                                      related_name="+")
    mme_per_day = models.FloatField(null=True, blank=True)
    mme_response = models.ForeignKey(FollowUpResponse, null=True, blank=True,
                                     on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["series", "point"])]

    def __str__(self) -> str:
        return f"{self.point} follow-up cell of series {self.series_id}"


class SeriesFollowUpPlaces(ClinicModel):
    """What the outcome report takes of a series' follow-up answers, place by place
    (``clinical.outcomes.charted.follow_up_places``: the baseline, then each follow-up
    day's column; per place the pain of the last effective answer and the MME of the last
    that recorded one, NaN where none), so that the report reads it in its one row per
    series instead of grouping the cells. Not a record, a cache: worked out again with the
    cells (``summaries.followup_summaries_refresh``) in the transaction that records an
    answer or its correction, and in the one that changes the series' last given session
    (an answer after an earlier session counts nowhere). It holds the last given session
    and the places (``layout``: point and place, in order) it was worked out for; the
    report reads the cells of a series whose row no longer matches them."""

    series = models.OneToOneField(Series, primary_key=True, on_delete=models.CASCADE,
                                  related_name="follow_up_places")
    last_given_session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                           on_delete=models.CASCADE, related_name="+")
    layout = models.CharField(max_length=200)
    # Per place the pain (NRS) and the MME per day, as float64 (little-endian; NaN: none),
    # so that the report takes every series' places into one array in one call.
    values = models.BinaryField(help_text="per place: pain (NRS), MME per day; float64, "
                                          "NaN: none")

    def __str__(self) -> str:
        return f"follow-up places of series {self.series_id}"
