"""Reads of the protocols area: stored protocol versions, a patient's facts for screening,
screenings and whether one is still current. Patient reads are scoped to the user's sites."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from ketamine_clinic.clinical.allergies import (
    AllergyRecord,
    allergy_matches,
    unrecognised_allergies,
)
from ketamine_clinic.clinical.protocol import ProtocolStatus, Severity
from ketamine_clinic.clinical.screening import (
    Currency,
    Decision,
    PatientFacts,
    Reason,
    ScreeningResult,
    decision_with_overrides,
    facts_from_dict,
    screening_currency,
)
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.patients.models import MeasurementKind, Patient
from ketamine_clinic.web.patients.selectors import latest_weight, patients_visible_to
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion, Screening

# The decisions under which treatment may go ahead (after a physician's overrides).
ALLOWS_TREATMENT = (Decision.ELIGIBLE, Decision.ELIGIBLE_WITH_CONDITIONS)


# --------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class VersionRow:
    """One stored version as the protocol list shows it: its status (from its text) and the
    version before it, to compare with."""

    version: ProtocolVersion
    status: str
    previous: ProtocolVersion | None


@dataclass(frozen=True)
class ProtocolEntry:
    """One protocol name with its stored versions, newest first."""

    name: str
    title: str
    rows: list[VersionRow]

    @property
    def versions(self) -> list[ProtocolVersion]:
        return [row.version for row in self.rows]

    @property
    def newest(self) -> ProtocolVersion:
        return self.rows[0].version


def protocol_entries() -> list[ProtocolEntry]:
    """Every protocol name with its versions (one query)."""
    grouped: dict[str, list[ProtocolVersion]] = {}
    for pv in (ProtocolVersion.objects.select_related("published_by")
               .order_by("name", "-version")):
        grouped.setdefault(pv.name, []).append(pv)
    return [ProtocolEntry(name, versions[0].title, [
        VersionRow(newer, newer.protocol().status.value, older)
        for newer, older in zip(versions, [*versions[1:], None], strict=True)])
        for name, versions in grouped.items()]


def protocol_version_get(name: str, version: int) -> ProtocolVersion:
    pv = (ProtocolVersion.objects.select_related("published_by")
          .filter(name=name, version=version).first())
    if pv is None:
        raise Http404(f"No protocol {name} version {version}")
    return pv


def protocol_versions_for_screening() -> list[ProtocolVersion]:
    """Stored versions a new screening may use: the active ones, newest first per name."""
    return [pv for pv in ProtocolVersion.objects.order_by("name", "-version")
            if pv.protocol().status is ProtocolStatus.ACTIVE]


# --------------------------------------------------------------------------- facts


def _icd_codes(patient: Patient) -> tuple[list[str], list[str]]:
    """(ICD-10-CM codes, other codes) of the patient's diagnoses not entered in error."""
    icd: list[str] = []
    other: list[str] = []
    for d in patient.diagnoses.filter(entered_in_error_at__isnull=True):
        (icd if d.system == "icd10cm" else other).append(d.code)
    return sorted(set(icd)), sorted(set(other))


def _medication_names(patient: Patient, on: date) -> list[str]:
    names = set()
    for m in patient.medications.filter(entered_in_error_at__isnull=True):
        if m.stopped_on is None or m.stopped_on > on:
            names.add(m.name)
    return sorted(names)


def registry_facts(patient: Patient, on: date) -> tuple[dict[str, Any], dict[str, str]]:
    """The facts the registry holds on ``on``, as a facts document, with where each came from.

    Nothing missing is filled in: a fact the registry does not hold is ``None`` (unknown).
    The medication list is returned as recorded; whether it is complete is a question for
    the clinician (see :func:`patient_facts`).
    """
    facts: dict[str, Any] = {}
    where: dict[str, str] = {}
    facts["age_years"] = patient.age_on(on)
    where["age_years"] = f"date of birth {patient.date_of_birth.isoformat()}"
    facts["sex_at_birth"] = None if patient.sex_at_birth == "unknown" else patient.sex_at_birth
    where["sex_at_birth"] = "registry"
    weight = latest_weight(patient)
    facts["weight_kg"] = None if weight is None else float(weight.number)
    where["weight_kg"] = ("no weight recorded" if weight is None
                          else f"measured {timezone.localtime(weight.measured_at):%Y-%m-%d}")
    preg = (patient.measurements.filter(kind=MeasurementKind.PREGNANCY_STATUS,
                                        entered_in_error_at__isnull=True)
            .order_by("-measured_at", "-id").first())
    facts["pregnant"] = {"pregnant": True, "not_pregnant": False}.get(
        preg.value_code if preg else "", "unknown")
    where["pregnant"] = ("no pregnancy status recorded" if preg is None else
                         f"{preg.display_value}, recorded "
                         f"{timezone.localtime(preg.measured_at):%Y-%m-%d}")
    icd, other = _icd_codes(patient)
    facts["diagnoses"] = icd or None
    where["diagnoses"] = ("no ICD-10-CM diagnosis recorded" if not icd else "registry")
    if other:
        where["diagnoses"] += (f"; not read by screening (not ICD-10-CM): {', '.join(other)}")
    facts["medications"] = _medication_names(patient, on)
    where["medications"] = "registry (current medications)"
    facts["allergies"] = allergy_facts(patient)
    where["allergies"] = ("registry (recorded allergies)" if facts["allergies"]
                          else "registry: no allergy recorded")
    return facts, where


