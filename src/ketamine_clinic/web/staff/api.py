"""The monitor endpoint: a device token writes vital signs to its own site's sessions,
and nothing else (the JSON API's own token check refuses ``device_vitals`` tokens)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router
from ninja.errors import HttpError
from ninja.security import HttpBearer

from ketamine_clinic.clinical import clock
from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.sessions import services
from ketamine_clinic.web.sessions.api import ERRORS, written_out
from ketamine_clinic.web.sessions.models import InfusionSession
from ketamine_clinic.web.sessions.schemas import EntryOut, VitalsIn
from ketamine_clinic.web.staff.models import Device


class DeviceToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Device | None:
        now = timezone.now()
        found = (ApiToken.objects.select_related("user", "user__device")
                 .filter(token_sha256=ApiToken.digest(token), revoked_at__isnull=True,
                         scope=ApiToken.Scope.DEVICE_VITALS).first())
        if (found is None or not found.user.is_active or not hasattr(found.user, "device")
                or (found.expires_at is not None and found.expires_at <= now)):
            return None
        found.mark_used(now)
        request.user = found.user
        return found.user.device


router = Router(tags=["monitor devices"])


@router.post("/device/sessions/{session_id}/vitals", auth=DeviceToken(),
             response={200: EntryOut, 201: EntryOut, **ERRORS})
def device_vitals(request: HttpRequest, session_id: int, payload: VitalsIn) -> Any:
    """A monitor's vital-sign set for a session at the device's site. Retries are safe
    (the same ``idempotency_key`` returns the stored entry)."""
    device: Device = request.auth  # type: ignore[attr-defined]
    session = InfusionSession.objects.filter(pk=session_id, site_id=device.site_id).first()
    if session is None:
        raise HttpError(404, "no such session at this device's site")
    data = payload.model_dump()
    at = clock.aware_or_none("occurred_at", data.pop("occurred_at"))
    key = data.pop("idempotency_key")
    data.pop("device_id")
    data = {k: v for k, v in data.items() if v is not None}
    written = services.session_observe(
        actor=Actor(user=device.user, client_address=str(request.META.get("REMOTE_ADDR", "")),
                    site_code=session.site.code),
        session=session, kind="vitals", data=data, occurred_at=at, idempotency_key=key,
        device_id=device.name)
    return written_out(written)
