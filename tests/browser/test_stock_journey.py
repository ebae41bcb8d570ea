"""The controlled-substance record in a real browser: the opening count (the initial, zero
inventory), a shipment received, a vial drawn for a session at the bedside, the infusion
charted, the remainder wasted with a witness who signs in on the same screen, the session
reconciled, the closing count, and the biennial inventory printed."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.web.stock.models import Inventory, LedgerEntry
from tests.browser.conftest import log_in
from tests.web.sessions import conftest as session_fixtures
from tests.web.sessions.conftest import Walk

clinic = session_fixtures.clinic
walk = session_fixtures.walk

pytestmark = pytest.mark.browser
PASSWORD = "a long nurse passphrase"
WITNESS_PASSWORD = "the witness's own passphrase"


@pytest.fixture
def stock_room(cast: Any) -> Any:
    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.stock import services

    services.ensure_default_grants()
    services.registration_save(actor=Actor(user=cast.dave), site=cast.denver,
                               dea_number="AF1234563", registrant_name="Front Range Pain "
                               "Clinic, Denver", address="1 Main St, Denver CO",
                               expires_on=timezone.localdate() + timedelta(days=700))
    product = services.product_create(actor=Actor(user=cast.dave), ndc="0143-9508-10",
                                      name="Ketamine hydrochloride", strength_mg_per_ml="50",
                                      container_volume_ml="10")
    nina = User.objects.create_user(username="nina", password=WITNESS_PASSWORD, role="nurse",
                                    first_name="Nina", last_name="Park", title="RN")
    nina.sites.set([cast.denver])
    return product


def chart_infusion(walk: Walk) -> None:
    """The infusion as the bedside charts it (through the session services; the chart's
    own pages have their browser journey): 60 mg/h, up to 70, a pause, stopped."""
    walk.infusing()
    walk.scores(55)  # an increase needs sedation and dissociation scored since the start
    walk.rate("70 mg/h", 60)
    walk.event("pause", 90, reason="nausea")
    walk.event("resume", 100)
    walk.event("stop", 150, reason="planned end")


def test_receive_draw_chart_waste_reconcile_count_and_print_the_inventory(
        transactional_db: Any, walk: Walk, stock_room: Any, live_server: Any, page: Any,
        shot: Any) -> None:
    bob = walk.c.cast.bob
    log_in(page, live_server, bob, PASSWORD)
    page.click("header >> text=Stock")
    page.wait_for_selector("text=no initial inventory")
    # The opening count of an empty stock room is the initial (zero) inventory.
    page.click("nav >> text=Count")
    page.select_option("[name=inventory_kind]", "initial")
    page.click("button:has-text('Submit the count')")
    page.wait_for_selector("text=Zero inventory")
    page.click("nav >> text=Receive")
    page.fill("[name=containers]", "3")
    page.fill("[name=lot_number]", "KX2031")
    page.fill("[name=expires_on]", (timezone.localdate() + timedelta(days=300)).isoformat())
    page.fill("[name=invoice_number]", "INV-7781")
    page.fill("[name=supplier_name]", "Front Range Medical Supply")
    page.fill("[name=supplier_address]", "100 Colfax Ave, Denver CO 80202")
    page.fill("[name=supplier_dea_number]", "RF1234564")  # a typing error
    page.click("button:has-text('Record the receipt')")
    page.wait_for_selector(".messages li:has-text('fails the DEA check digit')")
    assert LedgerEntry.objects.filter(kind="receive").count() == 0
    page.fill("[name=supplier_dea_number]", "RF1234563")
    page.click("button:has-text('Record the receipt')")
    page.wait_for_selector(".messages li:has-text('Received 3 vials')")
    assert "1500 mg in 3 vials" in page.inner_text("main")
    shot("stock-room-after-receipt")

    # The bedside: a tablet beside the chair.
    page.set_viewport_size({"width": 1180, "height": 820})
    page.goto(f"{live_server.url}/stock/sessions/{walk.s.pk}/")
    page.click("section[aria-label=Draw] button:has-text('Record the draw')")
    page.wait_for_selector(".messages li:has-text('Drew 500 mg from vial DENVER-0001')")
    chart_infusion(walk)
    page.reload()
    reconciliation = page.inner_text("section[aria-label=Reconciliation]")
    assert "not yet accounted for" in reconciliation
    # The waste is prefilled with what is left; the witness signs in on this screen.
    wasted = page.input_value("[name=quantity_mg]")
    assert 0 < float(wasted) < 500
    page.select_option("[name=witness_username]", "nina")
    page.fill("[name=witness_password]", WITNESS_PASSWORD)
    shot("bedside-waste-with-witness")
    page.click("button:has-text('Record the waste, co-signed')")
    page.wait_for_selector(".messages li:has-text('witnessed by Nina Park, RN')")
    page.click("button:has-text('Reconcile for closing')")
    page.wait_for_selector(".messages li:has-text('Reconciled')")
    assert "reconciled" in page.inner_text("section[aria-label=Reconciliation]")
    shot("bedside-reconciled")
    # The session's own page links to its ketamine record.
    page.goto(f"{live_server.url}/sessions/{walk.s.pk}/")
    page.click("text=Ketamine record: draw, waste and reconcile")
    page.wait_for_selector("section[aria-label=Reconciliation]")
    assert page.url.endswith(f"/stock/sessions/{walk.s.pk}/")
    page.go_back()
    shot("session-page-with-its-ketamine-record")

    # Close of the day: a blind count that is also the biennial inventory.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/stock/count/")
    assert "500 mg" not in page.inner_text("main")  # blind: no balances shown
    page.select_option("[name=moment]", "closing")
    page.select_option("[name=inventory_kind]", "biennial")
    for field in page.locator("input[name^=counted_]").all():
        field.fill("10")
    shot("closing-count")
    page.click("button:has-text('Submit the count')")
    page.wait_for_selector("text=Biennial inventory of controlled substances")
    inv = Inventory.objects.get(kind="biennial")
    assert inv.lines[0]["full_containers"] == 2
    shot("biennial-inventory")
    with page.expect_download() as download:
        page.click("text=Print (PDF)")
    pdf_path = download.value.path()
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf_path.read_bytes())).pages[0].extract_text()
    assert "AF1234563" in text
    assert "KX2031" in text
    assert "close of business" in text
