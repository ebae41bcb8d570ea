"""Load a seeded synthetic cohort (``ketamine_clinic.synth``) into the database.

For demos and load tests only: every person is fictional and every row is marked as
synthetic (MRNs ``SYN…``, the inactive ``synthetic.loader`` account as author, orders whose
``computed`` says ``"synthetic": true``). Rows are bulk-inserted chunk by chunk (one
transaction per chunk, a tqdm progress bar); the services are bypassed for speed, so the
loader leaves ONE audit entry that says what it created. Timeline payloads are validated
against the sessions area's contract (``web/sessions/schemas.py``) on the way in.

What is written per synthetic series: a screening (eligible, dated the day before the
series, no facts, ``result`` marked synthetic), the series (loading course first, boosters
after), one completed order, its sessions (state discharged) with check-in, pain before,
pump history (start, titrations, pause/resume, stop), vital signs and MOAA/S every 15 min
(``detail="full"``), adverse events, pain at the end, recovery and discharge; follow-up
points with answers: baseline (MME before), day 1 after each session, weeks 1-12 after the
series until a drop-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from ketamine_clinic.clinical.codes import lookup_diagnosis
from ketamine_clinic.clinical.monitoring import RateEventKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.synth import CohortParams, SynthPatientRecord, iter_cohort
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.orders.models import Order, Series
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpResponse
from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh
from ketamine_clinic.web.patients.models import Diagnosis, Measurement, Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening
from ketamine_clinic.web.protocols.services import protocol_sync_shipped
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.schemas import KINDS
from ketamine_clinic.web.sessions.summaries import outcome_summaries_refresh

LOADER_USERNAME = "synthetic.loader"
MRN_PREFIX = "SYN"

# The generator's adverse-event kinds, as the session payload contract names them.
AE_TYPES = {"nausea": "nausea_vomiting", "psychomimetic": "hallucination_emergence",
            "hypertension": "hypertension", "tachycardia": "tachycardia",
            "headache": "other", "desaturation": "desaturation"}


@dataclass
class LoadSummary:
    patients: int = 0
    series: int = 0
    sessions: int = 0
    timeline_entries: int = 0
    follow_ups: int = 0
    responses: int = 0
    seed: int = 0
    sites: list[str] = field(default_factory=list)
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def loader_user(sites: list[Site]) -> User:
    """The inactive account that authors synthetic rows (it cannot log in)."""
    user = User.objects.filter(username=LOADER_USERNAME).first()
    if user is None:
        user = User(username=LOADER_USERNAME, role=Role.PHYSICIAN, is_active=False,
                    first_name="Synthetic", last_name="data loader")
        user.set_unusable_password()
        user.save()
    user.sites.add(*sites)
    return user


def demo_start_date(today: date | None = None) -> date:
    """A start so that the latest synthetic series and their 12 weeks lie in the past."""
    today = today or timezone.localdate()
    return today - timedelta(days=365 + 3 * 120 + 100)


def _protocols(names: list[str]) -> dict[str, ProtocolVersion]:
    protocol_sync_shipped(actor=Actor(user=None, client_address="synthetic-loader"))
    found = {}
    for name in names:
        pv = ProtocolVersion.objects.filter(name=name).order_by("-version").first()
        if pv is None:
            raise UsageError("protocols", f"no stored protocol named {name!r}")
        found[name] = pv
    return found


def _payload(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return KINDS[kind].model_validate(data).model_dump(mode="json", exclude_defaults=True)


class _Chunk:
    """Rows of one chunk, in dependency order."""

    def __init__(self, loader: CohortLoader) -> None:
        self.L = loader
        self.patients: list[Patient] = []
        self.records: list[SynthPatientRecord] = []

    def write(self, records: tuple[SynthPatientRecord, ...]) -> None:
        L = self.L
        for i, rec in enumerate(records):
            p = rec.patient
            site = L.sites[(L.summary.patients + i) % len(L.sites)]
            self.patients.append(Patient(
                site=site, mrn=f"{MRN_PREFIX}{L.params.seed}-{p.patient_id}",
                given_name=p.given_name, family_name=p.family_name,
                date_of_birth=p.date_of_birth, sex_at_birth=p.sex, created_by=L.user,
                address="synthetic record (fictional person)"))
        Patient.objects.bulk_create(self.patients)
        diagnoses, weights, screenings = [], [], []
        for patient, rec in zip(self.patients, records, strict=True):
            entry = lookup_diagnosis(rec.patient.diagnosis_system, rec.patient.diagnosis_code)
            first = rec.series[0].sessions[0].scheduled_start
            diagnoses.append(Diagnosis(
                patient=patient, system=entry.system, code=entry.code, display=entry.display,
                group=entry.group, laterality=entry.laterality, limb=entry.limb,
                diagnosed_on=max(patient.date_of_birth, first.date() - timedelta(days=400)),
                recorded_by=L.user))
            weights.append(Measurement(
                patient=patient, kind="weight_kg",
                value_number=Decimal(str(rec.patient.weight_kg)).quantize(Decimal("0.01")),
                measured_at=first - timedelta(hours=1), recorded_by=L.user))
        Diagnosis.objects.bulk_create(diagnoses)
        Measurement.objects.bulk_create(weights)

        series_rows: list[tuple[Series, Any]] = []
        screened_at: list[datetime] = []
        for patient, rec in zip(self.patients, records, strict=True):
            for k, s in enumerate(rec.series):
                pv = L.protocols[s.protocol]
                first = s.sessions[0].scheduled_start
                # No facts: stored facts are read back with the core's facts_from_dict,
                # which refuses keys it does not know; the result says it is synthetic.
                screenings.append(Screening(
                    patient=patient, protocol_version=pv,
                    facts={}, facts_sha256="0" * 64, decision="eligible",
                    reasons=[], result={"synthetic": True, "decision": "eligible"},
                    screened_by=L.user, valid_until=first.date() + timedelta(days=90)))
                screened_at.append(first - timedelta(days=1))
                series_rows.append((Series(
                    patient=patient, protocol_version=pv, kind="loading" if k == 0
                    else "booster", planned_sessions=len(s.sessions), spacing_days=1,
                    created_by=L.user, ended_at=s.sessions[-1].infusion_end,
                    ended_reason="synthetic: course completed"), s))
        Screening.objects.bulk_create(screenings)
        # screened_at is set to "now" on insert (auto_now_add): date each screening the day
        # before its series, so that it lies within its own validity.
        Screening.objects.filter(pk__in=[scr.pk for scr in screenings]).update(
            screened_at=Case(*[When(pk=scr.pk, then=Value(at))
                               for scr, at in zip(screenings, screened_at, strict=True)]))
        for (row, _), scr in zip(series_rows, screenings, strict=True):
            row.screening = scr
        Series.objects.bulk_create([r for r, _ in series_rows])

        weight_of = {w.patient_id: w for w in weights}
        orders = []
        for row, s in series_rows:
            s0 = s.sessions[0]
            rates = [float(e.rate_mg_per_h) for e in s0.rate_events
                     if e.rate_mg_per_h is not None]
            conc = s0.concentration_mg_per_ml
            orders.append(Order(
                series=row, patient=row.patient, protocol_version=row.protocol_version,
                status="completed", drug="racemic_ketamine",
                vial_strength_mg_per_ml=Decimal("10"), bag_drug_mg=Decimal(500 * conc),
                bag_volume_ml=Decimal("500"), dosing_basis="fixed_mg_per_h",
                dosing_weight_kg=Decimal(str(s0.weight_kg)),
                weight_measurement=weight_of[row.patient.pk], weight_rule="actual",
                start_rate_text=f"{rates[0]:g} mg/h",
                titration_step_text=f"{L.params.treatment['titration_step_mg_per_h']} mg/h",
                max_rate_text=f"{max(rates):g} mg/h",
                min_step_interval_min=int(L.params.treatment["titration_interval_min"]),
                planned_duration_min=int(float(L.params.treatment["infusion_hours"]) * 60),
                computed={"synthetic": True,
                          "note": "synthetic demo order: not computed by the dosing core",
                          "concentration_mg_per_ml": conc,
                          "start_rate_mg_per_h": rates[0],
                          "start_pump_rate_ml_per_h": rates[0] / conc},
                written_by=L.user, ended_reason="synthetic: series completed"))
        Order.objects.bulk_create(orders)

        sessions: list[tuple[InfusionSession, Any]] = []
        for (row, s), order in zip(series_rows, orders, strict=True):
            for ss in s.sessions:
                sessions.append((InfusionSession(
                    order=order, series=row, patient=row.patient, site=row.patient.site,
                    visit_number=ss.number, scheduled_for=ss.scheduled_start,
                    state="discharged", version=1, created_by=L.user), ss))
        InfusionSession.objects.bulk_create([r for r, _ in sessions], batch_size=2000)
        L.summary.sessions += len(sessions)
        self._timelines(sessions)
        self._follow_ups(series_rows, sessions)
        L.summary.patients += len(self.patients)
        L.summary.series += len(series_rows)

    def _timelines(self, sessions: list[tuple[InfusionSession, Any]]) -> None:
        L = self.L
        recovery = timedelta(minutes=int(L.params.treatment["recovery_minutes"]))
        entries: list[TimelineEntry] = []

        def add(session: InfusionSession, kind: str, at: datetime,
                data: dict[str, Any]) -> None:
            entries.append(TimelineEntry(session=session, kind=kind, occurred_at=at,
                                         payload=_payload(kind, data), recorded_by=L.user,
                                         device_id="synthetic"))

        for row, ss in sessions:
            start = ss.rate_events[0].at
            add(row, "check_in", start - timedelta(minutes=40), {})
            add(row, "pain", start - timedelta(minutes=30), {"nrs": ss.pain_before,
                                                               "phase": "pre"})
            add(row, "pre_assessment", start - timedelta(minutes=20),
                {"iv_access_documented": True, "escort_name": "synthetic escort"})
            conc = ss.concentration_mg_per_ml
            for e in ss.rate_events:
                if e.kind in (RateEventKind.START, RateEventKind.RATE_CHANGE):
                    rate = float(e.rate_mg_per_h)
                    add(row, "infusion_start" if e.kind is RateEventKind.START
                        else "rate_change", e.at,
                        {"rate_mg_per_h": rate, "pump_rate_ml_per_h": rate / conc,
                         "rate_entered": f"{rate:g} mg/h"})
                elif e.kind is RateEventKind.PAUSE:
                    add(row, "pause", e.at, {"reason": "synthetic pause"})
                elif e.kind is RateEventKind.RESUME:
                    add(row, "resume", e.at, {})
                elif e.kind is RateEventKind.STOP:
                    add(row, "stop", e.at, {"reason": "planned end"})
            if L.detail == "full":
                for v in ss.vitals:
                    add(row, "vitals", v.at, {
                        "systolic_bp_mmhg": float(v.systolic_bp_mmhg),
                        "diastolic_bp_mmhg": float(v.diastolic_bp_mmhg),
                        "heart_rate_per_min": float(v.heart_rate_per_min),
                        "respiratory_rate_per_min": float(v.respiratory_rate_per_min),
                        "spo2_percent": float(v.spo2_percent)})
                for at, score in ss.moaas:
                    add(row, "sedation", at, {"scale": "moaas", "score": score})
            for ae in ss.adverse_events:
                add(row, "adverse_event", ae.at, {
                    "type": AE_TYPES.get(ae.kind, "other"), "description": ae.kind,
                    "severity": "mild", "outcome": "resolved"})
            end = ss.infusion_end
            add(row, "pain", end + timedelta(minutes=5), {"nrs": ss.pain_after, "phase": "end"})
            add(row, "begin_recovery", end + timedelta(minutes=1), {})
            add(row, "discharge", end + recovery,
                {"escort_name": "synthetic escort", "instructions_given": True})
        TimelineEntry.objects.bulk_create(entries, batch_size=5000)
        # The services would have worked out the sessions' outcome summaries entry by entry.
        outcome_summaries_refresh({row.series_id for row, _ in sessions})
        L.summary.timeline_entries += len(entries)

    def _follow_ups(self, series_rows: list[tuple[Series, Any]],
                    sessions: list[tuple[InfusionSession, Any]]) -> None:
        L = self.L
        by_day = {p.outcome_day: p for p in policy.points()
                  if p.anchor == "series_end" and p.outcome_day is not None}
        session_rows: dict[int, list[InfusionSession]] = {}
        for session_row, _ in sessions:
            session_rows.setdefault(session_row.series_id, []).append(session_row)
        fus: list[FollowUp] = []
        answers: list[tuple[int, float, float | None]] = []  # (index, pain, mme)

        def add(row: Series, point: str, session: InfusionSession | None, due: date,
                pain: float, mme: float | None) -> None:
            fus.append(FollowUp(patient=row.patient, series=row, session=session,
                                point=point, due_on=due))
            answers.append((len(fus) - 1, pain, mme))

        for row, s in series_rows:
            rows = session_rows[row.pk]
            first_day = s.sessions[0].scheduled_start.date()
            add(row, "baseline", rows[0], first_day, float(s.baseline_pain), s.mme_before)
            later = {f.day: f.pain for f in s.follow_ups}
            last_answered = max(later)
            for ss, srow in zip(s.sessions, rows, strict=True):
                is_last = ss.number == len(s.sessions)
                if is_last and 1 not in later:
                    continue  # dropped out before day 1
                pain = later[1] if is_last else float(ss.pain_after)  # synthetic
                add(row, "day1", srow, ss.scheduled_start.date() + timedelta(days=1), pain,
                    s.mme_after if is_last and last_answered == 1 else None)
            end_day = s.sessions[-1].scheduled_start.date()
            for day, pain in sorted(later.items()):
                point = by_day.get(int(day))
                if point is None:
                    continue
                add(row, point.key, None, end_day + timedelta(days=point.offset_days), pain,
                    s.mme_after if day == last_answered else None)
        FollowUp.objects.bulk_create(fus, batch_size=5000)
        responses = []
        for index, pain, mme in answers:
            fu = fus[index]
            p = round(pain)
            responses.append(FollowUpResponse(
                follow_up=fu, answered_at=timezone.make_aware(
                    datetime.combine(fu.due_on, time(12)),
                    timezone.get_default_timezone()),
                pain_average_nrs=p, pain_worst_nrs=min(10, p + 1),
                opioid_mme_per_day=None if mme is None else Decimal(str(mme)),
                entered_by=L.user, extra={"synthetic": True}))
        FollowUpResponse.objects.bulk_create(responses, batch_size=5000)
        followup_summaries_refresh(row.pk for row, _ in series_rows)
        L.summary.follow_ups += len(fus)
        L.summary.responses += len(responses)


class CohortLoader:
    def __init__(self, params: CohortParams, sites: list[Site], detail: str) -> None:
        if detail not in ("full", "outcomes"):
            raise UsageError("detail", "must be full or outcomes")
        if not sites:
            raise UsageError("sites", "no clinic site to put the patients at")
        self.params = params
        self.sites = sites
        self.detail = detail
        self.user = loader_user(sites)
        self.protocols = _protocols(list(params.treatment["protocols"]))
        self.summary = LoadSummary(seed=params.seed, sites=[s.code for s in sites])


def load_synthetic_cohort(
    *,
    n_patients: int,
    seed: int = 1,
    sites: list[Site] | None = None,
    protocols: list[str] | None = None,
    start_date: date | None = None,
    detail: str = "full",
    chunk_size: int = 250,
    progress: bool = True,
    actor: Actor | None = None,
) -> LoadSummary:
    """Generate ``n_patients`` (seeded) and bulk-insert them with everything they had.

    ``detail="outcomes"`` leaves out the vital signs and sedation scores (for load tests
    of the reports). Refuses to load the same seed twice.
    """
    # The progress bar only when loading from a terminal.
    from tqdm import tqdm

    if n_patients < 1:
        raise UsageError("patients", "must be at least 1")
    sites = sites if sites is not None else list(Site.objects.order_by("code"))
    treatment = {"protocols": protocols} if protocols else {}
    params = CohortParams.default(n_patients, seed, start_date or demo_start_date(),
                                  treatment=treatment)
    if Patient.objects.filter(mrn__startswith=f"{MRN_PREFIX}{seed}-").exists():
        raise UsageError("seed", f"a synthetic cohort with seed {seed} is already loaded")
    loader = CohortLoader(params, sites, detail)
    with tqdm(total=n_patients, unit="patient", disable=not progress,
              desc="synthetic cohort") as bar:
        for chunk in iter_cohort(params, chunk_size=chunk_size):
            with transaction.atomic():
                _Chunk(loader).write(chunk.patients)
            bar.update(len(chunk.patients))
    audit_record(actor=actor or Actor(user=None, client_address="synthetic-loader"),
                 action=AuditAction.COHORT_LOAD_SYNTHETIC, object_type="cohort", object_id=seed,
                 detail={**loader.summary.to_dict(), "detail": detail,
                         "start_date": params.start_date.isoformat(),
                         "protocols": list(params.treatment["protocols"]),
                         "author": LOADER_USERNAME})
    return loader.summary
