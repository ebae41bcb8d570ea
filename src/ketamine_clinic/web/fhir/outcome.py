"""Every error of ``/fhir/`` is an OperationOutcome, with a message a person can act on."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse

from ketamine_clinic.web.fhir.resources import serve

FHIR_JSON = "application/fhir+json"

# HTTP status -> the issue type code of the FHIR issue-type value set.
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 406: "not-supported", 410: "deleted", 422: "processing",
               429: "throttled", 500: "exception"}


def outcome(message: str, *, status: int, field: str = "", severity: str = "error",
            code: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code or ISSUE_TYPES.get(status,
                                                                                  "processing"),
                             "diagnostics": message}
    if field:
        issue["expression"] = [field]
        issue["details"] = {"text": f"{field}: {message}"}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(body: dict[str, Any] | str | bytes, status: int = 200,
                  content_type: str = FHIR_JSON) -> HttpResponse:
    text = body if isinstance(body, str | bytes) else json.dumps(body, separators=(",", ":"))
    return HttpResponse(text, status=status, content_type=content_type)


def error_response(message: str, *, status: int, field: str = "") -> HttpResponse:
    body = outcome(message, status=status, field=field)
    response = fhir_response(serve(body), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return response
