"""Reads for consent and discharge documents, always scoped to the user's sites.

``consent_current`` is the question the session start gate asks. ``session_summary``
derives what the discharge instruction sheet shows from the session's append-only
timeline, using only effective entries (``clinical.monitoring.fold_corrections``: an entry
corrected by another, or entered in error, no longer counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from ketamine_clinic.clinical import monitoring
from ketamine_clinic.clinical.discharge import NoDrivingAdvice, no_driving_until
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.documents.models import ConsentDocument
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patients_visible_to
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

# --------------------------------------------------------------------------- consent


def consent_current(patient: Patient | int,
                    protocol_version: ProtocolVersion | int) -> Consent | None:
    """The patient's consent in force for exactly this protocol version, or None.

    A consent counts when it was given for this very protocol version (a consent for
    another version, even of the same protocol, does not) and has not been withdrawn.
    The newest such consent is returned.
    """
    return (
        Consent.objects.filter(patient=patient, protocol_version=protocol_version,
                               withdrawal__isnull=True)
        .select_related("explained_by", "protocol_version")
        .order_by("-signed_at", "-id").first()
    )


def consents_of(patient: Patient) -> QuerySet[Consent]:
    """Every consent of a patient, newest first, with what the panel shows."""
    return (Consent.objects.filter(patient=patient)
            .select_related("protocol_version", "explained_by", "withdrawal",
                            "withdrawal__recorded_by")
            .order_by("-signed_at", "-id"))


def consent_get_for(user: User, consent_id: int, actor: Actor) -> Consent:
    """A consent of a patient the user may see; otherwise not found, and audited."""
    consent = (Consent.objects.filter(pk=consent_id,
                                      patient__in=patients_visible_to(user))
               .select_related("patient", "patient__site", "protocol_version",
                               "explained_by").first())
    if consent is None:
        audit_record(actor=actor, action="consent.access_denied", object_type="consent",
                     object_id=consent_id)
        raise Http404("No such consent")
    return consent


def consent_document(consent: Consent) -> ConsentDocument | None:
    """The stored text the consent was signed on."""
    return ConsentDocument.objects.filter(sha256=consent.document_sha256).first()


def protocol_versions_for_consent() -> QuerySet[ProtocolVersion]:
    return ProtocolVersion.objects.order_by("name", "-version")


# --------------------------------------------------------------------------- sessions


def session_get_for(user: User, session_id: int, actor: Actor) -> InfusionSession:
    """A session of a patient the user may see; otherwise not found, and audited."""
    session = (InfusionSession.objects.filter(pk=session_id,
                                              patient__in=patients_visible_to(user))
               .select_related("patient", "patient__site", "site", "order",
                               "order__protocol_version", "series").first())
    if session is None:
        audit_record(actor=actor, action="session.access_denied",
                     object_type="infusion_session", object_id=session_id)
        raise Http404("No such session")
    return session


def _core_entries(rows: list[TimelineEntry]) -> list[monitoring.TimelineEntry[dict[str, Any]]]:
    """The web timeline in the core's terms, in record order.

    The web records a retraction as an ``entered_in_error`` entry that points at the entry
    it retracts; the core expects the retracted entry's kind with ``entered_in_error``.
    """
    kind_of = {row.pk: row.kind for row in rows}
    out = []
    for row in sorted(rows, key=lambda r: r.pk):
        retraction = row.kind == "entered_in_error"
        kind = kind_of.get(row.corrects_id, row.kind) if retraction else row.kind
        out.append(monitoring.TimelineEntry(
            entry_id=str(row.pk), kind=kind, at=row.occurred_at,
            payload=None if retraction else dict(row.payload),
            corrects=str(row.corrects_id) if row.corrects_id else None,
            reason=row.correction_reason, entered_in_error=retraction,
        ))
    return out


def effective_timeline(session: InfusionSession) -> tuple[monitoring.TimelineEntry[Any], ...]:
    """The session's effective entries in clinical-time order."""
    rows = list(session.entries.all())
    return monitoring.effective_entries(_core_entries(rows))


@dataclass(frozen=True)
class GivenMedicine:
    kind: str  # premedication or rescue_medication
    drug: str
    dose: float
    unit: str
    route: str
    at: datetime
    indication: str = ""

    @property
    def dose_text(self) -> str:
        return f"{self.dose:g} {self.unit}"


