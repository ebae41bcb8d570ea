"""The stock API: each entry type, idempotent retries, clear errors that record nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from ketamine_clinic.web.stock.models import LedgerEntry
from tests.web.stock.conftest import SUPPLIER, Stock, Walk, open_day


def api(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def post(c: Client, path: str, body: dict[str, Any]) -> Any:
    return c.post(f"/api/v1{path}", json.dumps(body, default=str),
                  content_type="application/json")


def k() -> str:
    return uuid.uuid4().hex


def test_a_receipt_through_the_api_is_idempotent(stock: Stock) -> None:
    body = {"site": "denver", "product_ndc": stock.product.ndc, "lot_number": "API1",
            "expires_on": timezone.localdate() + timedelta(days=90), "containers": 2,
            "invoice_number": "INV-API", "received_on": timezone.localdate(),
            "idempotency_key": k(), **SUPPLIER}
    c = api(stock.cast.bob)
    first = post(c, "/stock/receive", body)
    again = post(c, "/stock/receive", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["containers"] == again.json()["containers"]
    assert again.json()["replayed"] is True


def test_draw_waste_and_reconcile_through_the_api(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    stock.nina.set_password("nina-secret-2026")
    stock.nina.save()
    c = api(stock.cast.bob)
    key = k()
    draw = post(c, "/stock/draw", {"session": walk.s.pk, "container": "DENVER-0001",
                                   "volume_ml": "4", "idempotency_key": key})
    assert draw.status_code == 201
    assert draw.json()["quantity_mg"] == "200"
    retry = post(c, "/stock/draw", {"session": walk.s.pk, "container": "DENVER-0001",
                                    "volume_ml": "4", "idempotency_key": key})
    assert retry.status_code == 200
    assert retry.json()["id"] == draw.json()["id"]
    self_witness = post(c, "/stock/waste", {
        "session": walk.s.pk, "quantity_mg": "200", "witness_username": "bob",
        "witness_password": "x", "idempotency_key": k()})
    assert self_witness.status_code == 400
    assert self_witness.json()["errors"][0]["field"] == "witness"
    waste = post(c, "/stock/waste", {
        "session": walk.s.pk, "quantity_mg": "200", "witness_username": "nina",
        "witness_password": "nina-secret-2026", "idempotency_key": k()})
    assert waste.status_code == 201
    assert waste.json()["witness"] == "nina"
    rec = c.post(f"/api/v1/stock/sessions/{walk.s.pk}/reconcile")
    assert rec.json()["status"] == "reconciled"
    assert rec.json()["can_close"]


def test_a_negative_draw_is_a_clear_error_and_records_nothing(stock: Stock,
                                                              walk: Walk) -> None:
    open_day(stock)
    before = LedgerEntry.objects.count()
    r = post(api(stock.cast.bob), "/stock/draw", {
        "session": walk.s.pk, "container": "DENVER-0001", "volume_ml": "-1",
        "idempotency_key": k()})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "volume_ml"
    assert LedgerEntry.objects.count() == before


def test_a_count_through_the_api_opens_discrepancies(stock: Stock) -> None:
    counted = {v.label: "10" for v in stock.vials}
    counted["DENVER-0002"] = "9"
    r = post(api(stock.cast.bob), "/stock/count", {"site": "denver", "moment": "opening",
                                                   "counted_ml": counted,
                                                   "idempotency_key": k()})
    assert r.status_code == 201
    assert r.json()["mismatches"] == 1
    assert len(r.json()["discrepancies"]) == 1


def test_balances_and_ledger_are_readable_but_not_by_front_desk(stock: Stock) -> None:
    rows = api(stock.cast.bob).get("/api/v1/stock/balances?site=denver").json()
    assert [r["balance_mg"] for r in rows] == ["500"] * 4
    ledger = api(stock.cast.erin).get("/api/v1/stock/ledger?site=denver").json()
    assert [e["kind"] for e in ledger] == ["receive"] * 4
    assert api(stock.cast.carol).get("/api/v1/stock/balances?site=denver").status_code == 403


def test_a_transfer_to_an_unregistered_site_is_refused(stock: Stock) -> None:
    r = post(api(stock.cast.dave), "/stock/transfer", {
        "container": "DENVER-0001", "to_site": "boulder", "invoice_number": "T-9",
        "idempotency_key": k()})
    assert r.status_code == 400
    assert "no DEA registration" in r.json()["errors"][0]["message"]


def test_an_entry_is_corrected_through_the_api_with_a_reason(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    c = api(stock.cast.bob)
    draw = post(c, "/stock/draw", {"session": walk.s.pk, "container": "DENVER-0001",
                                   "volume_ml": "4", "idempotency_key": k()}).json()
    no_reason = post(c, f"/stock/entries/{draw['id']}/corrections",
                     {"quantity_mg": "150", "reason": " "})
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    fixed = post(c, f"/stock/entries/{draw['id']}/corrections",
                 {"quantity_mg": "150", "reason": "drew 3 mL, not 4"})
    assert fixed.status_code == 201
    assert fixed.json()["corrects"] == draw["id"]
    assert fixed.json()["container_balance_mg"] == "350"
