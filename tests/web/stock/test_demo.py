"""The demo carries a stock history whose chain is intact and whose pages show it."""

from __future__ import annotations

from typing import Any

from django.test import Client


def test_the_demo_writes_a_stock_history_once(db: Any) -> None:
    from ketamine_clinic.web.demo import load_demo_data
    from ketamine_clinic.web.protocols.demo import demo_screenings
    from ketamine_clinic.web.sessions.demo import demo_sessions
    from ketamine_clinic.web.stock.demo import demo_stock
    from ketamine_clinic.web.stock.models import Discrepancy, Inventory, LedgerEntry
    from ketamine_clinic.web.stock.services import stock_verify

    load_demo_data()
    demo_screenings()
    demo_sessions()
    written = demo_stock()
    assert written == LedgerEntry.objects.count() > 0
    assert demo_stock() == 0  # once
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"receive", "count", "transfer_out", "transfer_in", "destroy", "draw"} <= kinds
    assert Inventory.objects.filter(kind="initial").count() == 2
    assert Discrepancy.objects.filter(state="explained").exists()
    assert all(not problems for problems in stock_verify().values())
    from ketamine_clinic.web.accounts.models import User

    c = Client()
    c.force_login(User.objects.get(username="admin.evans"))
    page = c.get("/stock/?site=denver").content.decode()
    assert "DENVER-0001" in page
    assert "Open discrepancies" in page
