"""A seeded synthetic cohort: patients, series, sessions with pump histories, vital signs,
pain scores, follow-ups, drop-outs and adverse events.

Every patient is drawn from its own generator, seeded by ``(seed, patient index)``, so a
patient is the same whatever the chunk size and any chunk can be made on its own. The
ground truth the tests recover is in :class:`CohortParams` (responder probability and the
Weibull time to loss of relief, per diagnosis group) and in each series' :class:`Truth`.

Relief model (per series): a responder's pain at the end of the series is at least
``responder_reduction[0]`` below baseline; relief lasts a Weibull time D; at a follow-up
before D the reduction stays at or above 30%, at or after D it falls below 30%; a
non-responder's reduction stays below 30% throughout. So with the IMMPACT 30% threshold
as both the response and the loss-of-response rule, relief is observed lost at the first
visit on or after D, and Kaplan–Meier at a visit day estimates P(D > day).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ketamine_clinic.clinical.codes import diagnosis_catalogue
from ketamine_clinic.clinical.monitoring import RateEvent, VitalSigns
from ketamine_clinic.clinical.outcomes import (
    FollowUp,
    SeriesOutcome,
    default_responder_thresholds,
)
from ketamine_clinic.clinical.plausibility import plausible_ranges
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml
from ketamine_clinic.synth.names import fictional_name


def _relief_kept() -> float:
    """Share of baseline pain that stays removed while relief lasts: the lowest IMMPACT
    responder threshold (30% [Dworkin2008]), so relief and its loss line up with it."""
    return float(min(default_responder_thresholds().percents)) / 100


def _defaults() -> Mapping[str, Any]:
    return read_toml("defaults.toml", "ketamine_clinic.synth")


@dataclass(frozen=True)
class CohortParams:
    """Generator parameters; :meth:`default` reads ``synth/defaults.toml``."""

    n_patients: int
    seed: int
    start_date: date
    population: Mapping[str, Any]
    treatment: Mapping[str, Any]
    vitals: Mapping[str, Any]
    response: Mapping[str, Any]
    adverse_events: Mapping[str, float]

    @classmethod
    def default(
        cls, n_patients: int, seed: int, start_date: date = date(2024, 1, 8), **sections: Any
    ) -> CohortParams:
        """Defaults, with any section's keys replaced: ``response={"dropout_per_visit": 0}``."""
        data = _defaults()
        merged = {}
        for name in ("population", "treatment", "vitals", "response", "adverse_events"):
            merged[name] = {**data[name], **sections.pop(name, {})}
        if sections:
            raise UsageError(next(iter(sections)), "is not a parameter section")
        if n_patients < 0:
            raise UsageError("n_patients", "cannot be negative")
        return cls(n_patients, seed, start_date, **merged)

    def true_relief_survival(self, group: str, day: float) -> float:
        """P(D > day): the share of responders still in relief ``day`` days after the
        end of a series (Weibull with the group's median and the shape)."""
        median = float(self.response["relief_median_days"][group])
        shape = float(self.response["relief_weibull_shape"])
        scale = median / math.log(2) ** (1 / shape)
        return math.exp(-((day / scale) ** shape))


@dataclass(frozen=True, slots=True)
class SynthPatient:
    patient_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str  # "female" or "male"
    weight_kg: float
    diagnosis_system: str
    diagnosis_code: str
    diagnosis_group: str  # "crps" or "other"


@dataclass(frozen=True, slots=True)
class SynthAdverseEvent:
    at: datetime
    kind: str


@dataclass(frozen=True, slots=True)
class SynthSession:
    session_id: str
    series_id: str
    patient_id: str
    number: int  # 1-based within the series
    weight_kg: float
    concentration_mg_per_ml: float
    scheduled_start: datetime
    rate_events: tuple[RateEvent, ...]
    vitals: tuple[VitalSigns, ...]  # the first set is the pre-infusion baseline
    moaas: tuple[tuple[datetime, int], ...]
    pain_before: int
    pain_after: int
    adverse_events: tuple[SynthAdverseEvent, ...]

    @property
    def infusion_end(self) -> datetime:
        return self.rate_events[-1].at


@dataclass(frozen=True, slots=True)
class Truth:
    """What the generator decided, for tests to recover."""

    responder: bool
    relief_days: float | None  # D, responders only


