"""Reads for series and outcomes, always scoped to the user's sites (the follow-up
worklist, boosters and one patient's trajectory are :mod:`.worklist`).

The cohort is gathered in a fixed number of queries, whatever its size (pinned in
``tests/web/outcomes/test_report.py``): the series with their diagnosis group and first
session, the sessions actually given, the effective pain and adverse-event entries of
their timelines, and the effective follow-up answers. From those rows each series becomes
one :class:`ketamine_clinic.clinical.outcomes.SeriesOutcome`; all statistics are the core's.

Where each number comes from
----------------------------
* baseline pain: the first ``pain`` entry with phase ``pre`` of the series' first given
  session (an infusion was started); if none was charted, the average pain of the
  ``baseline`` questionnaire.
* day 0: the last ``pain`` entry with phase ``end`` of the series' last given session.
* day 1: the ``day1`` answer after that last session; weeks 1-12: the series' answers, at
  the point's nominal day (``reference/follow_up.toml``), average pain (0-10 NRS).
* opioids: MME per day of the ``baseline`` answer (before) and of the latest answered
  follow-up that recorded it (after).
* sessions: those with an ``infusion_start`` entry; adverse events: effective
  ``adverse_event`` entries, by type.
* "effective": an entry or answer that no later correction or retraction points at.

Why one module (over 600 lines): the cohort is read twice, as records for the exact report
and as arrays for a large cohort, and both reads must take the same rows by the same
rules; they are kept side by side so that a change to one is seen beside the other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Exists, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone

from ketamine_clinic.clinical import outcomes as core
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.orders.models import Series
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.models import FollowUpCell, FollowUpResponse
from ketamine_clinic.web.outcomes.summaries import (
    BATCH_SERIES,
    places_layout,
    report_columns,
)
from ketamine_clinic.web.patients.models import Diagnosis
from ketamine_clinic.web.protocols.models import ProtocolVersion
from ketamine_clinic.web.sessions.models import (
    InfusionSession,
    TimelineEntry,
)

DIAGNOSIS_GROUPS = ("crps", "other")


@dataclass(frozen=True)
class CohortFilters:
    """Which series a report covers. Empty means no restriction (within the user's sites)."""

    sites: tuple[str, ...] = ()
    protocol: str = ""
    diagnosis: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self) -> None:
        if self.diagnosis and self.diagnosis not in DIAGNOSIS_GROUPS:
            raise ValueError(self.diagnosis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sites": list(self.sites),
            "protocol": self.protocol or None,
            "diagnosis": self.diagnosis or None,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }


@dataclass
class SessionPain:
    session_id: int
    visit_number: int
    before: float | None = None
    at_end: float | None = None


@dataclass
class CohortSeries:
    """One series as read from the database, before it becomes a SeriesOutcome."""

    series_id: int
    patient_id: int
    site: str
    protocol: str
    diagnosis_group: str
    first_at: datetime
    protocol_version_id: int
    sessions: dict[int, SessionPain] = field(default_factory=dict)  # by visit number
    adverse_events: list[str] = field(default_factory=list)
    follow_ups: dict[int, float] = field(default_factory=dict)  # outcome day -> pain
    baseline_answer_pain: float | None = None
    mme_before: float | None = None
    mme_after: tuple[int, float] | None = None  # (day, MME)

    @property
    def given(self) -> list[SessionPain]:
        return [self.sessions[v] for v in sorted(self.sessions)]

    @property
    def baseline_pain(self) -> float | None:
        given = self.given
        if given and given[0].before is not None:
            return given[0].before
        return self.baseline_answer_pain

    def outcome_follow_ups(self) -> tuple[core.FollowUp, ...]:
        days = dict(self.follow_ups)
        given = self.given
        if given and given[-1].at_end is not None:
            days[0] = given[-1].at_end
        return tuple(core.FollowUp(float(d), float(p)) for d, p in sorted(days.items()))

    def to_outcome(self) -> core.SeriesOutcome | None:
        baseline = self.baseline_pain
        if baseline is None:
            return None
        return core.SeriesOutcome(
            series_id=str(self.series_id),
            patient_id=str(self.patient_id),
            diagnosis_group=self.diagnosis_group,
            protocol=self.protocol,
            baseline_pain=baseline,
            follow_ups=self.outcome_follow_ups(),
            sessions=len(self.sessions),
            adverse_events=tuple(self.adverse_events),
            mme_before=self.mme_before,
            mme_after=None if self.mme_after is None else self.mme_after[1],
        )


