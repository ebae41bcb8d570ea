"""FHIR search parameters: which each type supports, how a value is read, how it matches.

Dates follow the spec's prefixes (``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``) over the
value's implicit range (``2024-03`` is the whole month); tokens are ``code``,
``system|code``, ``|code`` or ``system|``. Several values in one parameter (commas) are
alternatives; the same parameter twice must both hold. A parameter the type does not
support is refused with a message naming it (this server is strict).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from ketamine_clinic.errors import UsageError

Json = dict[str, Any]
Range = tuple[datetime, datetime]

PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")


def _default_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def date_range(text: str, *, field: str) -> Range:
    """The implicit range [low, high) of a FHIR date, dateTime or instant value."""
    if not _DATE.match(text):
        raise UsageError(field, f"{text!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or "
                                "a date and time with its offset)")
    tz = _default_tz()
    if len(text) == 4:
        low = datetime(int(text), 1, 1, tzinfo=tz)
        return low, low.replace(year=low.year + 1)
    if len(text) == 7:
        y, m = int(text[:4]), int(text[5:7])
        low = datetime(y, m, 1, tzinfo=tz)
        return low, (low.replace(year=y + 1, month=1) if m == 12 else low.replace(month=m + 1))
    if len(text) == 10:
        low = datetime.combine(date.fromisoformat(text), time(), tz)
        return low, low + timedelta(days=1)
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    precision = timedelta(seconds=1) if text.count(":") >= 2 else timedelta(minutes=1)
    return at, at + precision


def date_matches(prefix: str, param: Range, value: Range) -> bool:
    plo, phi = param
    vlo, vhi = value
    if prefix == "eq":
        return plo <= vlo and vhi <= phi
    if prefix == "ne":
        return not (plo <= vlo and vhi <= phi)
    if prefix == "lt":
        return vlo < plo
    if prefix == "le":
        return vlo < phi
    if prefix == "gt":
        return vhi > phi
    return vhi > plo  # ge


def split_prefix(text: str) -> tuple[str, str]:
    if text[:2] in PREFIXES and len(text) > 2 and text[2].isdigit():
        return text[:2], text[2:]
    return "eq", text


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # date | token | reference | string
    path: str  # documentation: the element it searches
    read: Callable[[Json], list[Any]]


def _get(res: Json, *path: str) -> Any:
    value: Any = res
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _dates(*paths: tuple[str, ...]) -> Callable[[Json], list[Range]]:
    def read(res: Json) -> list[Range]:
        out = []
        for path in paths:
            value = _get(res, *path)
            if isinstance(value, str):
                out.append(date_range(value, field=".".join(path)))
            elif isinstance(value, dict) and (value.get("start") or value.get("end")):
                start = date_range(value.get("start") or value["end"], field="start")[0]
                end = (date_range(value["end"], field="end")[1] if value.get("end")
                       else datetime.max.replace(tzinfo=start.tzinfo))
                out.append((start, end))
        return out

    return read


def _codings(*paths: tuple[str, ...]) -> Callable[[Json], list[tuple[str, str]]]:
    def read(res: Json) -> list[tuple[str, str]]:
        out = []
        for path in paths:
            value = _get(res, *path)
            concepts = value if isinstance(value, list) else [value]
            for cc in concepts:
                if isinstance(cc, dict):
                    for c in cc.get("coding", []):
                        out.append((c.get("system", ""), c.get("code", "")))
                    if "code" in cc and "system" in cc:  # a bare Coding
                        out.append((cc["system"], cc["code"]))
        return out

    return read


def _code(*path: str) -> Callable[[Json], list[tuple[str, str]]]:
    def read(res: Json) -> list[tuple[str, str]]:
        value = _get(res, *path)
        return [("", value)] if isinstance(value, str) else []

    return read


def token_matches(param: str, values: list[tuple[str, str]]) -> bool:
    if "|" in param:
        system, code = param.split("|", 1)
        return any((not system or s == system) and (not code or c == code)
                   for s, c in values) if (system or code) else False
    return any(c == param for _, c in values)


_LAST_UPDATED = Param("_lastUpdated", "date", "meta.lastUpdated", _dates(("meta", "lastUpdated")))
_ID = Param("_id", "token", "id", _code("id"))
_PATIENT = Param("patient", "reference", "subject / patient", lambda r: [])


def _params(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in (_ID, _LAST_UPDATED, _PATIENT, *params)}


SEARCH: dict[str, dict[str, Param]] = {
    "Condition": _params(
        Param("code", "token", "code", _codings(("code",))),
        Param("category", "token", "category", _codings(("category",))),
        Param("clinical-status", "token", "clinicalStatus", _codings(("clinicalStatus",))),
        Param("onset-date", "date", "onsetDateTime", _dates(("onsetDateTime",))),
        Param("recorded-date", "date", "recordedDate", _dates(("recordedDate",)))),
    "AllergyIntolerance": _params(
        Param("clinical-status", "token", "clinicalStatus", _codings(("clinicalStatus",))),
        Param("date", "date", "recordedDate", _dates(("recordedDate",)))),
    "Observation": _params(
        Param("code", "token", "code", _codings(("code",))),
        Param("category", "token", "category", _codings(("category",))),
        Param("date", "date", "effectiveDateTime", _dates(("effectiveDateTime",))),
        Param("status", "token", "status", _code("status")),
        Param("encounter", "reference", "encounter",
              lambda r: [_get(r, "encounter", "reference")])),
    "MedicationRequest": _params(
        Param("code", "token", "medicationCodeableConcept",
              _codings(("medicationCodeableConcept",))),
        Param("status", "token", "status", _code("status")),
        Param("intent", "token", "intent", _code("intent")),
        Param("authoredon", "date", "authoredOn", _dates(("authoredOn",)))),
    "MedicationAdministration": _params(
        Param("code", "token", "medicationCodeableConcept",
              _codings(("medicationCodeableConcept",))),
        Param("status", "token", "status", _code("status")),
        Param("effective-time", "date", "effective[x]",
              _dates(("effectiveDateTime",), ("effectivePeriod",))),
        Param("context", "reference", "context", lambda r: [_get(r, "context", "reference")]),
        Param("request", "reference", "request", lambda r: [_get(r, "request", "reference")])),
    "Encounter": _params(
        Param("date", "date", "period", _dates(("period",))),
        Param("status", "token", "status", _code("status")),
        Param("type", "token", "type", _codings(("type",))),
        Param("class", "token", "class", _codings(("class",)))),
    "Procedure": _params(
        Param("code", "token", "code", _codings(("code",))),
        Param("date", "date", "performedPeriod", _dates(("performedPeriod",))),
        Param("status", "token", "status", _code("status"))),
    "Consent": _params(
        Param("date", "date", "dateTime", _dates(("dateTime",))),
        Param("status", "token", "status", _code("status")),
        Param("category", "token", "category", _codings(("category",)))),
    "QuestionnaireResponse": _params(
        Param("authored", "date", "authored", _dates(("authored",))),
        Param("status", "token", "status", _code("status")),
        Param("questionnaire", "reference", "questionnaire", lambda r: [r.get("questionnaire")])),
    "Provenance": _params(
        Param("recorded", "date", "recorded", _dates(("recorded",))),
        Param("target", "reference", "target",
              lambda r: [t.get("reference") for t in r.get("target", [])])),
}

# Searched in the database (one row, one resource), with their own parameters.
PATIENT_PARAMS = ("_id", "_lastUpdated", "identifier", "name", "family", "given",
                  "birthdate", "gender")
AUDIT_PARAMS = ("_id", "date", "patient", "action", "agent")
SHARED_PARAMS = ("_id",)
CONTROL = ("_count", "_offset", "_format", "_summary")


@dataclass(frozen=True)
class Criterion:
    param: Param
    alternatives: tuple[str, ...]


def criteria(resource_type: str, query: Iterable[tuple[str, str]]) -> list[Criterion]:
    """The parsed criteria of a compartment search (``patient`` is handled by the caller)."""
    known = SEARCH[resource_type]
    out = []
    for name, raw in query:
        if name in CONTROL or name == "patient":
            continue
        base = name.split(":")[0]
        if base not in known:
            raise UsageError(name, f"{resource_type} cannot be searched by {name!r} here "
                                   f"(supported: {', '.join(sorted(known))})")
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise UsageError(name, "has no value")
        param = known[base]
        if param.kind == "date":
            for v in values:
                date_range(split_prefix(v)[1], field=name)
        out.append(Criterion(param, values))
    return out


def matches(res: Json, crits: list[Criterion]) -> bool:
    for c in crits:
        got = c.param.read(res)
        if c.param.kind == "date":
            ok = any(date_matches(p, date_range(v, field=c.param.name), g)
                     for p, v in (split_prefix(a) for a in c.alternatives) for g in got)
        elif c.param.kind == "token":
            ok = any(token_matches(a, got) for a in c.alternatives)
        else:  # reference: "Type/id" or a bare id
            ok = any(g is not None and (g == a or g.endswith("/" + a)) for a in c.alternatives
                     for g in got)
        if not ok:
            return False
    return True


def count_and_offset(query: dict[str, str], *, default: int, maximum: int) -> tuple[int, int]:
    def whole(name: str, fallback: int) -> int:
        raw = query.get(name, "")
        if raw == "":
            return fallback
        if not raw.isdigit():
            raise UsageError(name, f"must be a whole number, not {raw!r}")
        return int(raw)

    count = whole("_count", default)
    if count > maximum:
        raise UsageError("_count", f"at most {maximum} resources per page (asked {count})")
    return count, whole("_offset", 0)