@dataclass(frozen=True, slots=True)
class SynthSeries:
    series_id: str
    patient_id: str
    protocol: str
    diagnosis_group: str
    baseline_pain: int
    sessions: tuple[SynthSession, ...]
    follow_ups: tuple[FollowUp, ...]  # days after the end of the last infusion
    last_contact_day: float
    dropped_out: bool
    mme_before: float | None
    mme_after: float | None
    truth: Truth

    def to_outcome(self) -> SeriesOutcome:
        """The record :mod:`ketamine_clinic.clinical.outcomes` works on."""
        return SeriesOutcome(
            series_id=self.series_id,
            patient_id=self.patient_id,
            diagnosis_group=self.diagnosis_group,
            protocol=self.protocol,
            baseline_pain=self.baseline_pain,
            follow_ups=self.follow_ups,
            sessions=len(self.sessions),
            adverse_events=tuple(ae.kind for s in self.sessions for ae in s.adverse_events),
            last_contact_day=self.last_contact_day,
            mme_before=self.mme_before,
            mme_after=self.mme_after,
        )


@dataclass(frozen=True, slots=True)
class SynthPatientRecord:
    patient: SynthPatient
    series: tuple[SynthSeries, ...]

    @property
    def session_count(self) -> int:
        return sum(len(s.sessions) for s in self.series)


@dataclass(frozen=True, slots=True)
class CohortChunk:
    """A batch of patients with everything recorded for them (one bulk insert)."""

    first_index: int
    patients: tuple[SynthPatientRecord, ...]
    sessions: int = field(default=0)


# --------------------------------------------------------------------------- generation


def _codes() -> dict[str, list[tuple[str, str]]]:
    by_group: dict[str, list[tuple[str, str]]] = {"crps": [], "other": []}
    for (system, code), entry in sorted(diagnosis_catalogue().items()):
        if system == "icd10cm":
            by_group["crps" if entry.is_crps else "other"].append((system, code))
    return by_group


