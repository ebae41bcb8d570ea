"""Stock pages through the test client: each shows what it should and refuses bad input
with a sentence, recording nothing."""

from __future__ import annotations

from typing import Any

from django.test import Client

from ketamine_clinic.web.stock.models import Inventory, LedgerEntry
from tests.web.stock.conftest import Stock, Walk, open_day


def client_for(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_the_stock_room_shows_vials_and_balances(stock: Stock) -> None:
    page = client_for(stock.cast.bob).get("/stock/").content.decode()
    assert "DENVER-0004" in page
    assert "2000 mg in 4 vials" in page
    assert "no initial inventory" in page


def test_front_desk_cannot_see_the_stock_room(stock: Stock) -> None:
    assert client_for(stock.cast.carol).get("/stock/").status_code == 403


def test_the_count_page_is_blind(stock: Stock) -> None:
    page = client_for(stock.cast.bob).get("/stock/count/").content.decode()
    assert "DENVER-0001" in page
    assert "500 mg" not in page


def test_a_count_posted_from_the_page_can_be_the_initial_inventory(stock: Stock) -> None:
    data = {f"counted_{v.pk}": "10" for v in stock.vials}
    r = client_for(stock.cast.bob).post("/stock/count/", {**data, "moment": "opening",
                                                          "inventory_kind": "initial"})
    inv = Inventory.objects.get()
    assert r.status_code == 302
    assert f"/stock/inventories/{inv.pk}/" in r["Location"]
    c = client_for(stock.cast.dave)
    pdf = c.get(f"/stock/inventories/{inv.pk}/?format=pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content[:4] == b"%PDF"
    csv = c.get(f"/stock/inventories/{inv.pk}/?format=csv").content.decode()
    assert "AF1234563" in csv
    assert "KX2031" in csv


def test_a_waste_with_a_wrong_witness_password_records_nothing(stock: Stock,
                                                               walk: Walk) -> None:
    open_day(stock)
    stock.nina.set_password("nina-secret-2026")
    stock.nina.save()
    c = client_for(stock.cast.bob)
    c.post(f"/stock/sessions/{walk.s.pk}/", {"action": "draw",
                                             "container": stock.vials[0].pk})
    before = LedgerEntry.objects.count()
    r = c.post(f"/stock/sessions/{walk.s.pk}/", {
        "action": "waste", "quantity_mg": "100", "witness_username": "nina",
        "witness_password": "wrong"}, follow=True)
    assert "could not be signed in" in r.content.decode()
    assert LedgerEntry.objects.count() == before
    r = c.post(f"/stock/sessions/{walk.s.pk}/", {
        "action": "waste", "quantity_mg": "100", "witness_username": "nina",
        "witness_password": "nina-secret-2026"}, follow=True)
    assert "witnessed by Nina Park, RN" in r.content.decode()


def test_the_dispensing_log_exports_per_patient(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    client_for(stock.cast.bob).post(f"/stock/sessions/{walk.s.pk}/",
                                    {"action": "draw", "container": stock.vials[0].pk})
    c = client_for(stock.cast.dave)
    csv = c.get(f"/stock/reports/?site=denver&report=dispensing&patient={walk.s.patient_id}"
                "&format=csv").content.decode()
    assert "Ruiz, Ana" in csv
    assert "Drawn for a session" in csv
    pdf = c.get("/stock/reports/?site=denver&report=ledger&format=pdf")
    assert pdf.content[:4] == b"%PDF"


def test_only_administrators_open_the_settings(stock: Stock) -> None:
    assert client_for(stock.cast.bob).get("/stock/settings/").status_code == 403
    page = client_for(stock.cast.dave).get("/stock/settings/?site=denver").content.decode()
    assert "Who may do what" in page
    assert "AF1234563" in page


def test_the_cli_prints_the_inventory_and_verifies_the_chain(stock: Stock, tmp_path: Any,
                                                             capsys: Any) -> None:
    from ketamine_clinic.cli import main

    assert main(["stock", "inventory", "--site", "denver"]) == 2  # none taken yet
    data = {v.pk: "10" for v in stock.vials}
    from ketamine_clinic.web.stock import services

    services.stock_count(actor=stock.actor(stock.cast.bob), site=stock.cast.denver,
                         moment="opening", counted_ml=data, inventory_kind="initial")
    pdf = tmp_path / "inv.pdf"
    assert main(["stock", "inventory", "--site", "denver", "--pdf", str(pdf)]) == 0
    assert pdf.read_bytes()[:4] == b"%PDF"
    assert main(["stock", "inventory", "--site", "denver"]) == 0
    assert "4 full" in capsys.readouterr().out
    assert main(["stock", "verify"]) == 0
    assert "denver: chain intact" in capsys.readouterr().out


def test_the_reports_inventory_and_vial_pages_render(stock: Stock) -> None:
    data = {f"counted_{v.pk}": "10" for v in stock.vials}
    client_for(stock.cast.bob).post("/stock/count/", {**data, "moment": "opening",
                                                      "inventory_kind": "initial"})
    inv = Inventory.objects.get()
    c = client_for(stock.cast.dave)
    assert "Initial inventory" in c.get(f"/stock/inventories/{inv.pk}/").content.decode()
    page = c.get("/stock/reports/?site=denver&report=ledger&verify=1").content.decode()
    assert "chain intact" in page
    assert "Counted" in page
    vial = c.get(f"/stock/vials/{stock.vials[0].pk}/").content.decode()
    assert "DEA Form 41" in vial
    assert "Received" in vial


def test_the_stock_room_and_reports_read_in_a_fixed_number_of_queries(
        stock: Stock, walk: Walk, django_assert_max_num_queries: Any) -> None:
    open_day(stock)
    from ketamine_clinic.web.stock import services

    for vial in stock.vials[:3]:
        services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s, container=vial,
                            volume_ml="1")
    c = client_for(stock.cast.bob)
    with django_assert_max_num_queries(30):  # 26 measured with 15 entries; not per entry
        page = c.get("/stock/").content.decode()
    assert "Draw, waste, reconcile" in page
    assert "Ruiz, Ana" in page
    with django_assert_max_num_queries(25):
        c.get("/stock/reports/?report=ledger")


def test_a_day_left_open_is_shown_on_the_stock_room(stock: Stock) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from ketamine_clinic.web.stock.models import ClinicDay
    from ketamine_clinic.web.stock.services import local_date

    yesterday = local_date(stock.cast.denver, timezone.now()) - timedelta(days=1)
    ClinicDay.objects.create(site=stock.cast.denver, day=yesterday, state="open")
    page = client_for(stock.cast.bob).get("/stock/").content.decode()
    assert "closing count missing" in page
    assert yesterday.isoformat() in page