def allergy_facts(patient: Patient) -> list[dict[str, str]]:
    """The patient's allergy records as the core reads them (``clinical.allergies``).

    Records entered in error are left out (their status would never match anyway). The
    list is what the registry holds; the screening question on ketamine hypersensitivity
    asks the clinician directly, so an empty list is never the only safeguard.
    """
    return [{"substance": a.substance, "code": "", "reaction": a.reaction, "status": "active"}
            for a in patient.allergies.filter(entered_in_error_at__isnull=True)
            .order_by("substance", "id")]


def patient_facts(patient: Patient, answers: dict[str, Any], on: date
                  ) -> tuple[PatientFacts, dict[str, str]]:
    """Registry facts plus the clinician's answers, validated by the core.

    ``answers``: ``medications_complete`` (bool; otherwise the medications are unknown),
    ``conditions`` and ``conditions_absent`` (condition ids), ``budapest`` (checklist or
    ``None``). Raises :class:`UsageError` naming the field for a bad answer.
    """
    facts, where = registry_facts(patient, on)
    if not answers.get("medications_complete"):
        facts["medications"] = None
        where["medications"] = "not confirmed complete: unknown"
    facts["conditions"] = list(answers.get("conditions") or [])
    facts["conditions_absent"] = list(answers.get("conditions_absent") or [])
    facts["budapest"] = answers.get("budapest")
    return facts_from_dict(facts), where


def answers_of(screening: Screening) -> dict[str, Any]:
    """The clinician's answers a stored screening used (to recompute its facts today)."""
    facts = screening.facts or {}
    return {"medications_complete": facts.get("medications") is not None,
            "conditions": facts.get("conditions") or [],
            "conditions_absent": facts.get("conditions_absent") or [],
            "budapest": facts.get("budapest")}


# --------------------------------------------------------------------------- screenings


def screenings_of(patient: Patient) -> QuerySet[Screening]:
    return (Screening.objects.filter(patient=patient)
            .select_related("protocol_version", "screened_by")
            .prefetch_related("overrides__physician")
            .order_by("-screened_at", "-id"))


def screening_get_for(user: User, screening_id: int, actor: Actor, *,
                      read: AuditAction) -> Screening:
    """The screening if the user may see its patient, the read recorded as ``read`` (e.g.
    ``SCREENING_VIEW`` or ``API_SCREENING_VIEW``, filed under the patient's site); otherwise
    not found (and audited)."""
    s = screening_get_unaudited(user, screening_id, actor)
    audit_read(actor=actor, action=read, object_type="screening", object_id=s.pk,
               site_code=s.patient.site.code, patient_id=s.patient_id)
    return s


def screening_get_unaudited(user: User, screening_id: int, actor: Actor) -> Screening:
    """The screening as ``screening_get_for`` finds it, with no read entry: for a write,
    whose service records the entry. A refused access is audited."""
    s = (Screening.objects.select_related("patient__site", "protocol_version", "screened_by")
         .filter(pk=screening_id, patient__in=patients_visible_to(user)).first())
    if s is None:
        audit_record(actor=actor,
                     action=AuditAction.SCREENING_ACCESS_DENIED, object_type="screening",
                     object_id=screening_id)
        raise Http404("No such screening")
    return s


def stored_result(screening: Screening) -> ScreeningResult:
    """The core's result rebuilt from what was stored (not re-run: the drug dictionary and
    interaction table may have changed since, and the stored reasons are the record)."""
    data = screening.result or {}
    reasons = tuple(
        Reason(r["rule"], Severity(r["severity"]), r["message"], r["source"],
               r.get("find_out", ""))
        for r in screening.reasons or ())
    protocol = data.get("protocol", {})
    return ScreeningResult(
        decision=Decision(screening.decision), reasons=reasons,
        protocol_name=protocol.get("name", screening.protocol_version.name),
        protocol_version=protocol.get("version", screening.protocol_version.version),
        protocol_sha256=protocol.get("sha256", screening.protocol_version.sha256),
        validity_days=int(data.get("validity_days", 0)),
        facts=facts_from_dict(screening.facts) if screening.facts else PatientFacts())


