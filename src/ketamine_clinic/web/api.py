"""The JSON API under /api/v1/: token or session authentication, errors that name fields."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from ketamine_clinic.errors import Conflict, Refusal, UsageError
from ketamine_clinic.web.accounts.models import ApiToken, User
from ketamine_clinic.web.accounts.roles import Capability


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        found = (ApiToken.objects.select_related("user")
                 .filter(token_sha256=ApiToken.digest(token), revoked_at__isnull=True,
                         scope=ApiToken.Scope.API).first())  # a fhir_read token: /fhir/ only
        if found is None or not found.user.is_active:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        request.user = found.user
        return found.user


api = NinjaAPI(
    title="ketamine-clinic API",
    version="1",
    description="Patients, diagnoses and measurements of a ketamine infusion clinic. "
    "Authenticate with `Authorization: Bearer <token>` (create one with "
    "`ketamine-clinic token create --username U`).",
    auth=[BearerToken(), django_auth],
    urls_namespace="api-v1",
)


def error_response(request: HttpRequest, status: int,
                   errors: list[dict[str, str]]) -> HttpResponse:
    return api.create_response(request, {"errors": errors}, status=status)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload")]
        errors.append({"field": ".".join(loc) or "body", "message": str(err.get("msg"))})
    return error_response(request, 422, errors)


@api.exception_handler(UsageError)
def on_usage_error(request: HttpRequest, exc: UsageError) -> HttpResponse:
    """400 with the field and the problem; a clinical refusal gives one error per reason;
    a conflict with a stored request is a 409."""
    reasons = exc.reasons if isinstance(exc, Refusal) else (exc.problem,)
    status = 409 if isinstance(exc, Conflict) else 400
    return error_response(request, status, [{"field": exc.field, "message": r} for r in reasons])


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(request, exc.status_code, [{"field": "", "message": exc.message}])


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, [{"field": "Authorization",
                                          "message": "missing or invalid credentials"}])


def require(request: HttpRequest, capability: Capability) -> User:
    user: Any = request.auth  # type: ignore[attr-defined]
    if not user.can(capability):
        raise HttpError(403, f"your role may not {capability.label.lower()}")
    return user  # type: ignore[no-any-return]


def _mount_area_routers() -> None:
    """Mount ``router`` from every area's ``api.py`` (see lib/areas.py)."""
    from django.utils.module_loading import import_string

    from ketamine_clinic.web.lib.areas import area_modules

    for module in area_modules("api"):
        api.add_router("/", import_string(f"{module}.router"))


_mount_area_routers()
