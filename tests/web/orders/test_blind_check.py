"""Issue 13, finding 1: until the independent double check is done, nothing the checker (or
anyone but the prescribers) can open shows the ordered numbers: not the order page, the
patient page, the order list, the limit-event report, the PDF, nor any API answer."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.accounts.models import ApiToken

from .conftest import World

# An order above the soft maximum (overridden with a reason that quotes the number), so
# that it has a limit event carrying the ordered value: 100 mg/h at 70 kg.
OVER = {"max_rate": "100 mg/h", "start_rate": "85 mg/h", "titration_step": "5 mg/h",
        "overrides": [{"quantity": "rate_mg_per_kg_per_h", "reason_code": "other",
                       "free_text": "tolerated 100 mg/h before"}]}
# Numbers of this order that must not leak: its rates (mg/h, mg/kg/h and mL/h at 1 mg/mL).
SECRETS = ("85 mg/h", "100 mg/h", "1.214", "1.429", ">85<", ">100<", "tolerated 100")


def _api(client: Client, user: Any, path: str) -> str | None:
    _, raw = ApiToken.issue(user)
    response = client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code in (200, 403), response.content
    return json.dumps(response.json()) if response.status_code == 200 else None


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _everything(world: World, client: Client, user: Any, order: Any) -> dict[str, str]:
    client.force_login(user)
    pages = {
        "order page": reverse("order_detail", args=[order.pk]),
        "patient page": reverse("patient_detail", args=[order.patient_id]),
        "order list": reverse("order_list"),
        "limit report": reverse("limit_report"),
    }
    seen = {}
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code in (200, 403)  # 403: the role may not open the page
        if response.status_code == 200:
            seen[name] = response.content.decode()
    for path in (f"/orders/{order.pk}", f"/orders/{order.pk}/limit-events",
                 f"/orders?patient_id={order.patient_id}", "/limit-events"):
        text = _api(client, user, path)
        if text is not None:
            seen[f"GET {path}"] = text
    return seen


def test_the_checker_sees_none_of_a_signed_orders_numbers_anywhere(
    world: World, client: Client
) -> None:
    order = world.signed(**OVER)
    assert order.limit_events.exists()
    # Bob (nurse) does the check; a second physician may too, and she reads the reports.
    from ketamine_clinic.web.accounts.models import User

    phil = User.objects.create_user(username="phil", password=None, role="physician")
    phil.sites.add(order.patient.site)
    opened = set()
    for user in (world.cast.bob, phil, world.cast.erin):
        seen = _everything(world, client, user, order)
        opened |= set(seen)
        assert {name: _leaks(text) for name, text in seen.items() if _leaks(text)} == {}
    assert len(opened) == 8  # every page and answer was opened by someone
    client.force_login(world.cast.bob)
    assert client.get(reverse("order_pdf", args=[order.pk])).status_code == 403


def test_the_prescriber_sees_them_and_everyone_does_once_verified(
    world: World, client: Client
) -> None:
    order = world.signed(**OVER)
    seen = _everything(world, client, world.cast.alice, order)
    assert "85 mg/h" in seen["order page"]
    assert "100 mg/h" in seen["patient page"]
    assert "85 mg/h" in seen["order list"]
    assert "tolerated 100" in seen["GET /limit-events"]
    from ketamine_clinic.web.orders import services

    c = order.signed_computed
    services.order_verify(actor=world.actor(world.cast.bob), order=order,
                          concentration_mg_per_ml=str(c["concentration_mg_per_ml"]),
                          pump_rate_ml_per_h=str(c["start"]["pump_rate_ml_per_h"]))
    after = _everything(world, client, world.cast.bob, order)
    assert "85 mg/h" in after["order page"]
    assert "tolerated 100" in after[f"GET /orders/{order.pk}/limit-events"]
    events = json.loads(after[f"GET /orders/{order.pk}/limit-events"])
    assert all(e["value"] is not None and not e["numbers_hidden"] for e in events)
