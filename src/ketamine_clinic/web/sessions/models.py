"""Infusion sessions: an append-only timeline from which totals and states are derived."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from ketamine_clinic.clinical.bedside.decisions import STATE_WORDS
from ketamine_clinic.clinical.session import SessionState
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.orders.models import Order, Series
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.sessions.schemas import KINDS

# The states of the bedside core's state machine, in its words.
STATE_CHOICES = [(s.value, STATE_WORDS[s]) for s in SessionState]
# What a timeline entry may record: the kinds the sessions area has a payload schema for.
KIND_CHOICES = [(k, k.replace("_", " ")) for k in KINDS]


class InfusionSession(ClinicModel):
    """One visit of a series. ``state`` and ``version`` cache the timeline's result.

    ``version`` increases with every state transition; a writer that read an older version
    loses the race and is told why (optimistic concurrency).
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sessions")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="sessions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sessions")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="sessions")
    visit_number = models.PositiveSmallIntegerField()
    scheduled_for = models.DateTimeField()
    chair = models.CharField(max_length=20, blank=True)
    state = models.CharField(max_length=30, choices=STATE_CHOICES,
                             default=SessionState.SCHEDULED.value)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["scheduled_for", "id"]
        indexes = [models.Index(fields=["site", "state"]),
                   models.Index(fields=["scheduled_for"])]
        constraints = [models.UniqueConstraint(fields=["series", "visit_number"],
                                               name="one_session_per_visit")]

    def __str__(self) -> str:
        return f"session {self.pk} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("session_detail", kwargs={"session_id": self.pk})


class TimelineEntry(AppendOnly):
    """Something that happened in a session, recorded once. Corrections point back."""

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT,
                                related_name="entries")
    kind = models.CharField(max_length=30, choices=KIND_CHOICES)
    occurred_at = models.DateTimeField(help_text="clinical time")
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    payload = models.JSONField(default=dict)
    corrects = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="corrections")
    correction_reason = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    device_id = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["session", "kind", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%H:%M}"


class SessionOutcomeSummary(ClinicModel):
    """What the outcome report reads of one session, derived from its timeline
    (``clinical/outcomes/charted.py``): not a record, a cache of the records. It is worked
    out again from the session's entries in the transaction that appends an entry that
    changes it (``summaries.outcome_summaries_refresh``), so a correction or retraction is
    reflected at once; the report's exact path, which reads the timeline itself, is the
    check (``tests/web/outcomes/test_report.py``)."""

    session = models.OneToOneField(InfusionSession, primary_key=True,
                                   on_delete=models.CASCADE, related_name="outcome_summary")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+")
    # The session's, copied: the report orders the series by their first given session
    # without a join (a session's time is fixed when it is booked).
    scheduled_for = models.DateTimeField()
    started = models.BooleanField(help_text="an infusion start was charted")
    first_given = models.BooleanField(help_text="the given session of the series with the "
                                                "lowest visit number")
    last_given = models.BooleanField(help_text="the given session of the series with the "
                                               "highest visit number")
    pain_before_nrs = models.FloatField(null=True, blank=True)
    pain_at_end_nrs = models.FloatField(null=True, blank=True)
    adverse_event_count = models.PositiveIntegerField(default=0)
    adverse_events = models.JSONField(default=dict, blank=True, help_text="type -> count")

    def __str__(self) -> str:
        return f"outcome summary of session {self.session_id}"


class SeriesOutcomeSummary(ClinicModel):
    """What the outcome report reads of one series' given sessions, derived from their
    summaries (``clinical/outcomes/charted.py``: ``series_summaries``) in the same
    transaction (``summaries.outcome_summaries_refresh`` works out a whole series at once):
    not a record, a cache of the records, so that the report reads one row per series
    instead of grouping the sessions' summaries. Only series with a given session have one."""

    series = models.OneToOneField(Series, primary_key=True, on_delete=models.CASCADE,
                                  related_name="outcome_summary")
    given_sessions = models.PositiveIntegerField()
    # The earliest booked time of its given sessions: the report's order.
    first_given_at = models.DateTimeField()
    pain_before_first_nrs = models.FloatField(null=True, blank=True)
    pain_at_end_last_nrs = models.FloatField(null=True, blank=True)
    last_given_session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                           on_delete=models.CASCADE, related_name="+")
    adverse_events = models.JSONField(default=dict, blank=True, help_text="type -> count")
    # The (pain before, pain at the end) of each given session with both, float64 pairs
    # (``web/lib/floats.py``), so that the report counts the immediate responses from the
    # series' rows instead of grouping the sessions' summaries.
    immediate_pairs_nrs = models.BinaryField(default=b"", blank=True)

    def __str__(self) -> str:
        return f"outcome summary of series {self.series_id}"


class Alarm(AppendOnly):
    """A vital sign beyond the protocol's threshold, or overdue monitoring."""

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT,
                                related_name="alarms")
    entry = models.ForeignKey(TimelineEntry, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="alarms")
    kind = models.CharField(max_length=30, help_text="e.g. vital_high, vital_low, overdue")
    message = models.CharField(max_length=300)
    detail = models.JSONField(default=dict)
    raised_at = models.DateTimeField()

    class Meta:
        ordering = ["-raised_at", "-id"]

    def __str__(self) -> str:
        return self.message


class AlarmAcknowledgement(AppendOnly):
    alarm = models.OneToOneField(Alarm, on_delete=models.PROTECT, related_name="ack")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    response = models.TextField()

    def __str__(self) -> str:
        return f"ack of alarm {self.alarm_id}"
