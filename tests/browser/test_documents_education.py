"""The patient education pages in a real browser, without logging in."""

from __future__ import annotations

from typing import Any

import pytest

from ketamine_clinic.web.documents import education

pytestmark = pytest.mark.browser


def test_a_visitor_reads_the_education_pages_and_follows_a_source(
    live_server: Any, page: Any, shot: Any, transactional_db: Any
) -> None:
    page.goto(f"{live_server.url}/education/")
    page.wait_for_selector("h1:has-text('information for patients')")
    assert "/login/" not in page.url
    shot("index")
    page.click("text=Risks and side effects")
    page.wait_for_selector("h1:has-text('Risks and side effects')")
    assert "common even at low doses" in page.inner_text("article")
    shot("risks")

    page.click("article a.cite:has-text('[S10]') >> nth=0")
    page.wait_for_url("**/education/sources/#S10")
    assert "Sigtermans" in page.inner_text("li#S10")
    shot("sources")

    page.goto(f"{live_server.url}/education/after-your-infusion/")
    page.emulate_media(media="print")
    assert page.is_hidden("nav.edu-nav")  # the print version drops the navigation
    shot("after-print")


def test_the_print_view_contains_every_page(live_server: Any, page: Any, shot: Any,
                                            transactional_db: Any) -> None:
    page.goto(f"{live_server.url}/education/print/")
    titles = page.locator("article h1").all_inner_texts()
    assert titles == [p.title for p in education.pages()]
    page.emulate_media(media="print")
    shot("print-all")
