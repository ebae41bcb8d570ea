"""Storing protocol versions: the shipped files, and versions an administrator publishes."""

from __future__ import annotations

import hashlib
from importlib import resources

from django.db import transaction

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.protocols.models import ProtocolVersion


def _parse(text: str, origin: str):  # type: ignore[no-untyped-def]
    """Validate with the core's loader: the one place that knows the protocol format."""
    from ketamine_clinic.clinical.protocol import load_protocol_text

    return load_protocol_text(text, origin)


def shipped_protocol_texts() -> list[tuple[str, str]]:
    """(file name, TOML text) of every protocol file shipped in the package."""
    folder = resources.files("ketamine_clinic.protocols")
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".toml"))


@transaction.atomic
def protocol_sync_shipped(*, actor: Actor | None = None) -> list[ProtocolVersion]:
    """Store each shipped protocol file whose (name, version) is not stored yet.

    A shipped file whose version is already stored with different text is refused: a
    published version never changes, so an edited file must carry a new version number.
    """
    created = []
    for filename, text in shipped_protocol_texts():
        protocol = _parse(text, filename)
        digest = hashlib.sha256(text.encode()).hexdigest()
        existing = ProtocolVersion.objects.filter(name=protocol.name,
                                                  version=protocol.version).first()
        if existing is not None:
            if existing.sha256 != digest:
                raise UsageError(
                    filename, f"{protocol.name} version {protocol.version} is already stored "
                    "with different text; give the changed file a new version number")
            continue
        pv = ProtocolVersion.objects.create(
            name=protocol.name, version=protocol.version, title=protocol.title,
            toml_text=text, sha256=digest, change_note=f"shipped file {filename}")
        audit_record(actor=actor or Actor(user=None, client_address="system"),
                     action="protocol.sync_shipped", object_type="protocol_version",
                     object_id=pv.pk, detail={"name": pv.name, "version": pv.version})
        created.append(pv)
    return created


def protocol_current(name: str) -> ProtocolVersion:
    """The newest stored version of a protocol."""
    pv = ProtocolVersion.objects.filter(name=name).order_by("-version").first()
    if pv is None:
        raise UsageError("protocol", f"no protocol named {name!r}")
    return pv
