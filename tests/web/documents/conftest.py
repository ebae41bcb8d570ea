"""Fixtures of the documents area: protocol versions, and a finished infusion session."""

from __future__ import annotations

from typing import Any

import pytest

from .factories import build_finished_session, make_protocol_version


@pytest.fixture
def pv1(cast: Any) -> Any:
    return make_protocol_version(version=1)


@pytest.fixture
def pv2(cast: Any) -> Any:
    return make_protocol_version(version=2)


@pytest.fixture
def finished_session(cast: Any, pv1: Any) -> Any:
    return build_finished_session(cast, pv1)
