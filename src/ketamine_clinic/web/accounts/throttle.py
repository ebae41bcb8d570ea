"""Log-in throttling per address as well as per user (django-axes handler).

django-axes locks a username at one address after ``AXES_FAILURE_LIMIT`` failures. That
misses password spraying: one address trying a few passwords on many usernames. This
handler also locks an address once its failures over all usernames, within the cool-off
time, reach ``LOGIN_ADDRESS_FAILURE_LIMIT`` (higher than the per-user limit, since a
clinic's staff may share one address behind its router).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone


def address_failures(ip_address: str | None) -> int:
    """Failed log-ins from ``ip_address`` over every username within the cool-off time."""
    if not ip_address:
        return 0
    since = timezone.now() - timedelta(hours=float(settings.AXES_COOLOFF_TIME))
    total = (AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gte=since)
             .aggregate(n=Sum("failures_since_start"))["n"])
    return int(total or 0)


def _address_locked(request: Any) -> bool:
    ip = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    return address_failures(ip) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


class AddressThrottledHandler(AxesDatabaseHandler):
    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        return bool(super().is_locked(request, credentials)) or _address_locked(request)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None,
                          **kwargs: Any) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        # axes flags a lockout by the username's own count; flag the address's too, so the
        # middleware answers with the lockout page (429) for every username from it.
        if request is not None and _address_locked(request):
            request.axes_locked_out = True
