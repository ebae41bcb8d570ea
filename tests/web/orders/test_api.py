"""The orders API under /api/v1/: every endpoint for every role and for Oscar, the dose
check, the workflow and its refusals as JSON naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.orders.models import LimitEvent, Order

from .conftest import ORDER, Orders, World

ALL = frozenset(Role.values)
CLINICAL = frozenset({"physician", "nurse"})
PHYSICIAN = frozenset({"physician"})
REPORTS = frozenset({"physician", "clinic_admin", "auditor"})


class Api:
    def __init__(self, client: Client, user: Any) -> None:
        self.client = client
        _, self.raw = ApiToken.issue(user)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"}
        if method == "get":
            return self.client.get(f"/api/v1{path}", body or {}, **kwargs)
        return self.client.post(f"/api/v1{path}", json.dumps(body or {}),
                                content_type="application/json", **kwargs)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Orders], str]
    allowed: frozenset[str]
    body: Callable[[Orders], dict[str, Any]] | None = None
    patient_bound: bool = True


def _order_body(o: Orders) -> dict[str, Any]:
    return {**ORDER, "protocol_version_id": o.w.pv.pk}


ENDPOINTS = [
    Endpoint("dose check", "post", lambda o: "/dose-check", CLINICAL,
             lambda o: {"protocol": "clinic-standard", "weight_kg": "70", "rate": "60 mg/h",
                        "bag": "500 mg in 500 mL"}, patient_bound=False),
    Endpoint("list orders", "get", lambda o: "/orders", ALL, patient_bound=False),
    Endpoint("write order", "post", lambda o: f"/patients/{o.w.cast.ana.pk}/orders", PHYSICIAN,
             _order_body),
    Endpoint("get order", "get", lambda o: f"/orders/{o.active.pk}", ALL),
    Endpoint("sign", "post", lambda o: f"/orders/{o.draft.pk}/sign", PHYSICIAN),
    Endpoint("verify", "post", lambda o: f"/orders/{o.signed.pk}/verify", CLINICAL,
             lambda o: {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "60"}),
    Endpoint("discontinue", "post", lambda o: f"/orders/{o.active.pk}/discontinue", PHYSICIAN,
             lambda o: {"reason": "stopped"}),
    Endpoint("complete", "post", lambda o: f"/orders/{o.active.pk}/complete", PHYSICIAN),
    Endpoint("change", "post", lambda o: f"/orders/{o.active.pk}/change", PHYSICIAN,
             lambda o: {**_order_body(o), "change_reason": "lower"}),
    Endpoint("order limit events", "get", lambda o: f"/orders/{o.active.pk}/limit-events",
             ALL),
    Endpoint("limit report", "get", lambda o: "/limit-events", REPORTS, patient_bound=False),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(Role.values))
def test_each_role_reaches_exactly_the_endpoints_it_is_allowed(
    orders: Orders, client: Client, endpoint: Endpoint, role: str
) -> None:
    api = Api(client, orders.w.cast.by_role()[role])
    body = endpoint.body(orders) if endpoint.body else None
    response = api.call(endpoint.method, endpoint.path(orders), body)
    if role in endpoint.allowed:
        # Alice signed the order she would verify: the service refuses (400, named).
        expected = (200, 201, 400) if endpoint.name == "verify" and role == "physician" \
            else (200, 201)
        assert response.status_code in expected, response.content[:600]
    else:
        assert response.status_code == 403
        assert response.json()["errors"][0]["message"].startswith("your role may not")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_user_of_another_site_gets_nothing_of_the_patient(
    orders: Orders, client: Client, endpoint: Endpoint
) -> None:
    api = Api(client, orders.w.cast.oscar)
    body = endpoint.body(orders) if endpoint.body else None
    response = api.call(endpoint.method, endpoint.path(orders), body)
    if "nurse" not in endpoint.allowed:
        assert response.status_code == 403
    elif endpoint.patient_bound:
        assert response.status_code == 404
    else:
        assert response.status_code == 200
        assert "Ruiz" not in response.content.decode()
        if endpoint.name == "list orders":
            assert response.json() == {"items": [], "count": 0}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_without_a_token_the_api_answers_401(orders: Orders, client: Client,
                                             endpoint: Endpoint) -> None:
    body = endpoint.body(orders) if endpoint.body else {}
    if endpoint.method == "get":
        response = client.get(f"/api/v1{endpoint.path(orders)}")
    else:
        response = client.post(f"/api/v1{endpoint.path(orders)}", json.dumps(body),
                               content_type="application/json")
    assert response.status_code == 401


# --------------------------------------------------------------------------- behaviour


def test_the_dose_check_gives_every_form_and_the_limits(world: World, client: Client) -> None:
    api = Api(client, world.cast.bob)
    response = api.call("post", "/dose-check", {
        "protocol": "clinic-standard", "weight_kg": "70", "rate": "60 mL/h",
        "bag": "250 mg in 500 mL"})
    data = response.json()
    assert response.status_code == 200
    assert data["rate_mg_per_h"] == 30  # 60 mL/h x 0.5 mg/mL
    assert data["rate_mg_per_kg_per_h"] == pytest.approx(30 / 70)
    assert data["protocol_version_id"] == world.pv.pk
    assert data["projected_session_total_mg"] == 120  # 30 mg/h x the protocol's 4 h
    asking = [x["check"] for x in data["cross_checks"] if x["status"] == "confirm"]
    assert asking == ["pump_rate_equals_mg_per_h"]
    assert LimitEvent.objects.count() == 0  # a calculation: nothing stored


@pytest.mark.parametrize(
    ("change", "field"),
    [({"weight_kg": "0"}, "weight_kg"), ({"weight_kg": "heavy"}, "weight_kg"),
     ({"rate": "-1 mg/h"}, "rate"), ({"rate": "60 furlongs/h"}, "rate"),
     ({"bag": "500 mg in 250 mL"}, "bag"), ({"bag": "500 mg in 0 mL"}, "bag"),
     ({"protocol": "nonesuch"}, "protocol")],
)
def test_the_dose_check_refuses_bad_input_naming_the_field(
    world: World, client: Client, change: dict[str, str], field: str
) -> None:
    api = Api(client, world.cast.bob)
    body = {"protocol": "clinic-standard", "weight_kg": "70", "rate": "60 mg/h",
            "bag": "500 mg in 500 mL", **change}
    response = api.call("post", "/dose-check", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_the_whole_workflow_through_the_api(world: World, client: Client) -> None:
    alice, bob = Api(client, world.cast.alice), Api(client, world.cast.bob)
    written = alice.call("post", f"/patients/{world.cast.ana.pk}/orders",
                         {**ORDER, "protocol_version_id": world.pv.pk})
    assert written.status_code == 201
    order_id = written.json()["id"]
    assert written.json()["computed"]["start"]["pump_rate_ml_per_h"] == 60
    nurse_sign = bob.call("post", f"/orders/{order_id}/sign")
    assert nurse_sign.status_code == 403
    signed = alice.call("post", f"/orders/{order_id}/sign")
    assert signed.json()["status"] == "signed"
    hidden = bob.call("get", f"/orders/{order_id}").json()
    assert hidden["numbers_hidden"] is True
    assert hidden["computed"] is None
    assert hidden["start_rate_text"] == ""
    self_check = alice.call("post", f"/orders/{order_id}/verify",
                            {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "60"})
    assert self_check.status_code == 400
    assert self_check.json()["errors"][0]["field"] == "verified_by"
    mismatch = bob.call("post", f"/orders/{order_id}/verify",
                        {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "600"})
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"][0]["field"] == "pump_rate_ml_per_h"
    verified = bob.call("post", f"/orders/{order_id}/verify",
                        {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "60"})
    assert verified.json()["status"] == "active"
    changed = alice.call("post", f"/orders/{order_id}/change",
                         {**ORDER, "protocol_version_id": world.pv.pk, "max_rate": "60 mg/h",
                          "titration_step": "", "change_reason": "stay at 60"})
    assert changed.status_code == 201
    assert changed.json()["replaces_id"] == order_id
    assert Order.objects.get(pk=order_id).status == "discontinued"


def test_a_soft_limit_through_the_api_needs_an_override_and_is_reported(
    world: World, client: Client
) -> None:
    alice = Api(client, world.cast.alice)
    path = f"/patients/{world.cast.ana.pk}/orders"
    body = {**ORDER, "protocol_version_id": world.pv.pk, "max_rate": "100 mg/h"}
    refused = alice.call("post", path, body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "override.rate_mg_per_kg_per_h"
    ok = alice.call("post", path, {**body, "overrides": [
        {"quantity": "rate_mg_per_kg_per_h", "reason_code": "other", "free_text": "agreed"}]})
    assert ok.status_code == 201
    events = alice.call("get", f"/orders/{ok.json()['id']}/limit-events").json()
    assert [(e["outcome"], e["reason_code"]) for e in events] == [("overridden", "other")]
    report = Api(client, world.cast.erin).call("get", "/limit-events").json()
    assert report["total"] == 2
    assert {r["outcome"]: r["count"] for r in report["by_outcome"]} == {"hit": 1,
                                                                        "overridden": 1}
    assert report["by_reason"] == [{"reason_code": "other", "count": 1}]
    assert {r["prescriber"] for r in report["by_prescriber"]} == {"alice"}


def test_an_unknown_status_filter_is_refused(world: World, client: Client) -> None:
    response = Api(client, world.cast.bob).call("get", "/orders", {"status": "pending"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"


def test_a_second_series_on_one_screening_is_refused_with_the_reason(
    world: World, client: Client
) -> None:
    alice = Api(client, world.cast.alice)
    path = f"/patients/{world.cast.ana.pk}/orders"
    body = {**ORDER, "protocol_version_id": world.pv.pk}
    assert alice.call("post", path, body).status_code == 201
    refused = alice.call("post", path, body)
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["field"] == "screening"
    assert "a new series needs a new screening" in error["message"]
    world.screen()
    assert alice.call("post", path, body).status_code == 201