@dataclass
class Cohort:
    filters: CohortFilters
    series: list[CohortSeries]

    def outcomes(self) -> list[core.SeriesOutcome]:
        return [o for s in self.series if (o := s.to_outcome()) is not None]

    @property
    def without_baseline(self) -> int:
        return sum(1 for s in self.series if s.baseline_pain is None)


def visible_sites(user: User) -> QuerySet[Site]:
    return user.sites.all()


def effective_only(qs: QuerySet[Any], model: type[Model]) -> QuerySet[Any]:
    """The rows of ``qs`` that no later correction or retraction points at."""
    return qs.filter(~Exists(model._default_manager.filter(corrects=OuterRef("pk"))))


def _series_queryset(site_ids: Iterable[int], filters: CohortFilters, *,
                     scope_only: bool = False) -> QuerySet[Any]:
    """The series of the report. ``scope_only``: a superset for the other queries to filter
    on, without the costly first-session subquery unless a date filter needs it (series
    never started have no started sessions, so they add no rows there)."""
    crps = Diagnosis.objects.filter(patient=OuterRef("patient_id"), group__startswith="crps",
                                    entered_in_error_at__isnull=True)
    started = TimelineEntry.objects.filter(session=OuterRef("pk"), kind="infusion_start")
    first = (InfusionSession.objects.filter(series=OuterRef("pk")).filter(Exists(started))
             .order_by("scheduled_for").values("scheduled_for")[:1])

    # Series rows, typed QuerySet[Any]: the plugin cannot follow the conditional
    # annotations (first_at, is_crps) that the callers filter and read.
    qs: QuerySet[Any] = Series.objects.filter(patient__site_id__in=list(site_ids))
    if not scope_only or filters.date_from or filters.date_to:
        qs = qs.annotate(first_at=Subquery(first)).filter(first_at__isnull=False)
    if filters.diagnosis or not scope_only:
        qs = qs.annotate(is_crps=Exists(crps))
    if filters.sites:
        qs = qs.filter(patient__site__code__in=filters.sites)
    if filters.protocol:
        qs = qs.filter(protocol_version__name=filters.protocol)
    if filters.diagnosis:
        qs = qs.filter(is_crps=filters.diagnosis == "crps")
    if filters.date_from:
        qs = qs.filter(first_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        qs = qs.filter(first_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return qs


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def load_cohort(site_ids: Iterable[int], filters: CohortFilters, *,
                patient_ids: Iterable[int] | None = None) -> Cohort:
    """Every series at ``site_ids`` matching ``filters`` with what the statistics need;
    with ``patient_ids``, only those patients' series (a patient page reads its own rows).

    Five queries in all, whatever the size of the cohort.
    """
    base = _series_queryset(site_ids, filters)
    scope = _series_queryset(site_ids, filters, scope_only=True)
    if patient_ids is not None:
        base = base.filter(patient_id__in=list(patient_ids))
        scope = scope.filter(patient_id__in=list(patient_ids))
    rows = base.values_list("id", "patient_id", "patient__site__code",
                            "protocol_version__name", "is_crps", "first_at",
                            "protocol_version_id")
    by_id: dict[int, CohortSeries] = {}
    for sid, pid, site, proto, is_crps, first_at, pv_id in rows:
        by_id[sid] = CohortSeries(sid, pid, site, proto, "crps" if is_crps else "other",
                                  first_at, pv_id)
    ids = scope.values("id")

    started = TimelineEntry.objects.filter(session=OuterRef("pk"), kind="infusion_start")
    sessions = (InfusionSession.objects.filter(series__in=ids).filter(Exists(started))
                .values_list("id", "series_id", "visit_number"))
    session_of: dict[int, SessionPain] = {}
    for sess_id, sid, visit in sessions:
        if sid not in by_id:
            continue  # a series outside the report (the scope is a superset)
        sp = SessionPain(sess_id, visit)
        by_id[sid].sessions[visit] = sp
        session_of[sess_id] = sp

    pains = (effective_only(TimelineEntry.objects.filter(session__series__in=ids, kind="pain"),
                        TimelineEntry)
             .order_by("occurred_at", "id")
             # As text (KT): the JSON field would decode each value with json.loads.
             .values_list("session_id", KT("payload__phase"), KT("payload__nrs")))
    for sess_id, phase, nrs in pains:
        charted = session_of.get(sess_id)
        if charted is None or nrs is None or nrs == "null":  # SQLite: a JSON null is 'null'
            continue
        if phase == "pre" and charted.before is None:
            charted.before = float(nrs)
        elif phase == "end":
            charted.at_end = float(nrs)  # the last one charted counts

    events = (effective_only(TimelineEntry.objects.filter(session__series__in=ids,
                                                      kind="adverse_event"), TimelineEntry)
              .values_list("session__series_id", "session_id", KT("payload__type")))
    for sid, sess_id, kind in events:
        if sess_id in session_of:
            by_id[sid].adverse_events.append(str(kind))

    days = {p.key: p.outcome_day for p in policy.points()}
    answers = (effective_only(FollowUpResponse.objects.filter(follow_up__series__in=ids),
                          FollowUpResponse)
               .order_by("answered_at", "id")
               .values_list("follow_up__series_id", "follow_up__point",
                            "follow_up__session_id", "pain_average_nrs",
                            "opioid_mme_per_day"))
    for sid, point, sess_id, pain, mme in answers:
        s = by_id.get(sid)
        if s is None:
            continue  # a series never started, or outside the report
        if point == "baseline":
            s.baseline_answer_pain = float(pain)
            if mme is not None:
                s.mme_before = float(mme)
            continue
        day = days.get(point)
        if day is None:
            continue
        if sess_id is not None:
            given = s.given
            if not given or given[-1].session_id != sess_id:
                continue  # a day-1 answer after an earlier session of the series
        s.follow_ups[day] = float(pain)
        if mme is not None and (s.mme_after is None or day >= s.mme_after[0]):
            s.mme_after = (day, float(mme))
    return Cohort(filters, sorted(by_id.values(), key=lambda s: (s.first_at, s.series_id)))


# --------------------------------------------------------------------------- the report


def protocols_at(site_ids: Iterable[int]) -> list[str]:
    return sorted(set(ProtocolVersion.objects.filter(
        series__patient__site_id__in=list(site_ids)).values_list("name", flat=True)))


@dataclass(frozen=True)
class ReportData:
    """The full cohort report: the core's summary plus what the page adds around it."""

    filters: CohortFilters
    report: core.OutcomeReport
    loss_rule: policy.LossRule
    immediate: dict[str, Any]
    trajectories: dict[str, Any]
    excluded_without_baseline: int

    def to_dict(self) -> dict[str, Any]:
        body = self.report.to_dict()
        # The per-series durations are inputs to the curves, not results for a reader.
        for key in ("relief_by_diagnosis", "relief_by_protocol"):
            body[key].pop("inputs", None)
        return {
            "filters": self.filters.to_dict(),
            "loss_of_response": self.loss_rule.to_dict(),
            "series_without_baseline_pain": self.excluded_without_baseline,
            **body,
            "immediate_response": self.immediate,
            "pain_trajectories": self.trajectories,
        }


def immediate_summary(cohort: Cohort) -> dict[str, Any]:
    """Immediate response of every given infusion with pain before and at its end."""
    bands: dict[str, int] = defaultdict(int)
    reductions: list[float] = []
    for s in cohort.series:
        for sp in s.given:
            if sp.before is None or sp.at_end is None:
                continue
            r = core.immediate_response(sp.before, sp.at_end)
            bands[r.band] += 1
            if r.percent_reduction is not None:
                reductions.append(float(r.percent_reduction))
    n = sum(bands.values())
    thresholds = core.default_responder_thresholds()
    at_least = {f"{float(p):g}": core.proportion(
        sum(1 for r in reductions if r >= float(p)), len(reductions)).to_dict()
        for p in thresholds.percents}
    return {
        "infusions": n,
        "by_band": dict(sorted(bands.items())),
        "mean_percent_reduction": core.mean_with_ci("all", reductions).to_dict(),
        "at_least_percent": at_least,
    }


def trajectory_summary(cohort: Cohort) -> dict[str, Any]:
    """Mean pain (with CI) at baseline and each follow-up day, by diagnosis group."""
    values: dict[str, dict[str, list[float]]] = {g: defaultdict(list) for g in DIAGNOSIS_GROUPS}
    for s in cohort.series:
        o = s.to_outcome()
        if o is None:
            continue
        values[o.diagnosis_group]["baseline"].append(float(o.baseline_pain))
        for f in o.follow_ups:
            values[o.diagnosis_group][f"{f.day:g}"].append(float(f.pain))
    order = ["baseline"] + [f"{d:g}" for d in report_columns()[0]]
    return {
        "points": order,
        "groups": {g: [core.mean_with_ci(k, values[g].get(k, [])).to_dict() for k in order]
                   for g in DIAGNOSIS_GROUPS},
    }


def cohort_loss_rule(cohort: Cohort) -> policy.LossRule:
    """The loss rule for the report: the protocols' own if they agree, else clinic policy."""
    return _loss_rule_of({s.protocol_version_id for s in cohort.series})


def _loss_rule_of(pv_ids: set[int]) -> policy.LossRule:
    rules = {policy.loss_rule_for(pv) for pv in ProtocolVersion.objects.filter(pk__in=pv_ids)}
    return rules.pop() if len(rules) == 1 else policy.clinic_loss_rule()


def outcome_report_for(site_ids: Iterable[int], filters: CohortFilters) -> ReportData:
    """The cohort report over ``site_ids`` (the caller has checked access).

    Read as arrays (:func:`load_cohort_arrays`) and computed by the core's array path; the
    same numbers as :func:`exact_outcome_report_for` (a test compares them)."""
    table = load_cohort_arrays(site_ids, filters)
    rule = _loss_rule_of(table.protocol_version_ids)
    report = core.outcome_report_arrays(table.arrays, loss_percent=rule.percent)
    return ReportData(filters, report, rule, _immediate_of_pairs(table.immediate_pairs),
                      _trajectories_of(table.arrays), table.without_baseline)


def exact_outcome_report_for(site_ids: Iterable[int], filters: CohortFilters) -> ReportData:
    """The cohort report computed one series at a time (:func:`load_cohort` and the core's
    exact path): the reference for :func:`outcome_report_for`."""
    cohort = load_cohort(site_ids, filters)
    rule = cohort_loss_rule(cohort)
    report = core.outcome_report(cohort.outcomes(), loss_percent=rule.percent)
    return ReportData(filters, report, rule, immediate_summary(cohort),
                      trajectory_summary(cohort), cohort.without_baseline)


# --------------------------------------------------------------------------- as arrays


@dataclass(frozen=True)
class CohortTable:
    """The report's cohort as arrays: the series with a baseline pain (``arrays``), the
    (pain before, pain at the end) of every given infusion with both, and what else the
    page needs."""

    arrays: core.CohortArrays
    immediate_pairs: Any  # numpy array: (pain before, pain at the end, infusions) rows
    protocol_version_ids: set[int]
    without_baseline: int


def _rows(qs: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows of a values_list queryset as the database driver gives them (no Django
    converters: the columns are cast to numbers in SQL)."""
    from django.db import connection

    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def load_cohort_arrays(site_ids: Iterable[int], filters: CohortFilters) -> CohortTable:
    """What :func:`load_cohort` reads, gathered into arrays; the definitions are those of
    the module docstring. Three queries, whatever the size of the cohort. What the
    timelines say is read from the series' outcome summaries (``SeriesOutcomeSummary``,
    worked out by the core from its sessions' summaries as each timeline is charted), with
    the series: given sessions, pain before the first, at the end of the last, the last,
    the adverse events and each given session's (pain before, at the end); and so are the
    follow-up answers, place by place (baseline, each follow-up day), from the series'
    follow-up places (``SeriesFollowUpPlaces``, worked out by the core as answers are
    recorded and as the last given session changes). One more query reads cell by cell
    (``FollowUpCell``), with their answers' times, only the series whose places were
    worked out for another last given session or another layout of the places (which the
    writes that change them prevent)."""
    import numpy as np
    from django.db.models import BooleanField, CharField, ExpressionWrapper, F
    from django.db.models.functions import Cast

    site_ids = list(site_ids)
    days, column = report_columns()
    places, layout = places_layout(column)
    scope = _series_queryset(site_ids, filters, scope_only=True)
    # The patients with a CRPS diagnosis, as one uncorrelated subquery (read once into a
    # set) instead of an EXISTS per series, which PostgreSQL costs as a loop (and compiles
    # with JIT).
    crps = ExpressionWrapper(Q(patient_id__in=Diagnosis.objects.filter(
        group__startswith="crps", entered_in_error_at__isnull=True).values("patient_id")),
        output_field=BooleanField())
    # Whether a series' follow-up places hold for the report: worked out for its last
    # given session and in the report's layout (NULL: none, or never given).
    current = ExpressionWrapper(
        Q(follow_up_places__last_given_session=F("outcome_summary__last_given_session"))
        & Q(follow_up_places__layout=layout), output_field=BooleanField())
    # The series with what their given sessions say (their outcome summary; none for a
    # series never started) and their follow-up places, ordered by each series' first
    # given session, then series id: the report's order. The JSON as text: the driver
    # would decode it on PostgreSQL but not on SQLite.
    rows = _rows(scope.annotate(crps=crps, places_current=current)
                 .order_by("outcome_summary__first_given_at", "id").values_list(
                     "id", "patient_id", "protocol_version__name", "crps",
                     "protocol_version_id", "outcome_summary__given_sessions",
                     "outcome_summary__pain_before_first_nrs",
                     "outcome_summary__pain_at_end_last_nrs",
                     "outcome_summary__last_given_session_id",
                     Cast("outcome_summary__adverse_events", CharField()),
                     "follow_up_places__values", "places_current",
                     "outcome_summary__immediate_pairs_nrs"))
    series_rows = [r[:5] for r in rows]
    started_rows = [r for r in rows if r[5] is not None]
    given_rows = [(r[0], *r[5:9]) for r in started_rows]
    event_rows = [(r[0], r[9]) for r in started_rows if r[9] != "{}"]
    placed = [r for r in started_rows if r[10] is not None and r[11]]
    competing = [r[0] for r in started_rows if r[10] is not None and not r[11]]
    # The (pain before, pain at the end) of the given infusions, counted by distinct pair
    # (the immediate response is worked out once per pair; sorted and counted by runs,
    # which costs less than np.unique over rows).
    given_pairs = np.frombuffer(b"".join(r[12] for r in started_rows),
                                dtype="<f8").reshape(-1, 2)
    given_pairs = given_pairs[np.lexsort((given_pairs[:, 1], given_pairs[:, 0]))]
    starts = np.flatnonzero(np.r_[True, (given_pairs[1:] != given_pairs[:-1]).any(axis=1)]
                            if given_pairs.size else np.zeros(0, dtype=bool))
    pairs = np.column_stack([given_pairs[starts],
                             np.diff(np.r_[starts, len(given_pairs)]).astype(float)])
    # The places of all series as one array (NaN: none), without a step per value.
    values = np.frombuffer(b"".join(r[10] for r in placed), dtype="<f8").reshape(
        -1, 2 * len(places))
    place_table = np.column_stack([np.array([r[0] for r in placed], dtype=float), values])
    # The cells of the series whose places do not hold (none, as the writes keep them; a
    # query per batch of their ids, the SQL's parameters).
    competing_rows = [row for k in range(0, max(len(competing), 1), BATCH_SERIES)
                      for row in _rows(FollowUpCell.objects.filter(
                          series_id__in=competing[k:k + BATCH_SERIES] or [-1])
                          .order_by().values_list(
                              "series_id", "point", "session_id", "pain_nrs",
                              "pain_response_id", "mme_per_day", "mme_response_id",
                              "pain_response__answered_at", "mme_response__answered_at"))]
    answered_at = {int(r[4]): r[7] for r in competing_rows}
    answered_at.update({int(r[6]): r[8] for r in competing_rows if r[6] is not None})
    answer_rows = _answer_rows([r[:7] for r in competing_rows], column,
                               {int(r[0]): r[4] for r in given_rows})

    def in_time_order(response_ids: list[int]) -> list[int]:
        return sorted(response_ids, key=lambda pk: (answered_at[pk], pk))

    return _cohort_table(series_rows, given_rows, pairs, event_rows,
                         _PlaceTable(place_table, places, competing), answer_rows,
                         in_time_order, np.array(days, dtype=float))


@dataclass(frozen=True)
class _PlaceTable:
    """The follow-up answers by series and place (column -1: baseline, else the day's
    column): a float array, rows (series, then per place: pain, MME; NaN: none);
    ``competing``: the series whose answers are read cell by cell instead (not in it)."""

    rows: Any
    places: list[int]
    competing: list[int]


def _answer_rows(cell_rows: list[tuple[Any, ...]], column: dict[str, int],
                 last_session: dict[int, Any]) -> list[tuple[Any, ...]]:
    """Rows (series, column, session followed, pain, MME, answer id) from follow-up cells
    (series, point, session, pain, its answer, MME, its answer) (column -1: baseline; -2:
    not an outcome point). A cell whose last answer recorded no MME, after one that did,
    gives a second row for that MME (with the id of its own answer, so that the two are put
    in time order). Answers after a session other than the series' last given one are left
    out (they count nowhere)."""
    rows: list[tuple[Any, ...]] = []
    for sid, point, session, pain, pain_id, mme, mme_id in cell_rows:
        col = column.get(point, -2)
        if col >= 0 and session is not None and session != last_session.get(sid):
            continue
        if mme_id is None or mme_id == pain_id:
            rows.append((sid, col, session, pain, mme, pain_id))
        else:
            rows.append((sid, col, session, pain, None, pain_id))
            rows.append((sid, col, session, None, mme, mme_id))
    return rows


def _competing(keys: Any) -> Any:
    """Which rows share their key with another row."""
    import numpy as np

    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse] > 1


def _ranked(seq: Any, competing: Any, pks: Any, ordered: list[int]) -> Any:
    """``seq`` with the competing rows numbered in the order of ``ordered`` (their ids)."""
    if ordered:
        rank = {pk: k for k, pk in enumerate(ordered)}
        seq = seq.copy()
        seq[competing] = [rank[int(pk)] for pk in pks[competing].tolist()]
    return seq


def _last_by(keys: Any, seq: Any, mask: Any, size: int) -> Any:
    """Per key in ``range(size)``: the row last in ``seq`` order among ``mask`` (-1: none)."""
    import numpy as np

    out = np.full(size, -1)
    rows = np.flatnonzero(mask)
    if rows.size:
        k = keys[rows]
        o = np.lexsort((seq[rows], k))
        k, rows = k[o], rows[o]
        end = np.r_[k[1:] != k[:-1], True]
        out[k[end]] = rows[end]
    return out


def _row_of(sorted_ids: Any, ids: Any) -> tuple[Any, Any]:
    """Row of each of ``ids`` in ``sorted_ids`` (ascending) and whether it is there."""
    import numpy as np

    m = sorted_ids.size
    at = np.minimum(np.searchsorted(sorted_ids, ids), max(m - 1, 0))
    found = sorted_ids[at] == ids if m else np.zeros(len(ids), bool)
    return at, found


def _cohort_table(series_rows: list[tuple[Any, ...]], given_rows: list[tuple[Any, ...]],
                  pairs: Any, event_rows: list[tuple[Any, ...]],
                  places: _PlaceTable, answer_rows: list[tuple[Any, ...]],
                  in_time_order: Callable[[list[int]], list[int]], days: Any) -> CohortTable:
    """The arrays of :func:`load_cohort_arrays` from its query rows (see there)."""
    import numpy as np

    nan = np.nan
    all_ids = np.array([r[0] for r in series_rows], dtype=np.int64)
    order = np.argsort(all_ids)
    all_ids = all_ids[order]
    m = all_ids.size

    def pick(values: Any, index: Any) -> Any:
        """``values[index]``, NaN where the index is -1."""
        if not len(values):
            return np.full(np.shape(index), nan)
        return np.where(index >= 0, values[np.maximum(index, 0)], nan)

    # Per series with a given session (NULL, a missing pain, is NaN here).
    g = np.array(given_rows, dtype=float).reshape(-1, 5)
    g_row, g_found = _row_of(all_ids, g[:, 0].astype(np.int64))
    g, g_row = g[g_found], g_row[g_found]

    def per_series(values: Any, fill: Any = nan) -> Any:
        out = np.full(m, fill)
        out[g_row] = values
        return out

    n_given = per_series(g[:, 1], 0).astype(np.int64)
    started = n_given > 0
    position = per_series(np.arange(g_row.size), np.iinfo(np.int64).max).astype(np.int64)
    pre_first, end_last, last_session = (per_series(g[:, j]) for j in (2, 3, 4))

    # Follow-up answers of the series with a given session whose cells compete.
    ans = np.array(answer_rows, dtype=float).reshape(-1, 6)
    a_row, a_found = _row_of(all_ids, ans[:, 0].astype(np.int64))
    if m:
        a_found &= started[a_row]
    ans, a_row = ans[a_found], a_row[a_found]
    base = ans[:, 1] == -1
    col = ans[:, 1].astype(np.int64)
    fu = (col >= 0) & (np.isnan(ans[:, 2]) | (ans[:, 2] == last_session[a_row]))
    d = days.size
    place = np.where(base | fu, a_row * (d + 1) + col + 1, -1)
    counted = np.flatnonzero(place >= 0)
    a_competing = np.zeros(ans.shape[0], dtype=bool)
    a_competing[counted[_competing(place[counted])]] = True
    answer_order = in_time_order(ans[a_competing, 5].astype(np.int64).tolist())
    seq = _ranked(np.arange(ans.shape[0]), a_competing, ans[:, 5], answer_order)

    baseline_answer = pick(ans[:, 3], _last_by(a_row, seq, base, m))
    mme_before = pick(ans[:, 4], _last_by(a_row, seq, base & ~np.isnan(ans[:, 4]), m))
    cell = _last_by(a_row * d + np.maximum(col, 0), seq, fu, m * d).reshape(m, d)
    pain = pick(ans[:, 3], cell)
    # MME after: the answer at the latest day that recorded it (the last of that day).
    mme_after = pick(ans[:, 4], _last_by(a_row, col * (len(seq) + 1) + seq,
                                         fu & ~np.isnan(ans[:, 4]), m))

    # The other series: at most one cell per place, taken as the database counted it.
    pt = places.rows
    p_row, p_found = _row_of(all_ids, pt[:, 0].astype(np.int64))
    pt, p_row = pt[p_found], p_row[p_found]
    for k, j in enumerate(places.places):  # baseline, then the days in order
        place_pain, place_mme = pt[:, 1 + 2 * k], pt[:, 2 + 2 * k]
        if j < 0:
            baseline_answer[p_row], mme_before[p_row] = place_pain, place_mme
            continue
        pain[p_row, j] = place_pain
        recorded = ~np.isnan(place_mme)
        mme_after[p_row[recorded]] = place_mme[recorded]
    has_end = ~np.isnan(end_last)
    pain[has_end, 0] = end_last[has_end]

    baseline = np.where(np.isnan(pre_first), baseline_answer, pre_first)
    include = started & ~np.isnan(baseline)
    # The report's order: by first given session, then series id.
    rows = np.flatnonzero(include)
    rows = rows[np.argsort(position[rows], kind="stable")]

    # Adverse events of the given sessions, by series and type: each distinct summary
    # (a cohort has few distinct combinations of types and counts) decoded once, then the
    # sessions' counts added up by series without a Python step per session.
    texts: dict[str, int] = {}
    text_code = np.array([texts.setdefault(text, len(texts)) for _, text in event_rows],
                         dtype=np.intp)
    decoded = [json.loads(text) for text in texts]
    types = sorted({str(t) for counts in decoded for t in counts})
    per_text = np.array([[counts.get(t, 0) for t in types] for counts in decoded],
                        dtype=np.int64).reshape(len(decoded), len(types))
    events = np.zeros((m, len(types)), dtype=np.int64)
    if event_rows:
        e_row, e_found = _row_of(all_ids, np.array([sid for sid, _ in event_rows], dtype=np.int64))
        np.add.at(events, e_row[e_found], per_text[text_code[e_found]])

    # The series' columns in id order (codes in label order, as np.unique gives them).
    _, patient_of, name_of, crps_of, version_of = (
        np.array(column, dtype=kind)[order] for column, kind in zip(
            zip(*series_rows, strict=True) if series_rows else ((),) * 5,
            (np.int64, np.int64, str, bool, np.int64), strict=True))
    protocol_labels, proto_code = np.unique(name_of, return_inverse=True)
    protocols = [str(p) for p in protocol_labels.tolist()]
    proto_code = proto_code.reshape(-1).astype(np.intp)
    crps_code = np.where(crps_of, 0, 1).astype(np.intp)
    patient = patient_of
    arrays = core.CohortArrays(
        series_id=tuple(all_ids[rows].astype(str).tolist()),
        patient=patient[rows],
        diagnosis_group=crps_code[rows], diagnosis_labels=DIAGNOSIS_GROUPS,
        protocol=proto_code[rows], protocol_labels=tuple(protocols),
        baseline_pain=baseline[rows], days=days, pain=pain[rows],
        sessions=n_given[rows],
        adverse_event_types=tuple(types), adverse_events=events[rows],
        last_contact_day=np.full(rows.size, nan),
        mme_before=mme_before[rows], mme_after=mme_after[rows])
    return CohortTable(arrays, pairs, set(np.unique(version_of[started]).tolist()),
                       int((started & np.isnan(baseline)).sum()))


def _immediate_of_pairs(pairs: Any) -> dict[str, Any]:
    """:func:`immediate_summary` of the given infusions, from the count of each distinct
    (pain before, pain at the end) (rows of ``pairs``), the exact response worked out once
    per pair."""
    import numpy as np

    bands: dict[str, int] = defaultdict(int)
    reductions: list[float] = []
    for before, after, k in pairs.tolist():
        r = core.immediate_response(before, after)
        bands[r.band] += int(k)
        if r.percent_reduction is not None:
            reductions.extend([float(r.percent_reduction)] * int(k))
    thresholds = core.default_responder_thresholds()
    values = np.array(reductions, dtype=float)
    at_least = {f"{float(p):g}": core.proportion(
        int((values >= float(p)).sum()), len(reductions)).to_dict()
        for p in thresholds.percents}
    return {
        "infusions": sum(bands.values()),
        "by_band": dict(sorted(bands.items())),
        "mean_percent_reduction": core.mean_with_ci("all", reductions).to_dict(),
        "at_least_percent": at_least,
    }


def _trajectories_of(c: core.CohortArrays) -> dict[str, Any]:
    """:func:`trajectory_summary` of the cohort's arrays."""
    import numpy as np

    order = ["baseline"] + [f"{d:g}" for d in c.days.tolist()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for g in DIAGNOSIS_GROUPS:
        code = c.diagnosis_labels.index(g) if g in c.diagnosis_labels else -1
        mine = c.diagnosis_group == code
        cols = [c.baseline_pain[mine]] + [c.pain[mine, j] for j in range(c.days.size)]
        groups[g] = [core.mean_with_ci(k, v[~np.isnan(v)].tolist()).to_dict()
                     for k, v in zip(order, cols, strict=True)]
    return {"points": order, "groups": groups}
