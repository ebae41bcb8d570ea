"""Where each resource type's rows come from: a batch of patients, read in a fixed number
of queries, mapped by :mod:`resources` on demand.

A :class:`Batch` serves reads (one patient, perhaps one session), searches (one patient)
and the bulk export (hundreds of patients at a time): the same rows, the same mapping.
Rows are scoped by the caller (the patients given are already the ones the user may see).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet

from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.documents.models import ConsentDocument
from ketamine_clinic.web.fhir import chart as charts
from ketamine_clinic.web.fhir import resources as R
from ketamine_clinic.web.orders.models import Order
from ketamine_clinic.web.outcomes.models import FollowUpResponse
from ketamine_clinic.web.patients.models import (
    Allergy,
    DemographicAmendment,
    Diagnosis,
    Measurement,
    Patient,
)
from ketamine_clinic.web.protocols.models import Consent
from ketamine_clinic.web.sessions.models import InfusionSession, TimelineEntry

Json = dict[str, Any]

# Types in a patient's compartment, in the order an export writes them.
PATIENT_TYPES = ("Patient", "Condition", "AllergyIntolerance", "Observation",
                 "MedicationRequest", "MedicationAdministration", "Encounter", "Procedure",
                 "Consent", "QuestionnaireResponse", "Provenance")
# Types other resources refer to; an export writes the ones its resources name.
SHARED_TYPES = ("Practitioner", "Organization", "Questionnaire")
EXPORT_TYPES = PATIENT_TYPES + SHARED_TYPES
ALL_TYPES = (*EXPORT_TYPES, "Group", "AuditEvent")


@dataclass(frozen=True)
class Scope:
    """Which rows a batch reads: patients, and optionally only some sessions of theirs."""

    patients: tuple[Patient, ...]
    session_ids: frozenset[int] | None = None  # None: every session
    registry: bool = True  # the registry's measurements (weights, heights) too


class Batch:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.patients = {p.pk: p for p in scope.patients}
        self.ids = list(self.patients)
        self._cache: dict[str, list[Json]] = {}
        self._charts: list[charts.Chart] | None = None
        self._orders: list[Order] | None = None

    def site_of(self, patient_id: int) -> Site:
        return self.patients[patient_id].site

    # ------------------------------------------------------------------ rows

    def charts(self) -> list[charts.Chart]:
        if self._charts is None:
            qs: QuerySet[InfusionSession] = InfusionSession.objects.filter(
                patient_id__in=self.ids)
            if self.scope.session_ids is not None:
                qs = qs.filter(pk__in=self.scope.session_ids)
            qs = charts.with_charts(qs.order_by("scheduled_for", "id"))
            self._charts = charts.charts_of(qs)
        return self._charts

    def orders(self) -> list[Order]:
        if self._orders is None:
            self._orders = list(
                Order.objects.filter(patient_id__in=self.ids,
                                     status__in=R.EXPORTED_ORDER_STATUSES)
                .select_related("series", "protocol_version").order_by("id"))
        return self._orders

    # ------------------------------------------------------------------ resources

    def resources(self, resource_type: str) -> list[Json]:
        if resource_type not in self._cache:
            self._cache[resource_type] = BUILDERS[resource_type](self)
        return self._cache[resource_type]

    def _patients(self) -> list[Json]:
        amended = dict(DemographicAmendment.objects.filter(patient_id__in=self.ids)
                       .values_list("patient_id").annotate(at=Max("amended_at")))
        return [R.patient_resource(p, last_updated=max(p.created_at, amended.get(p.pk,
                                                                                 p.created_at)))
                for p in self.patients.values()]

    def _conditions(self) -> list[Json]:
        return [R.condition_resource(d, self.site_of(d.patient_id)) for d in
                Diagnosis.objects.filter(patient_id__in=self.ids).order_by("id")]

    def _allergies(self) -> list[Json]:
        return [R.allergy_resource(a, self.site_of(a.patient_id)) for a in
                Allergy.objects.filter(patient_id__in=self.ids).order_by("id")]

    def _observations(self) -> list[Json]:
        out: list[Json] = []
        if self.scope.registry:
            for m in Measurement.objects.filter(patient_id__in=self.ids).order_by("id"):
                obs = R.measurement_observation(m, self.site_of(m.patient_id))
                if obs is not None:
                    out.append(obs)
        for chart in self.charts():
            out.extend(R.chart_observations(chart))
        return out

    def _medication_requests(self) -> list[Json]:
        out: list[Json] = []
        for order in self.orders():
            out.extend(R.order_resources(order, self.site_of(order.patient_id)))
        return out

    def _administrations(self) -> list[Json]:
        out: list[Json] = []
        for chart in self.charts():
            out.extend(R.chart_administrations(chart))
        return out

    def _encounters(self) -> list[Json]:
        return [R.encounter_resource(c) for c in self.charts()]

    def _procedures(self) -> list[Json]:
        return [p for p in (R.procedure_resource(c) for c in self.charts()) if p is not None]

    def _consents(self) -> list[Json]:
        consents = list(Consent.objects.filter(patient_id__in=self.ids)
                        .select_related("protocol_version", "withdrawal").order_by("id"))
        docs = {d.sha256: d for d in ConsentDocument.objects.filter(
            sha256__in={c.document_sha256 for c in consents})}
        return [R.consent_resource(c, self.site_of(c.patient_id), docs.get(c.document_sha256))
                for c in consents]

    def _responses(self) -> list[Json]:
        rows = (FollowUpResponse.objects.filter(follow_up__patient_id__in=self.ids)
                .select_related("follow_up").order_by("id"))
        return [R.questionnaire_response_resource(r, r.follow_up,
                                                  self.site_of(r.follow_up.patient_id))
                for r in rows]

    def _provenance(self) -> list[Json]:
        out: list[Json] = []

        def site(res: Json) -> Site:
            subject = res.get("subject") or res.get("patient") or {"reference": "Patient/"
                                                                   + res["id"]}
            return self.site_of(int(subject["reference"].split("/")[1]))

        for p, res in zip(self.patients.values(), self.resources("Patient"), strict=True):
            out.append(R.provenance_resource(res, site=p.site, recorded=p.created_at,
                                             author_id=p.created_by_id))
        by_id = {str(o.pk): o for o in self.orders()}
        for res in self.resources("MedicationRequest"):
            order = by_id.get(res["id"])
            if order is None:
                continue
            out.append(R.provenance_resource(
                res, site=site(res), recorded=order.signed_at or order.written_at,
                author_id=order.signed_by_id or order.written_by_id,
                verifier_id=order.verified_by_id))
        for rtype in ("Condition", "AllergyIntolerance"):
            for res in self.resources(rtype):
                out.append(R.provenance_resource(
                    res, site=site(res), recorded=_recorded(res),
                    author_id=int(res["recorder"]["reference"].split("/")[1])))
        for chart, res in zip(self.charts(), self.resources("Encounter"), strict=True):
            if chart.charted_by:
                out.append(R.provenance_resource(
                    res, site=chart.session.site, recorded=chart.last_recorded_at
                    or chart.session.created_at, author_id=chart.charted_by[0]))
        for res in self.resources("QuestionnaireResponse"):
            author = res["author"]["reference"]
            out.append(R.provenance_resource(
                res, site=site(res), recorded=_recorded(res),
                author_id=None if author.startswith("Patient/") else int(author.split("/")[1]),
                author_is_patient=author.startswith("Patient/")))
        return out

    def patient_of(self, res: Json) -> int:
        if res["resourceType"] == "Patient":
            return int(res["id"])
        if res["resourceType"] == "Provenance":
            return self._provenance_patient(res)
        subject: Json = res.get("subject") or res["patient"]
        return int(subject["reference"].split("/")[1])

    def _provenance_patient(self, res: Json) -> int:
        target = res["target"][0]["reference"]
        rtype, rid = target.split("/")
        if rtype == "Patient":
            return int(rid)
        for t in self.resources(rtype):
            if t["id"] == rid:
                return self.patient_of(t)
        raise LookupError(target)


def _recorded(res: Json) -> Any:
    return datetime.fromisoformat(res["meta"]["lastUpdated"])


BUILDERS: dict[str, Callable[[Batch], list[Json]]] = {
    "Patient": Batch._patients,
    "Condition": Batch._conditions,
    "AllergyIntolerance": Batch._allergies,
    "Observation": Batch._observations,
    "MedicationRequest": Batch._medication_requests,
    "MedicationAdministration": Batch._administrations,
    "Encounter": Batch._encounters,
    "Procedure": Batch._procedures,
    "Consent": Batch._consents,
    "QuestionnaireResponse": Batch._responses,
    "Provenance": Batch._provenance,
}


# --------------------------------------------------------------------------- ids to rows


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _entry_session(entry_id: int | None) -> tuple[int, int] | None:
    if entry_id is None:
        return None
    row = (TimelineEntry.objects.filter(pk=entry_id)
           .values_list("session__patient_id", "session_id").first())
    return None if row is None else (row[0], row[1])


def locate(resource_type: str, rid: str) -> tuple[int, int | None] | None:
    """(patient id, session id or None) of a compartment resource's id, if it exists."""
    if resource_type == "Patient":
        pid = _int(rid)
        return (pid, None) if pid and Patient.objects.filter(pk=pid).exists() else None
    simple: dict[str, Any] = {"Condition": Diagnosis, "AllergyIntolerance": Allergy,
                              "Consent": Consent}
    if resource_type in simple:
        pid = (simple[resource_type].objects.filter(pk=_int(rid) or 0)
               .values_list("patient_id", flat=True).first())
        return None if pid is None else (pid, None)
    if resource_type in ("Encounter", "Procedure"):
        row = (InfusionSession.objects.filter(pk=_int(rid) or 0)
               .values_list("patient_id", "pk").first())
        return None if row is None else (row[0], row[1])
    if resource_type == "QuestionnaireResponse":
        pid = (FollowUpResponse.objects.filter(pk=_int(rid) or 0)
               .values_list("follow_up__patient_id", flat=True).first())
        return None if pid is None else (pid, None)
    if resource_type == "MedicationRequest":
        pid = (Order.objects.filter(pk=_int(rid.split("-")[0]) or 0)
               .values_list("patient_id", flat=True).first())
        return None if pid is None else (pid, None)
    if resource_type == "MedicationAdministration":
        prefix, _, rest = rid.partition("-")
        return _entry_session(_int(rest)) if prefix in ("seg", "med") else None
    if resource_type == "Observation":
        prefix, _, rest = rid.partition("-")
        if prefix == "m":
            pid = (Measurement.objects.filter(pk=_int(rest) or 0)
                   .values_list("patient_id", flat=True).first())
            return None if pid is None else (pid, None)
        return _entry_session(_int(rest.split("-")[0]))
    if resource_type == "Provenance":
        rtype, _, target = rid.partition("-")
        if rtype not in PATIENT_TYPES or rtype == "Provenance":
            return None
        found = locate(rtype, target)
        return None if found is None else (found[0], None)
    return None


