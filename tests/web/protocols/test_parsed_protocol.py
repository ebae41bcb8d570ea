"""A stored protocol version is parsed once per text, through one cache that every area
reads (``ProtocolVersion.protocol``): protocol pages, screening, orders, documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ketamine_clinic.clinical.protocol import load_protocol_text
from ketamine_clinic.web.protocols import models, services
from ketamine_clinic.web.protocols.models import ProtocolVersion

from .conftest import renamed_text


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty cache, and the origin of every parse the cache asks the core for."""
    calls: list[str] = []

    def counting(text: str, origin: str) -> Any:
        calls.append(origin)
        return load_protocol_text(text, origin)

    monkeypatch.setattr(models, "_parsed", {})
    monkeypatch.setattr(models, "load_protocol_text", counting)
    return calls


def unsaved(standard: Any, version: int) -> ProtocolVersion:
    text = renamed_text(standard, version=version)
    return ProtocolVersion(name=standard.name, version=version, title=standard.title,
                           toml_text=text, sha256=hashlib.sha256(text.encode()).hexdigest())


def test_a_stored_version_is_parsed_once_however_often_it_is_read(
        standard: Any, parses: list[str]) -> None:
    first = standard.protocol()
    again = ProtocolVersion.objects.get(pk=standard.pk).protocol()  # another row object
    assert again is first
    assert parses == ["db:clinic-standard/v2"]
    assert (first.name, first.version, first.sha256) == ("clinic-standard", 2, standard.sha256)


def test_the_current_version_the_dose_check_and_the_documents_share_the_parse(
        cast: Any, standard: Any, parses: list[str], client: Any) -> None:
    from ketamine_clinic.web.accounts.models import ApiToken
    from ketamine_clinic.web.documents.protocol_facts import protocol_facts
    from ketamine_clinic.web.orders.dosing import rules_of

    assert services.protocol_current("clinic-standard") == standard
    rules_of(standard)
    assert protocol_facts(standard).sha256 == standard.sha256
    _, token = ApiToken.issue(cast.bob)
    response = client.post("/api/v1/dose-check", json.dumps({
        "protocol": "clinic-standard", "weight_kg": "70", "rate": "60 mg/h",
        "bag": "500 mg in 500 mL"}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert parses.count("db:clinic-standard/v2") == 1


def test_a_row_whose_hash_does_not_describe_its_text_is_not_given_another_protocol(
        standard: Any, parses: list[str]) -> None:
    standard.protocol()
    other = unsaved(standard, 3)
    mislabelled = ProtocolVersion(name=other.name, version=3, title=other.title,
                                  toml_text=other.toml_text, sha256=standard.sha256)
    assert mislabelled.protocol().version == 3
    assert mislabelled.protocol().version == 3
    assert standard.protocol().version == 2
    assert len(parses) == 3  # v2 once; the mislabelled row each time, never cached


def test_the_cache_is_bounded_oldest_out_first(standard: Any, parses: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_PARSED_MAX", 2)
    rows = [unsaved(standard, v) for v in (3, 4, 5)]
    for row in rows:
        row.protocol()
    assert list(models._parsed) == [rows[1].sha256, rows[2].sha256]
    rows[0].protocol()
    assert len(parses) == 4