class _PatientGenerator:
    def __init__(self, params: CohortParams) -> None:
        self.p = params
        self.codes = _codes()
        self.tz = ZoneInfo(params.population["timezone"])
        self.ae_kinds = sorted(params.adverse_events)
        self.ae_probs = np.array([params.adverse_events[k] for k in self.ae_kinds])

    def patient(self, index: int) -> SynthPatientRecord:
        p, rng = self.p, np.random.default_rng([self.p.seed, index])
        pop = p.population
        group = "crps" if rng.random() < pop["crps_fraction"] else "other"
        system, code = self.codes[group][rng.integers(len(self.codes[group]))]
        sex = "female" if rng.random() < pop["female_fraction"] else "male"
        age_lo, age_hi = pop["age_years"]
        age_days = int(rng.integers(age_lo * 365, age_hi * 365 + 1))
        lo, hi = pop["weight_kg_range"]
        weight = float(np.clip(rng.normal(pop["weight_kg_mean"], pop["weight_kg_sd"]), lo, hi))
        given, family = fictional_name(rng, sex)
        pid = f"P{index:06d}"
        first_day = p.start_date + timedelta(days=int(rng.integers(0, 365)))
        patient = SynthPatient(
            pid,
            given,
            family,
            first_day - timedelta(days=age_days),
            sex,
            round(weight, 1),
            system,
            code,
            group,
        )
        tr = p.treatment
        n_series = int(rng.integers(tr["series_per_patient"][0], tr["series_per_patient"][1] + 1))
        series: list[SynthSeries] = []
        for k in range(n_series):
            start = first_day + timedelta(days=k * int(tr["days_between_series"]))
            s = self.series(rng, patient, f"{pid}-S{k + 1}", start)
            series.append(s)
            if s.dropped_out:  # lost to follow-up: no further series
                break
        return SynthPatientRecord(patient, tuple(series))

    def series(
        self, rng: np.random.Generator, patient: SynthPatient, sid: str, first_day: date
    ) -> SynthSeries:
        p, resp, tr = self.p, self.p.response, self.p.treatment
        group = patient.diagnosis_group
        lo, hi = p.population["baseline_pain_range"]
        baseline = int(rng.integers(lo, hi + 1))
        responder = bool(rng.random() < resp["responder_probability"][group])
        if responder:
            cut = rng.uniform(*resp["responder_reduction"])
            end_pain = math.floor(baseline * (1 - cut))  # floor: reduction >= cut
            shape = float(resp["relief_weibull_shape"])
            scale = float(resp["relief_median_days"][group]) / math.log(2) ** (1 / shape)
            relief_days: float | None = float(scale * rng.weibull(shape))
        else:
            cut = rng.uniform(*resp["non_responder_reduction"])
            end_pain = math.ceil(baseline * (1 - cut))  # ceil: reduction <= cut
            relief_days = None

        n_sessions = int(
            rng.integers(tr["sessions_per_series"][0], tr["sessions_per_series"][1] + 1)
        )
        sessions = []
        for i in range(n_sessions):
            before = round(baseline - (baseline - end_pain) * i / n_sessions)
            after = (
                end_pain
                if i == n_sessions - 1
                else round(baseline - (baseline - end_pain) * (i + 1) / n_sessions)
            )
            sessions.append(
                self.session(rng, patient, sid, i + 1, first_day + timedelta(days=i), before, after)
            )

        # Follow-ups after the end of the last infusion, with drop-outs before any visit
        # after the first.
        follow_ups = [FollowUp(0.0, float(end_pain))]
        dropped = False
        relieved_ceiling = math.floor(baseline * (1 - _relief_kept()))
        for day in resp["follow_up_days"][1:]:
            if rng.random() < resp["dropout_per_visit"]:
                dropped = True
                break
            if relief_days is not None and day < relief_days:
                pain = min(end_pain + int(rng.integers(0, 2)), relieved_ceiling)
            else:
                lost = rng.uniform(*resp["non_responder_reduction"])
                pain = math.ceil(baseline * (1 - lost))  # ceil: reduction <= lost
            follow_ups.append(FollowUp(float(day), float(pain)))

        mme_before = mme_after = None
        if rng.random() < resp["mme_on_opioids_fraction"]:
            mme_before = round(float(rng.uniform(*resp["mme_range"])), 1)
            kept = 1 - rng.uniform(*resp["responder_mme_reduction"]) if responder else 1.0
            mme_after = round(mme_before * kept, 1)
        protocols = tr["protocols"]
        return SynthSeries(
            series_id=sid,
            patient_id=patient.patient_id,
            protocol=protocols[int(rng.integers(len(protocols)))],
            diagnosis_group=group,
            baseline_pain=baseline,
            sessions=tuple(sessions),
            follow_ups=tuple(follow_ups),
            last_contact_day=follow_ups[-1].day,
            dropped_out=dropped,
            mme_before=mme_before,
            mme_after=mme_after,
            truth=Truth(responder, relief_days),
        )

    def session(
        self,
        rng: np.random.Generator,
        patient: SynthPatient,
        sid: str,
        number: int,
        day: date,
        pain_before: int,
        pain_after: int,
    ) -> SynthSession:
        tr, vt = self.p.treatment, self.p.vitals
        start = datetime.combine(day, time(int(tr["session_start_hour"])), self.tz)
        end = start + timedelta(hours=float(tr["infusion_hours"]))
        step = timedelta(minutes=int(tr["titration_interval_min"]))

        rate = int(tr["start_rate_mg_per_h"])
        events = [RateEvent.start(start, rate)]
        for k in range(int(rng.integers(0, int(tr["max_titration_steps"]) + 1))):
            rate += int(tr["titration_step_mg_per_h"])
            events.append(RateEvent.rate_change(start + step * (k + 1), rate))
        if rng.random() < tr["pause_probability"]:
            # One pause after any titration, starting within half the infusion time.
            half = int(float(tr["infusion_hours"]) * 60) // 2
            at = events[-1].at + timedelta(minutes=int(rng.integers(5, half)))
            length = timedelta(minutes=int(rng.integers(*tr["pause_minutes"])))
            if at + length < end:
                events += [RateEvent.pause(at), RateEvent.resume(at + length)]
        events.append(RateEvent.stop(end))

        # Vital signs: a baseline set before the start, then every interval through the
        # infusion and the recovery period.
        interval = int(tr["vitals_interval_min"])
        total_min = int(float(tr["infusion_hours"]) * 60) + int(tr["recovery_minutes"])
        offsets = np.arange(-interval, total_min + 1, interval)
        on_drug = (offsets >= 0) & (offsets <= total_min - int(tr["recovery_minutes"]))
        noise = vt["measurement_noise_sd"]
        n = len(offsets)

        def series_of(name: str, rise: float = 0.0) -> np.ndarray:
            mean, sd = vt[name]
            base = rng.normal(mean, sd)
            values: np.ndarray = base + rise * on_drug + rng.normal(0, noise, n)
            return values

        sbp = series_of("systolic_bp_mmhg", vt["infusion_rise_systolic_mmhg"])
        dbp = series_of("diastolic_bp_mmhg")
        hr = series_of("heart_rate_per_min", vt["infusion_rise_heart_rate_per_min"])
        rr = series_of("respiratory_rate_per_min")
        spo2 = series_of("spo2_percent")

        adverse: list[SynthAdverseEvent] = []
        happened = rng.random(len(self.ae_kinds)) < self.ae_probs
        for kind, yes in zip(self.ae_kinds, happened, strict=True):
            if not yes:
                continue
            idx = int(rng.integers(1, max(2, int(on_drug.sum()))))
            adverse.append(SynthAdverseEvent(start + timedelta(minutes=int(offsets[idx])), kind))
            # Make the chart show the event.
            if kind == "hypertension":
                sbp[idx] += vt["hypertension_rise_systolic_mmhg"]
            elif kind == "tachycardia":
                hr[idx] += vt["tachycardia_rise_heart_rate_per_min"]

        def whole(values: np.ndarray, name: str) -> np.ndarray:
            # Round, and keep inside the data-entry guard so every set is accepted.
            guard = plausible_ranges()[name]
            out: np.ndarray = np.clip(np.rint(values), guard.min, guard.max).astype(int)
            return out

        sbp_i = whole(sbp, "systolic_bp_mmhg")
        dbp_i = np.minimum(whole(dbp, "diastolic_bp_mmhg"), sbp_i - 1)
        vitals = tuple(
            VitalSigns(
                start + timedelta(minutes=int(m)),
                systolic_bp_mmhg=int(s),
                diastolic_bp_mmhg=int(d),
                heart_rate_per_min=int(h),
                respiratory_rate_per_min=int(r),
                spo2_percent=int(o),
            )
            for m, s, d, h, r, o in zip(
                offsets,
                sbp_i,
                dbp_i,
                whole(hr, "heart_rate_per_min"),
                whole(rr, "respiratory_rate_per_min"),
                whole(spo2, "spo2_percent"),
                strict=True,
            )
        )
        moaas = tuple(
            (start + timedelta(minutes=int(m)), 5 if not d else int(rng.integers(3, 6)))
            for m, d in zip(offsets, on_drug, strict=True)
        )
        return SynthSession(
            session_id=f"{sid}-V{number}",
            series_id=sid,
            patient_id=patient.patient_id,
            number=number,
            weight_kg=patient.weight_kg,
            concentration_mg_per_ml=float(tr["concentration_mg_per_ml"]),
            scheduled_start=start,
            rate_events=tuple(events),
            vitals=vitals,
            moaas=moaas,
            pain_before=pain_before,
            pain_after=pain_after,
            adverse_events=tuple(adverse),
        )