# --------------------------------------------------------------------------- shared types


def practitioners(ids: Iterable[int]) -> list[Json]:
    return [R.practitioner_resource(u) for u in User.objects.filter(pk__in=set(ids))
            .order_by("id")]


def organizations(sites: Iterable[Site]) -> list[Json]:
    return [R.organization_resource(s) for s in sorted(set(sites), key=lambda s: s.pk)]


def staff_visible_to(user: User) -> QuerySet[User]:
    return User.objects.filter(sites__in=user.sites.all()).distinct().order_by("id")


def referenced(resources_: Iterable[Json], resource_type: str) -> set[str]:
    """Ids of ``resource_type`` that the resources refer to (anywhere in them)."""
    found: dict[str, set[str]] = {}
    for res in resources_:
        collect_references(res, found)
    return found.get(resource_type, set())


def collect_references(value: Any, found: dict[str, set[str]]) -> None:
    """Add every ``Type/id`` reference inside ``value`` to ``found[Type]``."""
    if isinstance(value, dict):
        r = value.get("reference")
        if isinstance(r, str) and "/" in r:
            rtype, _, rid = r.partition("/")
            found.setdefault(rtype, set()).add(rid)
        for v in value.values():
            if isinstance(v, dict | list):
                collect_references(v, found)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict | list):
                collect_references(v, found)
