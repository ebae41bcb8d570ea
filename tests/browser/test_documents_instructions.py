"""The discharge instruction sheet: the print view in a real browser, and the PDF's pages
rendered to PNG with pdftoppm (kept as artifacts to look at)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, log_in
from tests.web.documents.factories import build_finished_session, make_protocol_version

pytestmark = pytest.mark.browser


def test_a_nurse_prints_the_sheet_and_the_pdf_renders(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any,
    request: pytest.FixtureRequest,
) -> None:
    cast.denver.phone = "303-555-0142"
    cast.denver.save()
    session = build_finished_session(cast, make_protocol_version(version=1))
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.goto(f"{live_server.url}/sessions/{session.pk}/instructions/")
    page.wait_for_selector("h2:has-text('Do not drive until Tuesday, March 4, 2025 at 1:30 PM')")
    emergency = page.locator("#emergency")
    assert emergency.is_visible()
    assert "Call 911 now if you have" in emergency.inner_text()
    assert "chest pain" in emergency.inner_text()
    shot("print-view")
    page.emulate_media(media="print")
    assert page.is_hidden("header.top")
    shot("print-media")

    response = page.request.get(f"{live_server.url}/sessions/{session.pk}/instructions.pdf")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"{request.node.name}.pdf"
    pdf.write_bytes(response.body())

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        reason = "pdftoppm (apt-get install poppler-utils) is needed to render the PDF's pages"
        if os.environ.get("KETAMINE_CLINIC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    prefix = ARTIFACTS / f"{request.node.name}-pdf-page"
    for old in ARTIFACTS.glob(f"{prefix.name}-*.png"):
        old.unlink()
    subprocess.run([pdftoppm, "-png", "-r", "80", str(pdf), str(prefix)], check=True,
                   timeout=60)
    pages = sorted(Path(ARTIFACTS).glob(f"{prefix.name}-*.png"))
    assert pages, "pdftoppm wrote no page images"
    assert all(p.stat().st_size > 10_000 for p in pages)  # not blank
