"""Reads for consent and discharge documents, always scoped to the user's sites.

Consent currency (``consent_current``) lives with the Consent model in the protocols area.
``session_summary`` derives what the discharge instruction sheet shows from the session's
append-only timeline, using only effective entries (``clinical.monitoring.fold_corrections``,
applied by the sessions area's ``fold``: an entry corrected by another, or entered in error,
no longer counts). Sessions are reached through the sessions area's
``session_get_unaudited`` (site-scoped, a refusal audited), re-exported here for the
documents views, which record the sheet's read with ``sheet_read_record``.
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
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_read, audit_record
from ketamine_clinic.web.documents.consent import aim_line
from ketamine_clinic.web.documents.models import ConsentDocument
from ketamine_clinic.web.documents.protocol_facts import protocol_facts
from ketamine_clinic.web.patients.selectors import patients_visible_to
from ketamine_clinic.web.protocols.models import Consent, ProtocolVersion
from ketamine_clinic.web.protocols.services import protocol_current
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry
from ketamine_clinic.web.sessions.selectors import fold as session_fold
from ketamine_clinic.web.sessions.selectors import rate_event_of
from ketamine_clinic.web.sessions.selectors import session_get_unaudited as session_get_unaudited

# --------------------------------------------------------------------------- consent


def consent_get_for(user: User, consent_id: int, actor: Actor, *,
                    read: AuditAction) -> Consent:
    """A consent of a patient the user may see, the read recorded as ``read`` (e.g.
    ``CONSENT_VIEW`` or ``API_CONSENT_VIEW``, filed under the patient's site); otherwise not
    found, and audited."""
    consent = consent_get_unaudited(user, consent_id, actor)
    audit_read(actor=actor, action=read, object_type="consent", object_id=consent.pk,
               site_code=consent.patient.site.code, patient_id=consent.patient_id)
    return consent


def consent_get_unaudited(user: User, consent_id: int, actor: Actor) -> Consent:
    """The consent as ``consent_get_for`` finds it, with no read entry: for a write (a
    withdrawal), whose service records the entry. A refused access is audited."""
    consent = (Consent.objects.filter(pk=consent_id,
                                      patient__in=patients_visible_to(user))
               .select_related("patient", "patient__site", "protocol_version",
                               "explained_by").first())
    if consent is None:
        audit_record(actor=actor, action=AuditAction.CONSENT_ACCESS_DENIED, object_type="consent",
                     object_id=consent_id)
        raise Http404("No such consent")
    return consent


def sheet_read_record(actor: Actor, session: InfusionSession, action: AuditAction,
                      **detail: Any) -> None:
    """Record a read of the session's discharge instruction sheet (subject
    ``infusion_session``), filed under the patient's site."""
    audit_read(actor=actor, action=action, object_type="infusion_session",
               object_id=session.pk, site_code=session.patient.site.code,
               patient_id=session.patient_id, detail=detail)


def consent_document(consent: Consent) -> ConsentDocument | None:
    """The stored text the consent was signed on."""
    return ConsentDocument.objects.filter(sha256=consent.document_sha256).first()


def protocol_versions_for_consent() -> QuerySet[ProtocolVersion]:
    return ProtocolVersion.objects.order_by("name", "-version")


# --------------------------------------------------------------------------- sessions

def effective_timeline(session: InfusionSession) -> list[TimelineEntry]:
    """The session's effective entries in clinical-time order.

    The folding is the sessions area's (``sessions.selectors.fold``, which applies the
    core's ``fold_corrections``), so the sheet and the bedside chart agree on what counts.
    """
    views = session_fold(list(session.entries.order_by("id")))
    return sorted((v.entry for v in views
                   if v.status == "effective" and v.entry.kind != "entered_in_error"),
                  key=lambda e: (e.occurred_at, e.pk))


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
    # This session's place among the series' infusions actually given (an effective
    # infusion start), not its booking number; None while it has not started.
    infusion_number: int | None = None
    planned_sessions: int | None = None

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
        entries = []
        problems.append(f"the session's timeline cannot be read: {exc}")
    rate_entries = [e for e in entries if e.kind in _RATE_KINDS]
    started = next((e.occurred_at for e in rate_entries if e.kind == "infusion_start"), None)
    stops = [e.occurred_at for e in rate_entries if e.kind == "stop"]
    ended = stops[-1] if stops else None
    total: Fraction | None = None
    order = session.order
    if ended is not None:
        try:
            totals = monitoring.infusion_totals(
                [rate_event_of(e) for e in rate_entries],
                weight_kg=order.dosing_weight_kg,
                concentration_mg_per_ml=order.bag_drug_mg / order.bag_volume_ml,
            )
            total = totals.total_mg
        except (UsageError, KeyError) as exc:
            problems.append(f"the total dose cannot be computed: {exc}")
    medicines = tuple(
        GivenMedicine(kind=e.kind, drug=str(e.payload["drug"]), dose=float(e.payload["dose"]),
                      unit=str(e.payload["unit"]), route=str(e.payload["route"]),
                      at=e.occurred_at, indication=str(e.payload.get("indication", "")))
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
        infusion_number=infusion_number(session) if started is not None else None,
        planned_sessions=session.series.planned_sessions,
    )


def infusion_number(session: InfusionSession) -> int:
    """1 + the infusions given earlier in the same series: sessions scheduled before this
    one whose effective timeline has an infusion start (a cancelled or not-started visit,
    or a start entered in error, does not count)."""
    earlier = (InfusionSession.objects
               .filter(series_id=session.series_id, scheduled_for__lte=session.scheduled_for)
               .exclude(pk=session.pk).order_by("scheduled_for", "id"))
    given = sum(1 for s in earlier
                if s.scheduled_for < session.scheduled_for or s.pk < session.pk
                if any(e.kind == "infusion_start" for e in effective_timeline(s)))
    return given + 1


def protocol_aims() -> list[tuple[str, str]]:
    """(title, what the infusion aims for) of each protocol's current version, from the
    protocol's own data: the education pages show what the consent says."""
    out = []
    names = ProtocolVersion.objects.values_list("name", flat=True).distinct().order_by("name")
    for name in names:
        pv = protocol_current(name)
        try:
            out.append((pv.title, aim_line(protocol_facts(pv))))
        except (UsageError, ValueError, KeyError):
            continue  # a version the loader refuses has no aim to show
    return out