@dataclass(frozen=True)
class SessionSummary:
    """What the discharge sheet needs, derived from the effective timeline."""

    session: InfusionSession
    drug: str
    infusion_started_at: datetime | None
    infusion_ended_at: datetime | None
    ketamine_total_mg: Fraction | None
    medicines: tuple[GivenMedicine, ...]
    next_session: InfusionSession | None
    no_driving: NoDrivingAdvice | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ended(self) -> bool:
        return self.infusion_ended_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session.pk,
            "drug": self.drug,
            "infusion_started_at": (self.infusion_started_at.isoformat()
                                    if self.infusion_started_at else None),
            "infusion_ended_at": (self.infusion_ended_at.isoformat()
                                  if self.infusion_ended_at else None),
            "ketamine_total_mg": (str(self.ketamine_total_mg)
                                  if self.ketamine_total_mg is not None else None),
            "medicines": [{"kind": m.kind, "drug": m.drug, "dose": m.dose, "unit": m.unit,
                           "route": m.route, "at": m.at.isoformat()} for m in self.medicines],
            "next_session": self.next_session.pk if self.next_session else None,
            "no_driving": self.no_driving.to_dict() if self.no_driving else None,
            "problems": list(self.problems),
        }


_RATE_KINDS = {"infusion_start", "rate_change", "pause", "resume", "stop"}


def _rate_event(entry: monitoring.TimelineEntry[Any]) -> monitoring.RateEvent:
    p = entry.payload or {}
    if entry.kind == "infusion_start":
        return monitoring.RateEvent.start(entry.at, p["rate_mg_per_h"])
    if entry.kind == "rate_change":
        if not p["rate_mg_per_h"]:  # a rate of zero is a pause in the core's terms
            return monitoring.RateEvent.pause(entry.at)
        return monitoring.RateEvent.rate_change(entry.at, p["rate_mg_per_h"])
    if entry.kind == "pause":
        return monitoring.RateEvent.pause(entry.at)
    if entry.kind == "resume":
        return monitoring.RateEvent.resume(entry.at, p.get("rate_mg_per_h") or None)
    return monitoring.RateEvent.stop(entry.at)


def next_session_after(session: InfusionSession) -> InfusionSession | None:
    """The patient's next scheduled session after this one, at any site."""
    return (InfusionSession.objects
            .filter(patient_id=session.patient_id, scheduled_for__gt=session.scheduled_for,
                    state="scheduled")
            .exclude(pk=session.pk).select_related("site").order_by("scheduled_for", "id")
            .first())


def session_summary(session: InfusionSession) -> SessionSummary:
    """End time, what was given, and the next session, from the effective timeline."""
    problems: list[str] = []
    try:
        entries = effective_timeline(session)
    except UsageError as exc:
        entries = ()
        problems.append(f"the session's timeline cannot be read: {exc}")
    rate_entries = [e for e in entries if e.kind in _RATE_KINDS]
    started = next((e.at for e in rate_entries if e.kind == "infusion_start"), None)
    stops = [e.at for e in rate_entries if e.kind == "stop"]
    ended = stops[-1] if stops else None
    total: Fraction | None = None
    order = session.order
    if ended is not None:
        try:
            totals = monitoring.infusion_totals(
                [_rate_event(e) for e in rate_entries],
                weight_kg=order.dosing_weight_kg,
                concentration_mg_per_ml=order.bag_drug_mg / order.bag_volume_ml,
            )
            total = totals.total_mg
        except (UsageError, KeyError) as exc:
            problems.append(f"the total dose cannot be computed: {exc}")
    medicines = tuple(
        GivenMedicine(kind=e.kind, drug=str(e.payload["drug"]), dose=float(e.payload["dose"]),
                      unit=str(e.payload["unit"]), route=str(e.payload["route"]), at=e.at,
                      indication=str(e.payload.get("indication", "")))
        for e in entries if e.kind in ("premedication", "rescue_medication") and e.payload
    )
    return SessionSummary(
        session=session,
        drug=order.drug,
        infusion_started_at=started,
        infusion_ended_at=ended,
        ketamine_total_mg=total,
        medicines=medicines,
        next_session=next_session_after(session),
        # In the clinic's time zone, so that the clock time printed is the one at home.
        no_driving=no_driving_until(timezone.localtime(ended)) if ended is not None else None,
        problems=tuple(problems),
    )
