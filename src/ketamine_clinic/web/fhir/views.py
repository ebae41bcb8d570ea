"""``/fhir/``: read, search, the CapabilityStatement and the Bulk Data export.

Every view runs through :func:`fhir_view`: the caller is a logged-in user or a bearer
token (``auth.caller_of``), every error is an OperationOutcome, and every resource
that leaves has been accepted by its R4B model first (``resources.serve``). Reads and
searches of patient data are audited as other patient reads are, one entry per request
naming the patients read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.accounts.roles import Capability, Role
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.selectors import visible_entries
from ketamine_clinic.web.audit.services import Actor, audit_record, client_address
from ketamine_clinic.web.fhir import exports, search, sources
from ketamine_clinic.web.fhir import resources as R
from ketamine_clinic.web.fhir import terminology as T
from ketamine_clinic.web.fhir.auth import Caller, NotAuthenticated, caller_of
from ketamine_clinic.web.fhir.capability import capability_statement
from ketamine_clinic.web.fhir.models import ExportJob
from ketamine_clinic.web.fhir.outcome import error_response, fhir_response, outcome
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import patients_visible_to

log = logging.getLogger(__name__)

DEFAULT_COUNT = 50
MAX_COUNT = 500
JSON_FORMATS = ("json", "application/json", "application/fhir+json")

View = Callable[..., HttpResponseBase]


def _no_view(request: HttpRequest) -> HttpResponse:
    """The callback handed to the CSRF check, which reads only its csrf_exempt mark."""
    return HttpResponse()


def fhir_view(*methods: str) -> Callable[[View], View]:
    """Authenticate, then turn every refusal and failure into an OperationOutcome."""
    allowed = methods or ("GET",)

    def decorator(view: View) -> View:
        return csrf_exempt(wraps(view)(_wrapped(view, allowed)))

    return decorator


def _wrapped(view: View, allowed: tuple[str, ...]) -> View:
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in allowed:
            response = error_response(f"{request.method} is not supported here "
                                      f"(use {', '.join(allowed)})", status=405)
            response["Allow"] = ", ".join(allowed)
            return response
        try:
            caller = caller_of(request)
        except NotAuthenticated as exc:
            return error_response(str(exc), status=401, field="Authorization")
        if (request.method not in ("GET", "HEAD", "OPTIONS") and caller.token is None):
            refused = CsrfViewMiddleware(_no_view).process_view(request, _no_view, (), {})
            if refused is not None:
                return error_response("the request lacks the page's CSRF token", status=403)
        fmt = request.GET.get("_format", "")
        if fmt and fmt not in JSON_FORMATS:
            return error_response(f"this server answers in JSON only, not {fmt!r}",
                                  status=406, field="_format")
        try:
            return view(request, caller, *args, **kwargs)
        except UsageError as exc:
            return error_response(exc.problem, status=400, field=exc.field)
        except Http404 as exc:
            return error_response(str(exc) or "not found", status=404)
        except PermissionDenied as exc:
            return error_response(str(exc) or "not allowed", status=403)
        except ValidationError as exc:  # a resource the model refused: never sent
            log.exception("FHIR resource failed validation")
            return error_response(f"a resource could not be built as valid FHIR "
                                  f"({exc.error_count()} problem(s)); this is a server "
                                  "fault and has been logged", status=500)

    return wrapper


def _actor(request: HttpRequest, caller: Caller, site_code: str = "") -> Actor:
    return Actor(user=caller.user, client_address=client_address(request),
                 site_code=site_code)


def _require(caller: Caller, capability: Capability) -> None:
    if not caller.user.can(capability):
        raise PermissionDenied(f"your role may not {capability.label.lower()}")


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir/")


def _send(resource: dict[str, Any], status: int = 200) -> HttpResponse:
    return fhir_response(R.serve(resource), status=status)


def _known_type(resource_type: str) -> None:
    if resource_type not in sources.ALL_TYPES:
        raise Http404(f"this server has no {resource_type!r} resources (see /fhir/metadata)")


# --------------------------------------------------------------------------- metadata


def metadata(request: HttpRequest) -> HttpResponse:
    """The CapabilityStatement needs no log-in (clients read it before they authenticate)."""
    if request.method != "GET":
        return error_response("metadata is read with GET", status=405)
    return _send(capability_statement(_base(request)))


# --------------------------------------------------------------------------- read


@fhir_view()
def read(request: HttpRequest, caller: Caller, resource_type: str, rid: str) -> HttpResponse:
    _known_type(resource_type)
    if resource_type in sources.PATIENT_TYPES:
        return _read_compartment(request, caller, resource_type, rid)
    if resource_type == "AuditEvent":
        entry = _audit_entries(caller).filter(pk=int(rid) if rid.isdigit() else -1).first()
        if entry is None:
            raise Http404(f"no AuditEvent {rid}")
        audit_record(actor=_actor(request, caller), action=AuditAction.FHIR_READ,
                     object_type="AuditEvent", object_id=rid)
        return _send(R.audit_event_resource(entry))
    found = [r for r in _shared(caller, resource_type) if r["id"] == rid]
    if not found:
        raise Http404(f"no {resource_type} {rid} at your sites")
    return _send(found[0])


def _visible_patient(caller: Caller, patient_id: int) -> Patient | None:
    return patients_visible_to(caller.user).filter(pk=patient_id).first()


def _read_compartment(request: HttpRequest, caller: Caller, resource_type: str,
                      rid: str) -> HttpResponse:
    _require(caller, Capability.VIEW_PATIENTS)
    located = sources.locate(resource_type, rid)
    patient = _visible_patient(caller, located[0]) if located else None
    if patient is None:
        if located is not None:
            audit_record(actor=_actor(request, caller), action=AuditAction.FHIR_ACCESS_DENIED,
                         object_type=resource_type, object_id=rid)
        raise Http404(f"no {resource_type} {rid} among your sites' patients")
    session_id = located[1] if located else None
    if resource_type in ("Observation", "MedicationAdministration") and session_id:
        scope = sources.Scope((patient,), frozenset({session_id}), registry=False)
    elif resource_type == "Observation":
        scope = sources.Scope((patient,), frozenset(), registry=True)
    else:
        scope = sources.Scope((patient,))
    batch = sources.Batch(scope)
    found = [r for r in batch.resources(resource_type) if r["id"] == rid]
    if not found:
        raise Http404(f"no {resource_type} {rid}")
    audit_record(actor=_actor(request, caller, patient.site.code), action=AuditAction.FHIR_READ,
                 object_type=resource_type, object_id=rid, detail={"patients": [patient.pk]})
    return _send(found[0])


# --------------------------------------------------------------------------- search


def _pairs(request: HttpRequest) -> list[tuple[str, str]]:
    return [(k, v) for k, values in request.GET.lists() for v in values]


@fhir_view()
def search_type(request: HttpRequest, caller: Caller, resource_type: str) -> HttpResponse:
    _known_type(resource_type)
    pairs = _pairs(request)
    query = dict(pairs)
    count, offset = search.count_and_offset(query, default=DEFAULT_COUNT, maximum=MAX_COUNT)
    if resource_type == "Patient":
        _require(caller, Capability.VIEW_PATIENTS)
        rows, total = _patient_search(caller, pairs, count, offset)
        found = [R.patient_resource(p, last_updated=p.lu) for p in rows]
        patients = [p.pk for p in rows]
    elif resource_type == "AuditEvent":
        entries, total = _audit_search(caller, pairs, count, offset)
        found, patients = [R.audit_event_resource(e) for e in entries], []
    elif resource_type in sources.PATIENT_TYPES:
        _require(caller, Capability.VIEW_PATIENTS)
        everything, patients = _compartment_search(request, caller, resource_type, pairs)
        total = len(everything)
        found = everything[offset:offset + count]
    else:
        for name, _ in pairs:
            if name not in search.SHARED_PARAMS + search.CONTROL:
                raise UsageError(name, f"{resource_type} can be searched by _id only")
        ids = {v for k, v in pairs if k == "_id"}
        everything = [r for r in _shared(caller, resource_type) if not ids or r["id"] in ids]
        total, found, patients = len(everything), everything[offset:offset + count], []
    if patients or resource_type in sources.PATIENT_TYPES:
        audit_record(actor=_actor(request, caller), action=AuditAction.FHIR_SEARCH,
                     object_type=resource_type,
                     detail={"query": request.GET.urlencode(), "patients": patients,
                             "matches": total})
    return _send(_bundle(request, resource_type, found, total, count, offset, pairs))


def _bundle(request: HttpRequest, resource_type: str, found: list[dict[str, Any]],
            total: int, count: int, offset: int,
            pairs: list[tuple[str, str]]) -> dict[str, Any]:
    base = _base(request)
    kept = [(k, v) for k, v in pairs if k not in ("_count", "_offset")]

    def link(relation: str, at: int) -> dict[str, str]:
        q = urlencode([*kept, ("_count", str(count)), ("_offset", str(at))])
        return {"relation": relation, "url": f"{base}{resource_type}?{q}"}

    links = [link("self", offset), link("first", 0)]
    if offset + count < total:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if count:
        links.append(link("last", max(0, (total - 1) // count * count)))
    return {
        "resourceType": "Bundle", "type": "searchset", "total": total,
        "timestamp": R.instant(timezone.now(), UTC),
        "link": links,
        "entry": [{"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in found],
    }


def _ids(raw: str, prefix: str) -> list[int]:
    out = []
    for v in raw.split(","):
        v = v.strip()
        if v.startswith(prefix):
            v = v[len(prefix):]
        if not v.isdigit():
            raise UsageError("patient", f"{v!r} is not a patient id (e.g. 123 or Patient/123)")
        out.append(int(v))
    return out


def _compartment_search(request: HttpRequest, caller: Caller, resource_type: str,
                        pairs: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[int]]:
    crits = search.criteria(resource_type, pairs)
    wanted: set[int] = set()
    for name, value in pairs:
        if name == "patient":
            wanted |= set(_ids(value, "Patient/"))
        elif name == "_id":
            for rid in value.split(","):
                located = sources.locate(resource_type, rid.strip())
                if located:
                    wanted.add(located[0])
    if not wanted and not any(n in ("patient", "_id") for n, _ in pairs):
        raise UsageError("patient", f"a {resource_type} search needs patient= (or _id=); "
                                    "for the whole clinic use Patient/$export")
    patients = list(patients_visible_to(caller.user).filter(pk__in=wanted).order_by("id"))
    hidden = wanted - {p.pk for p in patients}
    if hidden:
        audit_record(actor=_actor(request, caller), action=AuditAction.FHIR_ACCESS_DENIED,
                     object_type="Patient", object_id=",".join(map(str, sorted(hidden)))[:64])
    if not patients:
        return [], []
    batch = sources.Batch(sources.Scope(tuple(patients)))
    found = [r for r in batch.resources(resource_type) if search.matches(r, crits)]
    return found, [p.pk for p in patients]


def _date_q(field: str, raw: str) -> Q:
    prefix, value = search.split_prefix(raw)
    low, high = search.date_range(value, field=field)
    lookups = {"eq": Q(**{f"{field}__gte": low, f"{field}__lt": high}),
               "lt": Q(**{f"{field}__lt": low}), "le": Q(**{f"{field}__lt": high}),
               "gt": Q(**{f"{field}__gte": high}), "ge": Q(**{f"{field}__gte": low})}
    if prefix == "ne":
        return ~lookups["eq"]
    return lookups[prefix]


def _day_q(field: str, raw: str) -> Q:
    prefix, value = search.split_prefix(raw)
    low, high = search.date_range(value, field=field)
    lo, hi = low.date(), high.date()
    lookups = {"eq": Q(**{f"{field}__gte": lo, f"{field}__lt": hi}),
               "lt": Q(**{f"{field}__lt": lo}), "le": Q(**{f"{field}__lt": hi}),
               "gt": Q(**{f"{field}__gte": hi}), "ge": Q(**{f"{field}__gte": lo})}
    return ~lookups["eq"] if prefix == "ne" else lookups[prefix]


GENDERS = {v: k for k, v in T.section("patient")["gender"].items()}


def _patient_search(caller: Caller, pairs: list[tuple[str, str]], count: int,
                    offset: int) -> tuple[list[Any], int]:
    # Patients annotated with lu (last updated), which the plugin cannot type.
    qs: QuerySet[Any] = patients_visible_to(caller.user).annotate(
        lu=Coalesce(Max("amendments__amended_at"), "created_at"))
    for name, raw in pairs:
        if name in search.CONTROL:
            continue
        if name not in search.PATIENT_PARAMS:
            raise UsageError(name, f"Patient cannot be searched by {name!r} here "
                                   f"(supported: {', '.join(search.PATIENT_PARAMS)})")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        cond = Q()
        for v in values:
            if name == "_id":
                cond |= Q(pk=int(v)) if v.isdigit() else Q(pk=-1)
            elif name == "identifier":
                system, _, value = v.rpartition("|")
                one = Q(mrn=value)
                if system:
                    code = system.removeprefix(T.system("local_mrn"))
                    one &= Q(site__code=code) if code != system else Q(pk=-1)
                cond |= one
            elif name in ("name", "family", "given"):
                fields = {"name": ("given_name", "family_name"), "family": ("family_name",),
                          "given": ("given_name",)}[name]
                for f in fields:
                    cond |= Q(**{f"{f}__istartswith": v})
            elif name == "birthdate":
                cond |= _day_q("date_of_birth", v)
            elif name == "gender":
                if v not in GENDERS:
                    raise UsageError("gender", f"{v!r} is not one of {', '.join(GENDERS)}")
                cond |= Q(sex_at_birth=GENDERS[v])
            else:  # _lastUpdated
                cond |= _date_q("lu", v)
        qs = qs.filter(cond)
    qs = qs.order_by("id")
    return list(qs[offset:offset + count]), qs.count()


# --------------------------------------------------------------------------- shared types


def _shared(caller: Caller, resource_type: str) -> list[dict[str, Any]]:
    sites = list(caller.user.sites.all().order_by("id"))
    if resource_type == "Practitioner":
        return sources.practitioners(sources.staff_visible_to(caller.user)
                                     .values_list("id", flat=True))
    if resource_type == "Organization":
        return sources.organizations(sites)
    if resource_type == "Group":
        _require(caller, Capability.VIEW_PATIENTS)
        visible = patients_visible_to(caller.user)
        return [R.group_resource(s, visible.filter(site=s).order_by("id")
                                 .values_list("id", flat=True)) for s in sites]
    if resource_type == "Questionnaire":
        return [R.questionnaire_resource()]
    raise Http404(resource_type)


# --------------------------------------------------------------------------- audit events


def _audit_entries(caller: Caller) -> QuerySet[AuditEntry]:
    if caller.user.role != Role.AUDITOR:
        raise PermissionDenied("the audit trail is for auditors only")
    return visible_entries(caller.user)  # the same rule as the audit page


def _audit_search(caller: Caller, pairs: list[tuple[str, str]], count: int,
                  offset: int) -> tuple[list[AuditEntry], int]:
    qs = _audit_entries(caller)
    for name, raw in pairs:
        if name in search.CONTROL:
            continue
        if name not in search.AUDIT_PARAMS:
            raise UsageError(name, f"AuditEvent cannot be searched by {name!r} here "
                                   f"(supported: {', '.join(search.AUDIT_PARAMS)})")
        cond = Q()
        for v in (x.strip() for x in raw.split(",") if x.strip()):
            if name == "_id":
                cond |= Q(pk=int(v)) if v.isdigit() else Q(pk=-1)
            elif name == "date":
                cond |= _date_q("at", v)
            elif name == "patient":
                cond |= Q(object_type="patient", object_id=v.removeprefix("Patient/"))
            elif name == "action":
                cond |= Q(action__startswith=v)
            else:  # agent
                uid = v.removeprefix("Practitioner/")
                cond |= Q(user_id_value=int(uid)) if uid.isdigit() else Q(username=uid)
        qs = qs.filter(cond)
    qs = qs.order_by("id")
    return list(qs[offset:offset + count]), qs.count()


# --------------------------------------------------------------------------- bulk export

EXPORT_PARAMS = ("_type", "_since", "_outputFormat")


def _kickoff(request: HttpRequest, caller: Caller, site: Site | None) -> HttpResponse:
    _require(caller, Capability.VIEW_PATIENTS)
    if "respond-async" not in request.META.get("HTTP_PREFER", ""):
        raise UsageError("Prefer", "a bulk export runs in the background: send "
                                   "'Prefer: respond-async'")
    for name in request.GET:
        if name not in EXPORT_PARAMS:
            raise UsageError(name, f"this server does not support {name!r} on $export "
                                   f"(supported: {', '.join(EXPORT_PARAMS)})")
    fmt = request.GET.get("_outputFormat", "")
    if fmt and fmt not in exports.OUTPUT_FORMATS:
        raise UsageError("_outputFormat", f"{fmt!r} is not offered (NDJSON only)")
    job = exports.export_kickoff(
        caller=caller,
        request=exports.ExportRequest(
            level="group" if site else "patient", site=site,
            types=exports.parse_types(request.GET.get("_type", "")),
            since=exports.parse_since(request.GET.get("_since", ""))),
        request_url=request.build_absolute_uri(), actor=_actor(request, caller,
                                                               site.code if site else ""))
    body = outcome("The export is queued; poll the Content-Location URL for its files.",
                   status=202, severity="information", code="informational")
    response = fhir_response(R.serve(body), status=202)
    response["Content-Location"] = request.build_absolute_uri(f"/fhir/_export/{job.pk}")
    return response


@fhir_view()
def patient_export(request: HttpRequest, caller: Caller) -> HttpResponse:
    return _kickoff(request, caller, None)


@fhir_view()
def group_export(request: HttpRequest, caller: Caller, group_id: str) -> HttpResponse:
    site = (caller.user.sites.filter(pk=int(group_id)).first() if group_id.isdigit()
            else None)
    if site is None:
        raise Http404(f"no Group {group_id} among your sites")
    return _kickoff(request, caller, site)


def _job(caller: Caller, job_id: str) -> ExportJob:
    job = exports.job_for(caller.user, job_id)
    if job is None or job.status == ExportJob.Status.CANCELLED:
        raise Http404("no such export of yours (it may have been cancelled)")
    return job


def _expired(job: ExportJob) -> bool:
    return job.status == ExportJob.Status.EXPIRED or (
        job.expires_at is not None and job.expires_at <= timezone.now())


@fhir_view("GET", "DELETE")
def export_status(request: HttpRequest, caller: Caller, job_id: str) -> HttpResponse:
    job = _job(caller, job_id)
    if request.method == "DELETE":
        exports.export_cancel(job=job, actor=_actor(request, caller))
        body = outcome("The export was cancelled and its files deleted.", status=202,
                       severity="information", code="informational")
        return fhir_response(R.serve(body), status=202)
    if job.status in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
        response = HttpResponse(status=202)
        response["X-Progress"] = (f"{job.status}: {job.patients_done} of "
                                  f"{job.patients_total} patients")
        response["Retry-After"] = "5"
        return response
    if job.status == ExportJob.Status.FAILED:
        return error_response(f"The export failed ({job.error}); start a new one.",
                              status=500)
    if _expired(job):
        return error_response("The export's files have expired; start a new one.",
                              status=410)
    base = _base(request)
    manifest = {
        "transactionTime": job.transaction_time.isoformat(timespec="seconds")
        if job.transaction_time else None,
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [{"type": f.resource_type, "url": f"{base}_export/{job.pk}/{f.name}",
                    "count": f.count} for f in job.files.all()],
        "error": [],
    }
    response = fhir_response(manifest, content_type="application/json")
    if job.expires_at:
        response["Expires"] = job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return response


@fhir_view()
def export_file(request: HttpRequest, caller: Caller, job_id: str, name: str) -> HttpResponseBase:
    job = _job(caller, job_id)
    if job.status != ExportJob.Status.COMPLETED or _expired(job):
        if _expired(job):
            return error_response("The export's files have expired; start a new one.",
                                  status=410)
        raise Http404("the export has not finished")
    found = job.files.filter(name=name).first()
    path = exports.job_dir(job) / name if found else None
    if found is None or path is None or not path.is_file():
        raise Http404(f"no file {name!r} in this export")
    audit_record(actor=_actor(request, caller), action=AuditAction.FHIR_EXPORT_DOWNLOAD,
                 object_type="fhir_export", object_id=job.pk,
                 detail={"file": name, "count": found.count})
    return FileResponse(path.open("rb"), content_type=exports.NDJSON)


@fhir_view("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest, caller: Caller, rest: str = "") -> HttpResponse:
    return error_response(f"/fhir/{rest} is not an interaction this server supports "
                          "(see /fhir/metadata)", status=404)