@dataclass
class ScreeningStatus:
    """A stored screening judged today: effective decision, currency, and why not current."""

    screening: Screening
    effective: Decision
    currency: Currency
    changed: list[str] = field(default_factory=list)
    open_reviews: list[str] = field(default_factory=list)

    @property
    def allows_treatment(self) -> bool:
        return self.effective in ALLOWS_TREATMENT

    @property
    def current(self) -> bool:
        return self.allows_treatment and self.currency.current

    @property
    def out_of_date(self) -> list[str]:
        """Why a new screening is needed (empty when the screening still stands)."""
        out = []
        for reason in self.currency.reasons:
            if reason.startswith("the patient's facts have changed") and self.changed:
                reason = f"{reason} ({', '.join(self.changed)})"
            out.append(reason)
        return out

    @property
    def decision_block(self) -> str:
        """Why the decision itself stops treatment ("" when it allows it)."""
        if self.effective is Decision.INELIGIBLE:
            return "the decision is ineligible"
        if self.effective is Decision.NEEDS_PHYSICIAN_REVIEW:
            return f"awaiting a physician's review of {', '.join(self.open_reviews)}"
        return ""

    @property
    def blocking(self) -> list[str]:
        """Why treatment may not go ahead under this screening."""
        return [*self.out_of_date, *([self.decision_block] if self.decision_block else [])]


_FACT_LABELS = {"age_years": "age", "sex_at_birth": "sex at birth", "pregnant": "pregnancy",
                "weight_kg": "weight", "diagnoses": "diagnoses", "medications": "medications",
                "allergies": "allergies"}


def screening_status(screening: Screening, *, today: date | None = None,
                     for_new_series: bool | None = None) -> ScreeningStatus:
    """Judge a stored screening today.

    ``for_new_series``: ``None`` decides from the record (a screening already used by a
    series that has ended cannot start another one).
    """
    today = today or timezone.localdate()
    result = stored_result(screening)
    overridden = [o.rule for o in screening.overrides.all()]
    effective = decision_with_overrides(result, overridden)
    now, _where = patient_facts(screening.patient, answers_of(screening), on=today)
    if for_new_series is None:
        ended = [s.ended_at for s in screening.series.all()]
        for_new_series = bool(ended) and all(e is not None for e in ended)
    screened_on = timezone.localdate(screening.screened_at)
    currency = screening_currency(
        screened_on=screened_on, today=max(today, screened_on),
        validity_days=(screening.valid_until - screened_on).days,
        facts_sha256_used=screening.facts_sha256, facts_now=now,
        for_new_series=for_new_series)
    used, current = screening.facts or {}, now.to_dict()
    changed = [_FACT_LABELS.get(k, k) for k in _FACT_LABELS if used.get(k) != current.get(k)]
    open_reviews = [r.rule for r in result.reasons
                    if r.overridable and r.rule not in overridden]
    return ScreeningStatus(screening, effective, currency, changed, open_reviews)


def screening_latest(patient: Patient, protocol_version: ProtocolVersion) -> Screening | None:
    return (Screening.objects.filter(patient=patient, protocol_version=protocol_version)
            .select_related("protocol_version", "patient")
            .order_by("-screened_at", "-id").first())


def screening_latest_status(patient: Patient, protocol_version: ProtocolVersion, *,
                            series: Any = None, today: date | None = None
                            ) -> ScreeningStatus | None:
    """The patient's newest screening under ``protocol_version``, judged for ``series``
    (``None``: a new series), or ``None`` if the patient was never screened under it.

    ``status.current`` is what :func:`screening_current` answers; ``status.blocking`` says
    why not, in words for a refusal message.
    """
    s = screening_latest(patient, protocol_version)
    if s is None:
        return None
    used_by = list(s.series.values_list("pk", flat=True))
    # Another series has used it: a new series needs a new screening.
    new_series = bool(used_by) and (series is None or series.pk not in used_by)
    return screening_status(s, today=today, for_new_series=new_series)


def screening_current(patient: Patient, protocol_version: ProtocolVersion, *,
                      series: Any = None, today: date | None = None) -> Screening | None:
    """The screening that lets ``patient`` be treated under ``protocol_version``, or ``None``.

    It is the patient's newest screening under that exact version whose effective decision
    (after physicians' overrides) allows treatment, that is within the protocol's validity
    period, and whose facts are unchanged in the registry. With ``series=None`` the question
    is for a new series, which needs a screening no series has used; with a series, the
    screening must be that series' own or unused.
    """
    status = screening_latest_status(patient, protocol_version, series=series, today=today)
    return status.screening if status is not None and status.current else None


