"""Writes of the follow-up area: the schedule, answers (append-only) and patient links.

Each runs in one transaction and leaves an audit entry.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ketamine_clinic.clinical import clock
from ketamine_clinic.clinical.scales import get_scale
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.orders.models import Series
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpLink, FollowUpResponse
from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh
from ketamine_clinic.web.sessions.hooks import FollowUpBooked
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

# --------------------------------------------------------------------------- schedule


def _given_sessions(series: Series) -> list[InfusionSession]:
    started = TimelineEntry.objects.filter(session=OuterRef("pk"), kind="infusion_start")
    return list(series.sessions.filter(Exists(started)).order_by("visit_number"))


def series_is_complete(series: Series, given: int) -> bool:
    """Ended by a clinician, or all planned sessions given."""
    return series.ended_at is not None or given >= series.planned_sessions


@transaction.atomic
def followups_schedule(*, actor: Actor, series: Series) -> list[FollowUp]:
    """Create the follow-up points that are due by now for ``series`` (idempotent).

    ``baseline`` once the first session exists; ``day1`` after each given session; the
    series-end points (weeks 1-12) once the series is complete. Returns the new rows.
    """
    # of=self: PostgreSQL cannot lock the nullable side of an outer join.
    series = (Series.objects.select_for_update(of=("self",)).select_related("patient__site")
              .get(pk=series.pk))
    sessions = list(series.sessions.order_by("visit_number"))
    given = _given_sessions(series)
    have = set(series.follow_ups.values_list("point", "session_id"))
    new: list[FollowUp] = []

    def add(point: str, due_on: date, session: InfusionSession | None) -> None:
        if (point, session.pk if session else None) not in have:
            new.append(FollowUp(patient=series.patient, series=series, session=session,
                                point=point, due_on=due_on))

    for p in policy.points():
        if p.anchor == "series_start" and sessions:
            add(p.key, timezone.localdate(sessions[0].scheduled_for), sessions[0])
        elif p.anchor == "session":
            for s in given:
                add(p.key, timezone.localdate(s.scheduled_for) + timedelta(days=p.offset_days),
                    s)
        elif p.anchor == "series_end" and given and series_is_complete(series, len(given)):
            end = timezone.localdate(given[-1].scheduled_for)
            add(p.key, end + timedelta(days=p.offset_days), None)
    if new:
        FollowUp.objects.bulk_create(new)
        audit_record(actor=actor.at(series.patient.site.code),
                     action=AuditAction.FOLLOW_UP_SCHEDULE,
                     object_type="series", object_id=series.pk,
                     detail={"patient": series.patient_id,
                             "points": [f"{f.point}@{f.due_on.isoformat()}" for f in new]})
    return new


def followups_at_discharge(actor: Actor, session: InfusionSession) -> list[FollowUpBooked]:
    """The sessions' at-discharge hook (registered in ``apps.py``): book the series'
    follow-ups the discharge makes due, in the discharge's transaction, and name them."""
    labels = policy.point_labels()
    return [FollowUpBooked(f.point, labels.get(f.point, f.point), f.due_on, f.session_id)
            for f in followups_schedule(actor=actor, series=session.series)]


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answers:
    """What the questionnaire asks, validated: 0-10 NRS, global impression, MME per day."""

    pain_average_nrs: int
    pain_worst_nrs: int
    global_impression: int | None = None
    opioid_mme_per_day: Decimal | None = None

    @classmethod
    def check(cls, *, pain_average_nrs: Any, pain_worst_nrs: Any,
              global_impression: Any = None, opioid_mme_per_day: Any = None) -> Answers:
        nrs = get_scale("pain_nrs")
        values = {}
        for name, raw in (("pain_average_nrs", pain_average_nrs),
                          ("pain_worst_nrs", pain_worst_nrs)):
            if raw in (None, ""):
                raise UsageError(name, "is required")
            try:
                value = int(raw)
            except (TypeError, ValueError) as exc:
                raise UsageError(name, f"{raw!r} is not a whole number") from exc
            if not nrs.minimum <= value <= nrs.maximum or str(raw).strip() not in (
                    str(value), f"{value}.0"):
                raise UsageError(name, f"must be a whole number from {nrs.minimum} to "
                                       f"{nrs.maximum}")
            values[name] = value
        if values["pain_worst_nrs"] < values["pain_average_nrs"]:
            raise UsageError("pain_worst_nrs", "cannot be lower than the average pain")
        gi = None
        if global_impression not in (None, ""):
            allowed = {v for v, _ in policy.global_impression_choices()}
            try:
                gi = int(global_impression)
            except (TypeError, ValueError) as exc:
                raise UsageError("global_impression", "is not one of the answers") from exc
            if gi not in allowed:
                raise UsageError("global_impression", "is not one of the answers")
        mme = None
        if opioid_mme_per_day not in (None, ""):
            try:
                mme = Decimal(str(opioid_mme_per_day)).quantize(Decimal("0.1"))
            except (InvalidOperation, ValueError) as exc:
                raise UsageError("opioid_mme_per_day", "is not a number") from exc
            if not mme.is_finite() or mme < 0:
                raise UsageError("opioid_mme_per_day", "cannot be negative")
            if mme > Decimal(str(policy.mme_per_day_max())):
                raise UsageError("opioid_mme_per_day",
                                 f"{mme} mg/day is above {policy.mme_per_day_max():g}; "
                                 "check the number")
        return cls(values["pain_average_nrs"], values["pain_worst_nrs"], gi, mme)


