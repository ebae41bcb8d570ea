"""The protocol versions shipped in ``ketamine_clinic/protocols/``, read with :mod:`.load`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from ketamine_clinic.clinical.protocol.load import load_protocol_text
from ketamine_clinic.clinical.protocol.model import (
    Protocol,
    ProtocolStatus,
)
from ketamine_clinic.errors import UsageError

__all__ = ["load_protocol", "shipped_protocols"]


def _shipped_files() -> list[Any]:
    """The shipped protocol files (``<name>.toml`` or ``<name>.v<N>.toml``), by file name."""
    folder = resources.files("ketamine_clinic.protocols")
    return sorted((e for e in folder.iterdir() if e.name.endswith(".toml")),
                  key=lambda e: e.name)


@cache
def _shipped_versions(name: str | None) -> tuple[Protocol, ...]:
    """The shipped versions of protocol ``name`` (None: of every protocol), by name and
    version. Only the files of that name are read: one command line call needs one
    protocol, and parsing every shipped file would be most of its time."""
    found: dict[tuple[str, int], Protocol] = {}
    for entry in _shipped_files():
        if name is not None and entry.name.split(".")[0] != name:
            continue
        origin = f"protocols/{entry.name}"
        protocol = load_protocol_text(entry.read_text("utf-8"), origin)
        if entry.name.split(".")[0] != protocol.name:
            raise UsageError(f"{origin}:name", f"{protocol.name!r} does not match the file name")
        if (protocol.name, protocol.version) in found:
            raise UsageError(f"{origin}:version",
                             f"{protocol.label} is also shipped in "
                             f"{found[(protocol.name, protocol.version)].origin}")
        found[(protocol.name, protocol.version)] = protocol
    return tuple(found[k] for k in sorted(found))


def shipped_protocols() -> tuple[Protocol, ...]:
    """Every protocol version shipped in ``ketamine_clinic/protocols/``, by name and version.

    A file is ``<name>.toml`` or ``<name>.v<N>.toml``; its ``name`` key must match.
    """
    return _shipped_versions(None)


def load_protocol(name: str, version: int | None = None) -> Protocol:
    """A shipped protocol by name: the given version, or the highest non-draft one."""
    versions = list(_shipped_versions(name))
    if not versions:
        known = ", ".join(sorted({e.name.split(".")[0] for e in _shipped_files()}))
        raise UsageError("protocol", f"no shipped protocol named {name!r} (known: {known})")
    if version is None:
        usable = [p for p in versions if p.status is not ProtocolStatus.DRAFT] or versions
        return max(usable, key=lambda p: p.version)
    for p in versions:
        if p.version == version:
            return p
    have = ", ".join(str(p.version) for p in versions)
    raise UsageError("version", f"{name} has no shipped version {version} (shipped: {have})")