@dataclass
class PanelRow:
    name: str
    status: ScreeningStatus
    newer_version: ProtocolVersion | None


def screening_panel_rows(patient: Patient) -> list[PanelRow]:
    """For each protocol the patient was screened under: the newest screening, judged today."""
    newest_by_name: dict[str, Screening] = {}
    for s in screenings_of(patient).prefetch_related("series"):
        newest_by_name.setdefault(s.protocol_version.name, s)
    rows = []
    for name, s in newest_by_name.items():
        newer = (ProtocolVersion.objects.filter(name=name,
                                                version__gt=s.protocol_version.version)
                 .order_by("-version").first())
        if newer is not None and newer.protocol().status is not ProtocolStatus.ACTIVE:
            newer = None
        rows.append(PanelRow(name, screening_status(s), newer))
    return rows


# --------------------------------------------------------------------------- allergies


@dataclass(frozen=True)
class AllergyAlert:
    drug: str
    role: str  # "infused drug", "premedication", "rescue drug"
    message: str


@dataclass(frozen=True)
class AllergySummary:
    """A patient's recorded allergies and which of the listed drugs they forbid."""

    records: list[Any]  # Allergy rows not entered in error
    alerts: list[AllergyAlert]
    unrecognised: list[str]  # substances the drug dictionary does not name


def allergy_records(patient: Patient) -> list[AllergyRecord]:
    """The patient's allergies as the core reads them (``clinical.allergies``): every record
    not entered in error, ``active``. For the bedside: ``is_allergic(allergy_records(p),
    drug)`` before a drug is given."""
    return [AllergyRecord(a["substance"], reaction=a["reaction"], status=a["status"])
            for a in allergy_facts(patient)]


def allergy_summary(patient: Patient, drugs: list[tuple[str, str]]) -> AllergySummary:
    """``drugs``: (name, role) pairs, e.g. the order's ketamine, premedication and rescue
    drugs. Matching is the core's (``clinical.allergies``)."""
    rows = list(patient.allergies.filter(entered_in_error_at__isnull=True)
                .order_by("substance", "id"))
    records = [AllergyRecord(a.substance, reaction=a.reaction) for a in rows]
    alerts: list[AllergyAlert] = []
    for name, role in drugs:
        for match in allergy_matches(records, name):
            alerts.append(AllergyAlert(match.drug, role, match.message))
    return AllergySummary(rows, alerts, [r.substance for r in unrecognised_allergies(records)])


def order_allergy_summary(order: Any) -> AllergySummary:
    """The allergy summary for an order: ketamine, then its premedication and rescue drugs."""
    drugs = [("ketamine", "infused drug")]
    drugs += [(m["drug"], "premedication") for m in order.premedications or []]
    drugs += [(m["drug"], "rescue drug") for m in order.rescue_medications or []]
    return allergy_summary(order.patient, drugs)


# --------------------------------------------------------------------------- consent
# Consent currency lives with the Consent model: the session start gate, scheduling and the
# documents area all ask it.


def consent_current(patient: Patient | int,
                    protocol_version: ProtocolVersion | int) -> Consent | None:
    """The patient's consent in force for exactly this protocol version, or None.

    The newest consent given for this very protocol version decides (a consent for another
    version, even of the same protocol, does not count). If the patient withdrew it, there
    is no consent in force: a withdrawal is never undone by an older signature.
    """
    latest = (
        Consent.objects.filter(patient=patient, protocol_version=protocol_version)
        .select_related("explained_by", "protocol_version", "withdrawal")
        .order_by("-signed_at", "-id").first()
    )
    if latest is None or hasattr(latest, "withdrawal"):
        return None
    return latest


def consents_of(patient: Patient) -> QuerySet[Consent]:
    """Every consent of a patient, newest first, with what the panel shows."""
    return (Consent.objects.filter(patient=patient)
            .select_related("protocol_version", "explained_by", "withdrawal",
                            "withdrawal__recorded_by")
            .order_by("-signed_at", "-id"))


def consents_in_force(consents: list[Consent]) -> set[int]:
    """Ids of the consents in force among a patient's consents (``consents_of`` order):
    per protocol version the newest decides, and none is in force if it was withdrawn."""
    seen: set[int] = set()
    out: set[int] = set()
    for c in consents:
        if c.protocol_version_id in seen:
            continue
        seen.add(c.protocol_version_id)
        if not hasattr(c, "withdrawal"):
            out.add(c.pk)
    return out