def iter_cohort(params: CohortParams, chunk_size: int = 500) -> Iterator[CohortChunk]:
    """The cohort in chunks of ``chunk_size`` patients, ready to bulk-insert.

    Chunks are independent of ``chunk_size``: patient *i* is the same in any chunking.
    Memory is bounded by one chunk; the caller can show progress per chunk
    (``params.n_patients`` patients in all).
    """
    if chunk_size < 1:
        raise UsageError("chunk_size", "must be at least 1")
    gen = _PatientGenerator(params)
    for first in range(0, params.n_patients, chunk_size):
        records = tuple(
            gen.patient(i) for i in range(first, min(first + chunk_size, params.n_patients))
        )
        yield CohortChunk(first, records, sum(r.session_count for r in records))


def generate_patient(params: CohortParams, index: int) -> SynthPatientRecord:
    """Patient ``index`` alone (the same as in :func:`iter_cohort`)."""
    return _PatientGenerator(params).patient(index)


def generate_cohort(params: CohortParams) -> list[SynthPatientRecord]:
    """The whole cohort in memory (for small cohorts; use :func:`iter_cohort` at scale)."""
    return [r for chunk in iter_cohort(params) for r in chunk.patients]


def with_response(params: CohortParams, **response: Any) -> CohortParams:
    """``params`` with some response parameters replaced (for what-if cohorts)."""
    return replace(params, response={**params.response, **response})
