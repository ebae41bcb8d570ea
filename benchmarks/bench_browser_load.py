"""Browser load against server time, page by page, in a real browser against a real server.

Run: ``.venv/bin/python benchmarks/bench_browser_load.py [--patients 80]
[--backend sqlite|postgres] [--repeat 3] [--shots]``. In a fresh database (as
``bench_pages.py``: a temporary SQLite folder or the PostgreSQL database
``bench_browser_load``), ``ketamine-clinic demo --no-serve --patients N`` loads the demo and a
synthetic cohort, then ``ketamine-clinic serve`` (gunicorn, as in production) serves it on a
free local port. The system Chromium (Playwright) signs in as the demo physician and loads
each main page, bedside pages (chairs, today's census, a session) at a tablet's viewport.

For each page and each load, from the same navigation: the server time (Navigation Timing
``responseStart - requestStart``: the request sent until the first byte back, which on a
loopback connection is the server's work) and the browser load (``loadEventEnd`` and the
first contentful paint, both from the start of the navigation). A *cold* load is a browser
context with an empty HTTP cache (a first visit); a *warm* load is the same page opened again
in that context (static files from the cache, as for a clinician moving between pages).
For a page with a chart, the time its last chart was drawn (plotly is fetched
after the load event, ``static/js/app.js``) is shown beside, without a goal. Each server
is warmed up first (one untimed visit per page); figures are medians over
``--repeat`` rounds, the ratio is the median of each round's load / server.

The browser's own floor: two static HTML files written into the static folder and served
by the same server (whitenoise, no Django view): a blank page, and a page with the app's
<head> (its hashed style sheet and deferred scripts) and a short body. Their load is what the
browser spends on a navigation that costs the server nothing; ``floor/server`` is
(server time + that floor) / server time, the best ratio a page of that server time can
reach, and a page whose floor/server is over 2x says so. A second table splits each warm
load into its phases (Navigation and Resource Timing, ms from the navigation's start).

The goal (issue 17) is a browser load at most 2x the server time. Results are figures, not
pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fresh_db import fresh_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# (the browser tests' conftest names its screenshot folder by the database: settings needed)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketamine_clinic.web.settings")
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path  # noqa: E402

CLI = str(Path(sys.executable).parent / "ketamine-clinic")
SHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 820, "height": 1180}  # a 10.9-inch tablet held upright

# What one navigation took, read from the page once its load event has ended.
TIMING_JS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByType('paint')
    .find(p => p.name === 'first-contentful-paint');
  const res = performance.getEntriesByType('resource');
  return {
    server: n.responseStart - n.requestStart,
    request_start: n.requestStart,
    response_start: n.responseStart,
    redirects: n.redirectCount,
    response_end: n.responseEnd,
    dom_interactive: n.domInteractive,
    dcl_end: n.domContentLoadedEventEnd,
    load_start: n.loadEventStart,
    res_end: res.filter(r => r.startTime < n.loadEventStart)
      .reduce((m, r) => Math.max(m, r.responseEnd), 0),
    load: n.loadEventEnd,
    fcp: fcp ? fcp.startTime : null,
    html_kb: n.transferSize / 1024,
    fetched_kb: res.reduce((s, r) => s + r.transferSize, 0) / 1024,
    cached: res.filter(r => r.transferSize === 0).length,
    resources: res.length,
  };
}"""


def page_urls() -> dict[str, Any]:
    """The demo physician's login and (label, path, bedside) of each main page, from the
    loaded database (run inside a process whose environment points at it)."""
    from ketamine_clinic.commands.django_setup import setup_django

    setup_django(None)
    from django.db.models import Count

    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.demo import DEMO_PASSWORD
    from ketamine_clinic.web.orders.models import Order
    from ketamine_clinic.web.protocols.models import ProtocolVersion
    from ketamine_clinic.web.sessions.models import InfusionSession
    from ketamine_clinic.web.stock.models import Container

    physician = User.objects.filter(role="physician").order_by("id").first()
    assert physician is not None
    site_ids = list(physician.sites.values_list("id", flat=True))
    site = physician.sites.order_by("id").first()
    assert site is not None
    sessions = InfusionSession.objects.filter(site_id__in=site_ids)
    busiest = (sessions.values("patient_id").annotate(n=Count("id")).order_by("-n", "patient_id")
               .first())
    # The bedside session: today's open one with the longest chart (the demo charts its
    # chairs up to the time of day it is loaded), else the newest.
    session = (sessions.exclude(state__in=["scheduled", "discharged", "transferred",
                                           "abandoned"])
               .annotate(n=Count("entries")).order_by("-n", "-id").first()
               or sessions.order_by("-id").first())
    assert busiest is not None
    assert session is not None
    order = Order.objects.get(pk=session.order_id)
    pv = ProtocolVersion.objects.order_by("-id").first()
    vial = Container.objects.order_by("-id").first()
    assert pv is not None
    assert vial is not None
    return {"login": [physician.username, DEMO_PASSWORD], "pages": [
        ("patient list", "/patients/", False),
        ("patient page", f"/patients/{busiest['patient_id']}/", False),
        ("order page (chart)", f"/orders/{order.pk}/", False),
        ("session page (chart)", f"/sessions/{session.pk}/", True),
        ("chairs board", "/sessions/board/", True),
        ("today", f"/today/{site.code}/", True),
        ("outcomes report", "/outcomes/", False),
        ("limit events", "/reports/limit-events/", False),
        ("protocol list", "/protocols/", False),
        ("protocol page", f"/protocols/{pv.name}/v{pv.version}/", False),
        ("stock", "/stock/", False),
        ("stock reports", "/stock/reports/", False),
        ("stock vial", f"/stock/vials/{vial.pk}/", False),
        ("stock of a session", f"/stock/sessions/{session.pk}/", False),
    ]}


