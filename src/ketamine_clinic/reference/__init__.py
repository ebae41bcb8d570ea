"""The clinic's reference data (TOML, each value with its source), and the one way to read
it: :func:`read_toml` parses a file once per process and hands every caller the same
read-only mapping (do not change what it returns; build your own structures from it)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


@cache
def read_text(name: str, package: str = __name__) -> str:
    """The text of ``name`` (a path such as ``"education/consent.toml"``) in ``package``."""
    path = resources.files(package)
    for part in name.split("/"):
        path = path / part
    return path.read_text("utf-8")


@cache
def read_toml(name: str, package: str = __name__) -> Mapping[str, Any]:
    """The parsed TOML of ``name`` in ``package`` (the reference data by default)."""
    return MappingProxyType(tomllib.loads(read_text(name, package)))
