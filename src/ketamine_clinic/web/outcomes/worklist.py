"""Reads for the follow-up worklist, booster suggestions and one patient's series and
pain trajectory, scoped to the user's sites (the cohort report is :mod:`.selectors`)."""


from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from ketamine_clinic.clinical import outcomes as core
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
from ketamine_clinic.web.outcomes.selectors import (
    CohortFilters,
    CohortSeries,
    effective_only,
    load_cohort,
)
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry


def follow_ups_visible_to(user: User) -> QuerySet[FollowUp]:
    return FollowUp.objects.filter(patient__site__in=user.sites.all())


# Rows per page of the worklist, and patients whose latest series one page of booster
# suggestions looks at: page sizes, so that the page costs the same whatever the cohort.
WORKLIST_PAGE_ROWS = 100
BOOSTER_PAGE_PATIENTS = 250


@dataclass(frozen=True)
class BoosterPage:
    """Booster suggestions among one alphabetical window of the patients treated so far."""

    rows: list[dict[str, Any]]
    number: int  # 1-based
    first: int  # 1-based position of the window's first patient
    last: int
    patients: int  # treated patients at the sites, in all windows

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.last < self.patients


@dataclass(frozen=True)
class Worklist:
    overdue: list[FollowUp]
    due: list[FollowUp]
    boosters: BoosterPage
    today: date
    page: Any  # django.core.paginator.Page of the open follow-ups
    overdue_total: int
    due_total: int


def open_follow_ups(user: User, today: date) -> QuerySet[FollowUp]:
    """Unanswered follow-ups at the user's sites due up to ``due_soon_days`` ahead."""
    horizon = today + timedelta(days=policy.due_soon_days())
    return (follow_ups_visible_to(user)
            .filter(due_on__lte=horizon)
            .filter(~Exists(FollowUpResponse.objects.filter(follow_up=OuterRef("pk"))))
            .select_related("patient", "patient__site", "series", "session")
            .order_by("due_on", "patient__family_name", "id"))


def worklist_for(user: User, today: date | None = None, *, page: Any = 1,
                 booster_page: Any = 1) -> Worklist:
    """One page of the unanswered follow-ups (overdue first, by due date) and one page of
    suggested boosters; each page reads a bounded number of rows."""
    from django.core.paginator import Paginator

    today = today or timezone.localdate()
    open_ = open_follow_ups(user, today)
    counts = open_.aggregate(overdue=Count("id", filter=Q(due_on__lt=today)),
                             total=Count("id"))
    paginator = Paginator(open_, WORKLIST_PAGE_ROWS)
    paginator.count = counts["total"]  # a cached property; counted above with the overdue
    rows = paginator.get_page(page)
    overdue: list[FollowUp] = []
    due: list[FollowUp] = []
    for f in rows:
        (overdue if f.due_on < today else due).append(f)
    site_ids = list(user.sites.values_list("id", flat=True))
    return Worklist(overdue, due, booster_suggestions(site_ids, booster_page), today, rows,
                    counts["overdue"], counts["total"] - counts["overdue"])


def _treated_patients(site_ids: Iterable[int]) -> QuerySet[Patient]:
    """Patients at the sites with at least one infusion started, alphabetically."""
    started = TimelineEntry.objects.filter(session__patient=OuterRef("pk"),
                                           kind="infusion_start")
    return (Patient.objects.filter(site_id__in=list(site_ids)).filter(Exists(started))
            .order_by("family_name", "given_name", "id"))


def booster_suggestions(site_ids: Iterable[int], page: Any = 1) -> BoosterPage:
    """Suggested boosters among one window of ``BOOSTER_PAGE_PATIENTS`` treated patients
    (alphabetical): the same rows as :func:`boosters_suggested` over the whole cohort, a
    window at a time, so that the worklist does not read the whole cohort on every view."""
    from django.core.paginator import Paginator

    site_ids = list(site_ids)
    window = Paginator(_treated_patients(site_ids).values_list("id", flat=True),
                       BOOSTER_PAGE_PATIENTS).get_page(page)
    ids = list(window)
    rows = boosters_suggested(site_ids, patient_ids=ids) if ids else []
    return BoosterPage(rows, window.number, window.start_index(), window.end_index(),
                       window.paginator.count)