FLOOR_BLANK = "bench-floor-blank.html"
FLOOR_HEAD = "bench-floor-head.html"


def write_floor_pages(data_dir: Path) -> None:
    """The two static floor pages, in the collected static folder before the server starts
    (whitenoise lists the folder once, at start)."""
    static = data_dir / "static"
    manifest = static / "staticfiles.json"  # (none before the static files were hashed)
    wanted = ("css/app.css", "django_htmx/htmx-2.min.js", "js/app.js")
    hashed = json.loads(manifest.read_text())["paths"] if manifest.exists() else {}
    names = {name: hashed.get(name, name) for name in wanted}
    scripts = "".join(f'<script src="/static/{names[n]}" defer></script>'
                      for n in ("django_htmx/htmx-2.min.js", "js/app.js"))
    (static / FLOOR_BLANK).write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>floor</title>"
        "<p>A static page.</p></html>")
    (static / FLOOR_HEAD).write_text(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>floor</title><link rel="stylesheet" href="/static/{names["css/app.css"]}">'
        f'{scripts}</head><body><header class="top"><a class="brand" href="/">Clinic</a>'
        "</header><main><h1>A static page</h1><p>With the app's style sheet and scripts."
        "</p></main></body></html>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str]) -> Iterator[str]:
    """``ketamine-clinic serve`` on a free port until the block ends."""
    port = free_port()
    proc = subprocess.Popen([CLI, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_loaded(page: Any) -> None:
    """Until the load event has ended (``loadEventEnd`` is 0 while its handlers run)."""
    deadline = time.monotonic() + 60
    while not page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return n && n.loadEventEnd > 0; }"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{page.url} did not finish loading")
        page.wait_for_timeout(20)


CHARTS_DRAWN_JS = """() => {
  const all = document.querySelectorAll('div[data-chart]').length;
  return all === document.querySelectorAll('div[data-chart][data-drawn]').length
    ? performance.now() : null;
}"""


def visit(page: Any, url: str) -> dict[str, float]:
    page.goto(url, wait_until="load")
    wait_loaded(page)
    timing = dict(page.evaluate(TIMING_JS))
    # Charts are drawn after the load (plotly is fetched then): when the last one was.
    timing["drawn"] = 0.0
    if page.evaluate("document.querySelectorAll('div[data-chart]').length"):
        deadline = time.monotonic() + 60
        while (drawn := page.evaluate(CHARTS_DRAWN_JS)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the charts of {url} were not drawn")
            page.wait_for_timeout(10)
        timing["drawn"] = drawn
    return timing


def sign_in(browser: Any, base: str, login: tuple[str, str]) -> Any:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("#id_username", login[0])
    page.fill("#id_password", login[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    state = context.storage_state()
    context.close()
    return state


FLOORS = [("floor: blank static", f"/static/{FLOOR_BLANK}", False),
          ("floor: app head static", f"/static/{FLOOR_HEAD}", False)]


def measure(base: str, login: tuple[str, str], pages: list[tuple[str, str, bool]],
            repeat: int, shots: bool) -> dict[str, dict[str, list[dict[str, float]]]]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise SystemExit("system Chromium not found (apt-get install chromium)")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        label: {"cold": [], "warm": []} for label, _, _ in pages + FLOORS}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        state = sign_in(browser, base, login)
        for round_ in range(repeat + 1):  # round 0 warms the server up, untimed
            for label, url, bedside in pages + FLOORS:
                context = browser.new_context(viewport=TABLET if bedside else DESKTOP,
                                              storage_state=state)
                page = context.new_page()
                cold = visit(page, base + url)
                page.goto("about:blank")
                warm = visit(page, base + url)
                if round_ == 0:
                    if not page.url.endswith(url):
                        raise RuntimeError(f"{url} went to {page.url}")
                    if shots and not label.startswith("floor"):
                        SHOTS.mkdir(parents=True, exist_ok=True)
                        slug = label.split(" (")[0].replace(" ", "-")
                        page.screenshot(path=str(SHOTS / f"bench-load-{slug}.png"),
                                        full_page=True)
                else:
                    runs[label]["cold"].append(cold)
                    runs[label]["warm"].append(warm)
                context.close()
            if round_:
                print(f"  round {round_} of {repeat} done", file=sys.stderr)
        browser.close()
    return runs


def report(runs: dict[str, dict[str, list[dict[str, float]]]], head: str) -> None:
    med = statistics.median
    print(head)
    print(f"{'page':<22}| {'load':<5}| server ms | load ms | FCP ms | load/server | "
          "floor/server | FCP/server | charts drawn ms | page kB | fetched kB | cached")
    worst = 0.0
    # The browser's floor: the static page with the app's head, cold or warm as the row.
    floor = {mode: med(r["load"] - r["server"] for r in rs)
             for mode, rs in runs[FLOORS[1][0]].items()}
    for label, modes in runs.items():
        is_floor = label.startswith("floor")
        for mode, rs in modes.items():
            # A warm static floor page may come from the browser's cache (no server time):
            # its ratios are left out.
            timed = [r for r in rs if r["server"] > 0]
            ratio = med([r["load"] / r["server"] for r in timed] or [float("nan")])
            floor_ratio = med([(r["server"] + floor[mode]) / r["server"] for r in timed]
                              or [float("nan")])
            # (Chromium reports no first-contentful-paint for some navigations: left out)
            fcp_ratio = med([r["fcp"] / r["server"] for r in timed if r["fcp"]]
                            or [float("nan")])
            if not is_floor:
                worst = max(worst, ratio)
            fcp = med([r["fcp"] for r in rs if r["fcp"]] or [float("nan")])
            flag = "" if is_floor or ratio <= 2 else "  > 2x"
            if flag and floor_ratio > 2:
                flag += f" (the browser's floor alone is {floor_ratio:.2f}x)"
            print(f"{label:<22}| {mode:<5}| {med(r['server'] for r in rs):9.1f} | "
                  f"{med(r['load'] for r in rs):7.0f} | {fcp:6.0f} | "
                  f"{ratio:10.2f}x | "
                  + (f"{'':>12} | " if is_floor else f"{floor_ratio:11.2f}x | ")
                  + f"{fcp_ratio:9.2f}x | "
                  f"{med(r['drawn'] for r in rs) or float('nan'):15.0f} | "
                  f"{med(r['html_kb'] for r in rs):7.1f} | "
                  f"{med(r['fetched_kb'] for r in rs):10.1f} | "
                  f"{rs[0]['cached']:.0f}/{rs[0]['resources']:.0f}{flag}")
    print(f"worst load/server: {worst:.2f}x (goal <= 2x); the browser's floor (static page "
          f"with the app's head): {floor['cold']:.0f} ms cold, {floor['warm']:.0f} ms warm")
    print()
    print("Where a warm load goes (medians, ms from the navigation's start): request sent, "
          "first byte, last byte, DOM interactive, DOMContentLoaded end, last resource of the "
          "load, load event start and end; redirects")
    print(f"{'page':<22}| request | 1st byte | last byte | interactive | DCL end | "
          "resources | load start | load end | redirects")
    for label, modes in runs.items():
        rs = modes["warm"]
        cols = ("request_start", "response_start", "response_end", "dom_interactive",
                "dcl_end", "res_end", "load_start", "load")
        print(f"{label:<22}| " + " | ".join(f"{med(r[c] for r in rs):{w}.0f}" for c, w in
                                             zip(cols, (7, 8, 9, 11, 7, 9, 10, 8), strict=True))
              + f" | {max(r['redirects'] for r in rs):9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=80,
                        help="synthetic patients (default %(default)s, as `demo`)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shots", action="store_true",
                        help="save a screenshot of each page under artifacts/screenshots")
    parser.add_argument("--urls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.urls:
        print(json.dumps(page_urls()))
        return
    with fresh_database(args.backend, "bench_browser_load") as env:
        t0 = time.perf_counter()
        subprocess.run([CLI, "demo", "--no-serve", "--patients", str(args.patients)], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        print(f"  loaded {args.patients} patients in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--urls"], env=env, check=True,
                             stdout=subprocess.PIPE, text=True)
        found = json.loads(out.stdout.strip().splitlines()[-1])
        login = (str(found["login"][0]), str(found["login"][1]))
        pages = [(str(label), str(url), bool(bedside)) for label, url, bedside
                 in found["pages"]]
        write_floor_pages(Path(env["KETAMINE_CLINIC_DATA_DIR"]))
        with running_server(env) as base:
            runs = measure(base, login, pages, args.repeat, args.shots)
    report(runs, f"{args.backend}, {args.patients} synthetic patients, gunicorn (2 workers), "
                 f"system Chromium; median of {args.repeat}; bedside pages at "
                 f"{TABLET['width']}x{TABLET['height']}")


if __name__ == "__main__":
    main()
