"""Issue 13, finding 11: an idempotency key belongs to one client and one endpoint; the
same key with a different body is a 409 naming what differs, and nothing new is stored."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.sessions.models import TimelineEntry
from tests.web.sessions.conftest import VITALS, Walk


def post(client: Client, user: Any, path: str, body: dict[str, Any]) -> Any:
    _, raw = ApiToken.issue(user)
    return client.post(f"/api/v1{path}", data=json.dumps(body),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_same_key_with_another_value_is_refused_naming_it(walk: Walk,
                                                               client: Client) -> None:
    walk.infusing()
    path = f"/sessions/{walk.s.pk}/vitals"
    body = {**VITALS, "systolic_bp_mmhg": 120, "idempotency_key": "mon-7-0042",
            "occurred_at": walk.at(45).isoformat()}
    first = post(client, walk.c.cast.bob, path, body)
    assert first.status_code == 201, first.content
    again = post(client, walk.c.cast.bob, path, body)  # a true retry: replayed
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    changed = post(client, walk.c.cast.bob, path, {**body, "systolic_bp_mmhg": 250})
    assert changed.status_code == 409, changed.content
    message = changed.json()["errors"][0]["message"]
    assert "systolic_bp_mmhg" in message
    assert "250" not in message
    assert "120" not in message
    rows = TimelineEntry.objects.filter(session=walk.s, kind="vitals", occurred_at=walk.at(45))
    assert [e.payload["systolic_bp_mmhg"] for e in rows] == [120]


def test_a_key_belongs_to_its_client_and_endpoint(walk: Walk, client: Client) -> None:
    walk.infusing()
    body = {**VITALS, "idempotency_key": "shared-key-1",
            "occurred_at": walk.at(45).isoformat()}
    path = f"/sessions/{walk.s.pk}/vitals"
    bob = post(client, walk.c.cast.bob, path, body)
    assert bob.status_code == 201, bob.content
    # Another nurse's client may use the same key: it is another key, another entry.
    from ketamine_clinic.web.accounts.models import User

    nina = User.objects.create_user(username="nina", password=None, role="nurse")
    nina.sites.set([walk.s.site])
    other = post(client, nina, path, body)
    assert other.status_code == 201, other.content
    assert other.json()["id"] != bob.json()["id"]
    # The same key on another endpoint is another key too (a note, not a replay or 400).
    note = post(client, walk.c.cast.bob, f"/sessions/{walk.s.pk}/observations",
                {"kind": "note", "payload": {"text": "calm"}, "idempotency_key": "shared-key-1",
                 "occurred_at": walk.at(46).isoformat()})
    assert note.status_code == 201, note.content
