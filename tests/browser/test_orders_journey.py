"""An infusion order in a real browser: written with a soft-limit override, signed by the
physician, verified blind by a nurse (a mismatch first), active with its PDF sheet, and
the medical director's limit-event report."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.orders.models import LimitEvent, Order
from tests.browser.conftest import log_in
from tests.web.orders.conftest import make_ready, screen

pytestmark = pytest.mark.browser


def _log_out(page: Any, live_server: Any) -> None:
    page.click("header.top button:has-text('Log out')")
    page.wait_for_url(f"{live_server.url}/login/**")


def test_an_order_is_written_signed_verified_and_reported(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped

    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    make_ready(cast, cast.ana, "70")
    screen(cast, cast.ana, pv)

    log_in(page, live_server, cast.alice, "a long physician passphrase")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    page.click("#new-order")
    page.wait_for_selector("#order-form")
    page.fill("#id_bag", "250 mg in 500 mL")
    page.fill("#id_max_rate", "100 mg/h")
    page.click("#check-doses")
    page.wait_for_selector("#preview .titration")
    text = page.inner_text("#preview")
    assert "120" in text  # 60 mg/h from a 0.5 mg/mL bag
    assert "0.857" in text  # 60 mg/h at 70 kg
    shot("preview-soft-limit")
    page.select_option("select[name='override_code.rate_mg_per_kg_per_h']", "prior-tolerance")
    page.fill("input[name='override_text.rate_mg_per_kg_per_h']",
              "tolerated 100 mg/h in the last series")
    page.click("#write-order")
    page.wait_for_selector("#status:has-text('Draft')")
    order = Order.objects.get()
    shot("draft")
    page.click("#sign")
    page.wait_for_selector("#status:has-text('Signed')")
    shot("signed")
    _log_out(page, live_server)

    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.click("header.top a:has-text('Orders')")
    page.click(f"#awaiting-verification a:has-text('order {order.pk}')")
    assert page.is_visible("#numbers-hidden")
    page.click("#verify-link")
    page.fill("#id_concentration_mg_per_ml", "0.5")
    page.fill("#id_pump_rate_ml_per_h", "60")  # the mg/h number typed as mL/h
    page.click("#verify")
    page.wait_for_selector("#error-pump_rate_ml_per_h")
    assert "does not match" in page.inner_text("#error-pump_rate_ml_per_h")
    shot("verify-mismatch")
    page.fill("#id_pump_rate_ml_per_h", "120")
    page.click("#verify")
    page.wait_for_selector("#status:has-text('Active')")
    shot("active")
    pdf = page.request.get(f"{live_server.url}/orders/{order.pk}/sheet.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    _log_out(page, live_server)

    log_in(page, live_server, cast.dave, "a long administrator passphrase")
    page.click("header.top a:has-text('Limit events')")
    page.wait_for_selector("#chart .js-plotly-plot")
    assert "prior-tolerance" in page.inner_text("main")
    shot("report")
    assert LimitEvent.objects.filter(outcome="overridden").count() == 2  # write and sign
