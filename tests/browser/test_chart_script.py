"""The chart script (plotly, 4.8 MB) is served compressed under a hashed name with a long
cache lifetime, fetched only where a chart is shown and only after the page has loaded, so
that it holds up neither the first paint nor the load of the page (issue 17)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.web.lib.vendor import plotly_name, prepare_vendor_files
from tests.browser.conftest import log_in, wait_until
from tests.web.outcomes.conftest import answer, make_pv, make_series

pytestmark = pytest.mark.browser

YEAR_S = 365 * 24 * 3600


def test_the_chart_script_is_compressed_cached_for_good_and_blocks_neither_paint_nor_load(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    prepare_vendor_files()
    built = make_series(cast, make_pv(), cast.ana, timezone.localdate() - timedelta(days=20),
                        [(8, 4), (7, 3), (6, 2)])
    answer(cast, built, "week1", 3)
    url = f"{live_server.url}/vendor/{plotly_name()}"
    assert reverse("plotly_js") == f"/vendor/{plotly_name()}"

    for encoding in ("br", "gzip"):
        got = page.request.get(url, headers={"Accept-Encoding": encoding})
        assert got.status == 200
        assert got.headers["content-encoding"] == encoding
        cache = dict(part.strip().partition("=")[::2]
                     for part in got.headers["cache-control"].split(","))
        assert int(cache["max-age"]) >= YEAR_S
        assert "immutable" in cache
        assert len(got.body()) > 4_000_000  # Playwright hands over the decoded bytes

    log_in(page, live_server, cast.alice, "a long physician passphrase")
    # Hold the chart script back (the request stays pending until continued): the page must
    # paint and finish loading without it.
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route(f"**/vendor/{plotly_name()}", hold)
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/", wait_until="commit")
    wait_until(page, "performance.getEntriesByType('paint')"
                     ".some(p => p.name === 'first-contentful-paint')")
    wait_until(page, "performance.getEntriesByType('navigation')"
                     ".some(n => n.loadEventEnd > 0)")
    assert page.evaluate("typeof window.Plotly") == "undefined"
    assert page.locator("h1").is_visible()
    # Asked for only after the page has loaded, without blocking anything.
    wait_until(page, "document.querySelectorAll(\"script[src*='/vendor/plotly']\").length > 0")
    scripts = page.locator(f"script[src$='{plotly_name()}']")
    assert scripts.count() == 1
    assert page.evaluate(f"document.querySelector(\"script[src$='{plotly_name()}']\").async")
    assert [r.request.url for r in held] == [url]
    held[0].continue_()
    page.wait_for_selector("#patient-trajectory .js-plotly-plot .main-svg")
    shot("patient-chart-after-deferred-script")

    page.goto(f"{live_server.url}/patients/")  # no chart, no chart script
    wait_until(page, "performance.getEntriesByType('navigation')"
                     ".some(n => n.loadEventEnd > 0)")
    page.wait_for_timeout(200)
    assert page.locator("script[src*='/vendor/plotly']").count() == 0
