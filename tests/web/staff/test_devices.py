"""Monitor devices: a device token writes vital signs to its own site's sessions and
nothing else; tokens are listed and revoked."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.sessions.models import TimelineEntry
from ketamine_clinic.web.staff import services
from tests.web.scheduling.conftest import make_clinic
from tests.web.sessions.conftest import VITALS


@pytest.fixture
def clinic(cast: Any) -> Any:
    return make_clinic(cast, started_hours_ago=0)


@pytest.fixture
def device(clinic: Any) -> Any:
    return services.device_create(actor=Actor(user=clinic.cast.dave), site=clinic.cast.denver,
                                  name="chair 3 monitor")


def _post(client: Client, raw: str, session_id: int, **extra: Any) -> Any:
    return client.post(f"/api/v1/device/sessions/{session_id}/vitals",
                       data=json.dumps({**VITALS, "idempotency_key": uuid.uuid4().hex, **extra}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_device_writes_vitals_to_its_sites_session(clinic: Any, device: Any,
                                                     client: Client) -> None:
    from tests.web.sessions.conftest import Walk

    Walk(clinic).event("check_in", 290)  # checked in ten minutes ago
    _token, raw = services.token_issue(actor=Actor(user=clinic.cast.dave), device=device)
    response = _post(client, raw, clinic.session.pk)
    assert response.status_code == 201, response.content
    entry = TimelineEntry.objects.get(pk=response.json()["id"])
    assert entry.kind == "vitals"
    assert entry.device_id == "chair 3 monitor"
    assert entry.recorded_by == device.user


def test_a_device_token_does_nothing_else(clinic: Any, device: Any, client: Client) -> None:
    _token, raw = services.token_issue(actor=Actor(user=clinic.cast.dave), device=device)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/patients", **auth).status_code == 401
    assert client.get(f"/api/v1/sessions/{clinic.session.pk}/timeline", **auth).status_code \
        == 401
    assert client.get(reverse("patient_list")).status_code == 302  # no page session either
    assert not device.user.has_usable_password()


def test_a_device_cannot_write_to_another_sites_session(clinic: Any, client: Client) -> None:
    other = services.device_create(actor=Actor(user=clinic.cast.dave),
                                   site=clinic.cast.denver, name="spare")
    from ketamine_clinic.web.accounts.models import Site

    boulder_admin = clinic.cast.dave
    boulder_admin.sites.add(Site.objects.get(code="boulder"))
    boulder = services.device_create(actor=Actor(user=boulder_admin),
                                     site=clinic.cast.boulder, name="boulder monitor")
    _t, raw = services.token_issue(actor=Actor(user=boulder_admin), device=boulder)
    assert _post(client, raw, clinic.session.pk).status_code == 404
    assert other.site == clinic.cast.denver


def test_a_revoked_or_expired_token_or_a_deactivated_device_is_refused(
        clinic: Any, device: Any, client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    admin = Actor(user=clinic.cast.dave)
    token, raw = services.token_issue(actor=admin, device=device, label="bed 3")
    services.token_revoke(actor=admin, token=token)
    assert _post(client, raw, clinic.session.pk).status_code == 401
    token2, raw2 = services.token_issue(actor=admin, device=device, expires_days=1)
    token2.expires_at = timezone.now() - timedelta(minutes=1)
    token2.save()
    assert _post(client, raw2, clinic.session.pk).status_code == 401
    _t3, raw3 = services.token_issue(actor=admin, device=device)
    services.staff_set_active(actor=admin, user=device.user, active=False, reason="broken")
    assert _post(client, raw3, clinic.session.pk).status_code == 401


def test_the_device_page_lists_and_revokes_its_tokens(clinic: Any, device: Any,
                                                      client: Client) -> None:
    client.force_login(clinic.cast.dave)
    issued = client.post(reverse("staff_action", args=[device.user_id, "token"]),
                         {"label": "bed 3", "expires_days": ""})
    assert 'id="raw-token"' in issued.content.decode()
    token = device.user.api_tokens.get()
    html = client.get(reverse("staff_detail", args=[device.user_id])).content.decode()
    assert f'data-token="{token.prefix}"' in html
    client.post(reverse("token_revoke", args=[device.user_id, token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None
