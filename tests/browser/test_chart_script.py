"""The page's static files carry a content hash in their names and are served compressed and
cached for a year (whitenoise's manifest storage); nothing in <head> but the small style
sheet holds up the first paint. The chart script (plotly, 4.8 MB) is served compressed under
a hashed name with a long cache lifetime, fetched only where a chart is shown and only after
the page has loaded, so that it holds up neither the first paint nor the load of the page
(issue 17)."""

from __future__ import annotations

import re
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
HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.(css|js)$")


def assert_compressed_and_cached_for_good(page: Any, url: str, min_bytes: int) -> None:
    for encoding in ("br", "gzip"):
        got = page.request.get(url, headers={"Accept-Encoding": encoding})
        assert got.status == 200, url
        assert got.headers["content-encoding"] == encoding, url
        cache = dict(part.strip().partition("=")[::2]
                     for part in got.headers["cache-control"].split(","))
        assert int(cache["max-age"]) >= YEAR_S, url
        assert "immutable" in cache, url
        assert len(got.body()) > min_bytes, url  # Playwright hands over the decoded bytes


def test_the_chart_script_is_compressed_cached_for_good_and_blocks_neither_paint_nor_load(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    prepare_vendor_files()
    built = make_series(cast, make_pv(), cast.ana, timezone.localdate() - timedelta(days=20),
                        [(8, 4), (7, 3), (6, 2)])
    answer(cast, built, "week1", 3)
    url = f"{live_server.url}/vendor/{plotly_name()}"
    assert reverse("plotly_js") == f"/vendor/{plotly_name()}"

    assert_compressed_and_cached_for_good(page, url, min_bytes=4_000_000)

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
    # The page's own files: content-hashed names, compressed, cached for a year; nothing in
    # <head> holds up the first paint but the (small) style sheet.
    head = page.evaluate("""() => ({
      css: [...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href),
      js: [...document.querySelectorAll('script[src]')].map(s => s.src),
      blocking: [...document.head.querySelectorAll('script')]
        .filter(s => !s.defer && !s.async).map(s => s.outerHTML),
    })""")
    assert head["blocking"] == []
    assert len(head["css"]) == 1
    assert any("/js/app." in src for src in head["js"])
    for asset in head["css"] + [src for src in head["js"] if "/static/" in src]:
        assert HASHED.search(asset), asset
        assert_compressed_and_cached_for_good(page, asset, min_bytes=1_000)
    css_bytes = page.request.get(head["css"][0]).body()
    assert len(css_bytes) < 16_000  # the one file that blocks the paint stays small
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