def boosters_suggested(site_ids: Iterable[int], patient: Patient | None = None, *,
                       patient_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Patients whose latest series gave relief that has since been lost (loss rule).

    ``patient`` (one patient's page) or ``patient_ids`` restrict what is read to those
    patients' series; otherwise every series at ``site_ids``.
    """
    if patient is not None:
        site_ids, patient_ids = [patient.site_id], [patient.pk]
    cohort = load_cohort(site_ids, CohortFilters(), patient_ids=patient_ids)
    latest: dict[int, CohortSeries] = {}
    for s in cohort.series:
        if s.patient_id not in latest or s.first_at >= latest[s.patient_id].first_at:
            latest[s.patient_id] = s
    rules = {pv.pk: policy.loss_rule_for(pv)
             for pv in ProtocolVersion.objects.filter(
                 pk__in={s.protocol_version_id for s in latest.values()})}
    response = min(core.default_responder_thresholds().percents)
    found = []
    for s in latest.values():
        o = s.to_outcome()
        if o is None:
            continue
        rule = rules.get(s.protocol_version_id, policy.clinic_loss_rule())
        d = core.relief_duration(o, response_percent=response, loss_percent=rule.percent)
        if d.had_relief and d.lost and d.days is not None:
            found.append({"patient_id": s.patient_id, "series_id": s.series_id,
                          "lost_on_day": d.days + o.follow_ups[0].day,
                          "baseline_pain": o.baseline_pain,
                          "latest_pain": o.follow_ups[-1].pain, "rule": rule})
    if found:
        names = Patient.objects.in_bulk([f["patient_id"] for f in found])
        for f in found:
            f["patient"] = names[f["patient_id"]]
    return sorted(found, key=lambda f: (f["patient"].family_name, f["patient"].given_name,
                                        f["patient_id"]))


# --------------------------------------------------------------------------- one patient


def patient_series(patient: Patient) -> list[dict[str, Any]]:
    """The patient's series with planned and given sessions and their follow-ups."""
    started = TimelineEntry.objects.filter(session=OuterRef("pk"), kind="infusion_start")
    series = (patient.series.select_related("protocol_version")
              .annotate(given=Max("sessions__visit_number",
                                  filter=Q(sessions__state__in=("discharged", "transferred",
                                                                "stopped", "recovering")))))
    sessions = (InfusionSession.objects.filter(patient=patient)
                .annotate(was_given=Exists(started)).order_by("scheduled_for", "id"))
    by_series: dict[int, list[Any]] = defaultdict(list)
    for session in sessions:
        by_series[session.series_id].append(session)
    fus: dict[int, list[FollowUp]] = defaultdict(list)
    answered = FollowUpResponse.objects.filter(follow_up=OuterRef("pk"))
    for f in (FollowUp.objects.filter(patient=patient).select_related("session")
              .annotate(answered=Exists(answered)).order_by("due_on", "id")):
        fus[f.series_id].append(f)
    out = []
    for s in series.order_by("created_at", "id"):
        ss = by_series.get(s.pk, [])
        out.append({"series": s, "sessions": ss,
                    "given": sum(1 for x in ss if x.was_given),
                    "follow_ups": fus.get(s.pk, [])})
    return out


def patient_trajectory(patient: Patient) -> dict[str, Any]:
    """Pain over time: session pain entries and follow-up answers, with the sessions."""
    pains = (effective_only(TimelineEntry.objects.filter(session__patient=patient, kind="pain"),
                        TimelineEntry)
             .order_by("occurred_at", "id")
             .values_list("occurred_at", "payload__phase", "payload__nrs", "session_id"))
    answers = (effective_only(FollowUpResponse.objects.filter(follow_up__patient=patient),
                          FollowUpResponse)
               .order_by("answered_at", "id")
               .values_list("answered_at", "follow_up__point", "pain_average_nrs",
                            "pain_worst_nrs"))
    started = TimelineEntry.objects.filter(session=OuterRef("pk"), kind="infusion_start")
    sessions = (InfusionSession.objects.filter(patient=patient).filter(Exists(started))
                .annotate(at=Min("entries__occurred_at", filter=Q(entries__kind="infusion_start")),
                          series_kind=F("series__kind"))
                .order_by("at").values_list("at", "visit_number", "series_id", "series_kind"))
    return {
        "session_pain": [{"at": at, "phase": ph, "nrs": nrs, "session_id": sid}
                         for at, ph, nrs, sid in pains],
        "follow_up_pain": [{"at": at, "point": pt, "average": avg, "worst": worst}
                           for at, pt, avg, worst in answers],
        "sessions": [{"at": at, "visit": v, "series_id": sid, "series_kind": k}
                     for at, v, sid, k in sessions],
    }
