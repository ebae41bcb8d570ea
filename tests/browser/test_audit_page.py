"""The audit page in a real browser: an auditor browses the trail of her site and runs the
chain check (entries sealed and unsealed, the checkpoint kept outside the database)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from ketamine_clinic.web.audit.services import Actor, audit_record, audit_seal
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_an_auditor_browses_her_sites_trail_and_verifies_the_chain(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    audit_record(actor=Actor(user=cast.oscar, client_address="192.0.2.88", site_code="boulder"),
                 action="patient.view", object_type="patient", object_id=cast.zed.pk)
    audit_seal()
    bobs = audit_record(actor=Actor(user=cast.bob, client_address="10.0.0.4",
                                    site_code="denver"),
                        action="patient.view", object_type="patient", object_id=cast.ana.pk)
    assert bobs is not None
    log_in(page, live_server, cast.erin, "a long auditor passphrase")
    page.goto(f"{live_server.url}/audit/")
    table = page.inner_text("table")
    assert "bob" in table
    assert "sealing…" in table  # bob's read is not linked into the chain yet
    assert bobs.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in table  # the header says UTC
    assert "oscar" not in table  # Boulder's, not hers
    assert "192.0.2.88" not in table
    page.click("button:has-text('Verify the chain')")
    page.wait_for_selector("text=chain intact")
    card = page.inner_text(".card >> nth=1")
    assert "checkpoint kept outside the database" in card
    assert "not yet sealed" in card
    shot("verified")
