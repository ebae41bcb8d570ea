"""The JSON API under /api/v1/: token or session authentication, errors that name fields."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer, SessionAuth

from ketamine_clinic.errors import Conflict, Refusal, UsageError
from ketamine_clinic.web.accounts.models import ApiToken, User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.accounts.tokens import tokens_usable
from ketamine_clinic.web.lib.api_input import strict_input
from ketamine_clinic.web.lib.areas import area_modules
from ketamine_clinic.web.lib.idempotency import idempotent


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        found = (tokens_usable().select_related("user")
                 .filter(token_sha256=ApiToken.digest(token),
                         scope=ApiToken.Scope.API).first())  # a fhir_read token: /fhir/ only
        if found is None or not found.user.is_active:
            return None
        found.mark_used(timezone.now())
        request.user = found.user
        return found.user


class SessionCookie(SessionAuth):
    """Log-in session auth (with its CSRF check) for requests that bring no token. A request
    with an ``Authorization`` header is a token client: a revoked, expired or made-up token
    gets 401, not the session auth's "CSRF check failed" 403."""

    def __call__(self, request: HttpRequest) -> Any:
        if request.headers.get("Authorization"):
            return None
        return super().__call__(request)


def docs_login_required(view: Any) -> Any:
    """The OpenAPI document and the interactive docs: for logged-in staff and token
    clients only (the document describes every patient endpoint). Anyone else: the log-in
    page (a browser) or 401 (a client that sent a token that is not valid)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            header = request.headers.get("Authorization", "")
            user = (BearerToken().authenticate(request, header[7:].strip())
                    if header.lower().startswith("bearer ") else None)
            if user is None:
                if header:
                    return HttpResponse('{"errors": [{"field": "Authorization", "message": '
                                        '"missing or invalid credentials"}]}', status=401,
                                        content_type="application/json")
                return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


api = NinjaAPI(
    title="ketamine-clinic API",
    version="1",
    description="Patients, diagnoses and measurements of a ketamine infusion clinic. "
    "Authenticate with `Authorization: Bearer <token>` (create one with "
    "`ketamine-clinic token create --username U`).",
    auth=[BearerToken(), SessionCookie()],
    urls_namespace="api-v1",
    docs_decorator=docs_login_required,
)


class Paging(LimitOffsetPagination):
    """The one paging of list endpoints (``@paginate(Paging, pass_parameter="page")``): a
    page holds at most ``API_MAX_PAGE_SIZE`` rows (settings), an offset is never negative
    nor beyond ``API_MAX_OFFSET``; outside either the request is refused with a 422 naming
    it. The answer is ``{"items": [...], "count": N}``."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=settings.API_MAX_PAGE_SIZE,
                           description="rows per page (at most API_MAX_PAGE_SIZE)")
        offset: int = Field(0, ge=0, le=settings.API_MAX_OFFSET, description="rows to skip")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=settings.API_MAX_PAGE_SIZE, **kwargs)


def error_response(request: HttpRequest, status: int,
                   errors: list[dict[str, str]]) -> HttpResponse:
    return api.create_response(request, {"errors": errors}, status=status)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path"):  # where it was: the name says it
            loc = loc[1:]
        loc = [p for p in loc if p != "payload"]
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
    return user


T = TypeVar("T")


def found(get: Callable[[], T], what: str) -> T:
    """``get()`` (a site-scoped ``*_get_for`` selector), its not-found answered as the API's
    404 naming ``what``: "no such patient"."""
    try:
        return get()
    except Http404 as exc:
        raise HttpError(404, f"no such {what}") from exc


# Strict types and bounds on every operation's input, after authentication (lib/api_input).
api.add_decorator(strict_input, mode="operation")
# Idempotency keys scoped to client and endpoint, same key + other body = 409 (lib/).
api.add_decorator(idempotent, mode="operation")


def _mount_area_routers() -> None:
    """Mount ``router`` from every area's ``api.py`` (see lib/areas.py)."""

    for module in area_modules("api"):
        api.add_router("/", import_string(f"{module}.router"))


_mount_area_routers()
