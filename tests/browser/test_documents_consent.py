"""Recording informed consent in a real browser: the patient draws a signature on the pad."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.protocols.selectors import consent_current
from tests.browser.conftest import log_in
from tests.web.documents.factories import make_protocol_version

pytestmark = pytest.mark.browser


def draw_signature(page: Any) -> None:
    canvas = page.locator("canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0 = box["x"], box["y"]
    w, h = box["width"], box["height"]
    # A looping "A" and a long underline, drawn with the mouse.
    page.mouse.move(x0 + 0.1 * w, y0 + 0.75 * h)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(x0 + (0.1 + 0.01 * i) * w, y0 + (0.75 - 0.025 * i) * h, steps=2)
    for i in range(1, 21):
        page.mouse.move(x0 + (0.3 + 0.01 * i) * w, y0 + (0.25 + 0.025 * i) * h, steps=2)
    page.mouse.up()
    page.mouse.move(x0 + 0.15 * w, y0 + 0.55 * h)
    page.mouse.down()
    page.mouse.move(x0 + 0.45 * w, y0 + 0.55 * h, steps=10)
    page.mouse.up()
    page.mouse.move(x0 + 0.5 * w, y0 + 0.85 * h)
    page.mouse.down()
    page.mouse.move(x0 + 0.9 * w, y0 + 0.8 * h, steps=15)
    page.mouse.up()


def test_a_nurse_records_a_consent_with_a_drawn_signature(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    pv = make_protocol_version(version=1)
    log_in(page, live_server, cast.bob, "a long nurse passphrase")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    page.wait_for_selector("#consent >> text=No consent recorded")
    shot("patient-without-consent")
    page.click("#consent >> text=Record consent")
    page.select_option("#id_choose_protocol_version", str(pv.pk))
    page.click("text=Show the consent document")
    page.wait_for_selector("#consent-document >> text=Starting rate:")
    assert "Dream-like or unusual feelings" in page.inner_text("#consent-document")

    # Without a signature the page refuses and keeps the form.
    page.click("button:has-text('Record consent')")
    page.wait_for_selector("text=the patient must sign on the pad")
    assert consent_current(cast.ana, pv) is None

    draw_signature(page)
    shot("signed-pad")
    page.click("button:has-text('Record consent')")
    page.wait_for_selector("h1:has-text('Consent of Ana Ruiz')")
    page.wait_for_selector("#signature svg path")
    shot("recorded")
    consent = consent_current(cast.ana, pv)
    assert consent is not None
    assert consent.method == "signature"
    assert consent.signature_svg.count("<path") == 3
    assert consent.explained_by == cast.bob

    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    assert "in force" in page.inner_text("#consent")
    shot("patient-with-consent")


def test_a_paper_consent_is_attested_without_a_drawn_signature(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    pv = make_protocol_version(version=1)
    log_in(page, live_server, cast.alice, "a long physician passphrase")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/consents/print/{pv.pk}/")
    page.emulate_media(media="print")
    assert "Patient's signature" in page.inner_text("main")
    shot("paper-form")
    page.emulate_media(media="screen")
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/consents/new/?protocol_version={pv.pk}")
    page.check("input[name=method][value=paper]")
    assert page.is_hidden("canvas")
    page.check("#id_paper_attested")
    page.fill("#id_paper_reference", "scanned form 2025-0042")
    shot("paper")
    page.click("button:has-text('Record consent')")
    page.wait_for_selector("text=kept at: scanned form 2025-0042")
    consent = consent_current(cast.ana, pv)
    assert consent is not None
    assert consent.method == "paper"