def _check_answered_at(follow_up: FollowUp, answered_at: datetime) -> datetime:
    clock.not_future("answered_at", answered_at, timezone.now())
    if follow_up.session is not None and answered_at < follow_up.session.scheduled_for:
        raise UsageError("answered_at", "is before the session it follows")
    return answered_at


@transaction.atomic
def followup_respond(
    *,
    actor: Actor,
    follow_up: FollowUp,
    answers: Answers,
    answered_at: datetime | None = None,
    corrects: FollowUpResponse | None = None,
    correction_reason: str = "",
    via_patient_link: bool = False,
    extra: dict[str, Any] | None = None,
) -> FollowUpResponse:
    """Record the answers at one follow-up point, or correct earlier answers.

    A follow-up has one effective answer: a second one must be a correction of the
    current one (``corrects``), with a reason; the corrected answer stays visible.
    """
    fu = (FollowUp.objects.select_for_update(of=("self",))
          .select_related("patient__site", "session").get(pk=follow_up.pk))
    answered_at = _check_answered_at(fu, answered_at or timezone.now())
    current = (fu.responses.filter(~Exists(FollowUpResponse.objects.filter(
        corrects=OuterRef("pk")))).order_by("-answered_at", "-id").first())
    if corrects is None and current is not None:
        raise UsageError("follow_up", "is already answered; record a correction instead")
    if corrects is not None:
        if corrects.follow_up_id != fu.pk:
            raise UsageError("corrects", "is an answer to another follow-up")
        if current is None or corrects.pk != current.pk:
            raise UsageError("corrects", "only the current answer can be corrected")
        correction_reason = (correction_reason or "").strip()
        if not correction_reason:
            raise UsageError("correction_reason", "is required for a correction")
    response = FollowUpResponse.objects.create(
        follow_up=fu, answered_at=answered_at,
        pain_average_nrs=answers.pain_average_nrs, pain_worst_nrs=answers.pain_worst_nrs,
        global_impression=answers.global_impression,
        opioid_mme_per_day=answers.opioid_mme_per_day, extra=extra or {},
        entered_by=actor.user, via_patient_link=via_patient_link, corrects=corrects,
        correction_reason=correction_reason)
    followup_summaries_refresh([fu.series_id])
    audit_record(actor=actor.at(fu.patient.site.code),
                 action=AuditAction.FOLLOW_UP_CORRECT if corrects else AuditAction.FOLLOW_UP_ANSWER,
                 object_type="follow_up_response", object_id=response.pk,
                 detail={"patient": fu.patient_id, "follow_up": fu.pk, "point": fu.point,
                         "via_patient_link": via_patient_link,
                         "corrects": corrects.pk if corrects else None})
    return response


# --------------------------------------------------------------------------- patient links


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def followup_link_issue(*, actor: Actor, follow_up: FollowUp) -> tuple[FollowUpLink, str]:
    """A personal link for the patient to answer this one follow-up; the token is shown
    once (only its SHA-256 is stored). Earlier unused links of the follow-up stop working."""
    fu = (FollowUp.objects.select_for_update(of=("self",)).select_related("patient__site")
          .get(pk=follow_up.pk))
    if fu.responses.exists():
        raise UsageError("follow_up", "is already answered")
    now = timezone.now()
    FollowUpLink.objects.filter(follow_up=fu, used_at__isnull=True,
                                expires_at__gt=now).update(expires_at=now)
    raw = secrets.token_urlsafe(32)
    link = FollowUpLink.objects.create(
        follow_up=fu, token_sha256=_digest(raw),
        expires_at=now + timedelta(hours=policy.link_valid_hours()))
    audit_record(actor=actor.at(fu.patient.site.code), action=AuditAction.FOLLOW_UP_LINK_ISSUE,
                 object_type="follow_up", object_id=fu.pk,
                 detail={"patient": fu.patient_id, "link": link.pk,
                         "expires_at": link.expires_at.isoformat()})
    return link, raw


class LinkUnusable(Exception):
    """The link is unknown, expired or used; ``reason`` says which."""

    def __init__(self, reason: str, link: FollowUpLink | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.link = link


def followup_link_get(raw: str, *, client_address: str = "") -> FollowUpLink:
    """The usable link for ``raw``, or :class:`LinkUnusable` (the attempt is audited)."""
    link = (FollowUpLink.objects.select_related("follow_up__patient__site")
            .filter(token_sha256=_digest(raw or "")).first())
    reason = ""
    if link is None:
        reason = "unknown"
    elif link.used_at is not None:
        reason = "used"
    elif link.expires_at <= timezone.now():
        reason = "expired"
    if reason:
        audit_record(actor=Actor(user=None, client_address=client_address,
                                 site_code=link.follow_up.patient.site.code if link else ""),
                     action=AuditAction.FOLLOW_UP_LINK_REFUSED, object_type="follow_up_link",
                     object_id=link.pk if link else "", detail={"reason": reason})
        raise LinkUnusable(reason, link)
    assert link is not None
    return link


@transaction.atomic
def followup_link_answer(*, raw: str, answers: Answers,
                         client_address: str = "") -> FollowUpResponse:
    """The patient's own answers through the link: once, before it expires."""
    link = followup_link_get(raw, client_address=client_address)
    link = FollowUpLink.objects.select_for_update().get(pk=link.pk)
    if link.used_at is not None:  # a second submission that raced the first
        raise LinkUnusable("used", link)
    actor = Actor(user=None, client_address=client_address)
    response = followup_respond(actor=actor, follow_up=link.follow_up, answers=answers,
                                via_patient_link=True)
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    return response
