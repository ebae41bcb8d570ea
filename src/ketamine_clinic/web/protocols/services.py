"""Writes of the protocols area: protocol versions (shipped and published), screenings and
physicians' overrides. Each runs in one transaction and leaves an audit entry."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from importlib import resources
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ketamine_clinic.clinical.protocol import Protocol, ProtocolStatus, load_protocol_text
from ketamine_clinic.clinical.screening import decision_with_overrides, screen
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening, ScreeningOverride
from ketamine_clinic.web.protocols.selectors import patient_facts, stored_result

log = logging.getLogger(__name__)

SYSTEM = Actor(user=None, client_address="system")


def _parse(text: str, origin: str) -> Protocol:
    """Validate with the core's loader: the one place that knows the protocol format."""
    return load_protocol_text(text, origin)


def shipped_protocol_texts() -> list[tuple[str, str]]:
    """(file name, TOML text) of every protocol file shipped in the package."""
    folder = resources.files("ketamine_clinic.protocols")
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".toml"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@transaction.atomic
def protocol_sync_shipped(*, actor: Actor | None = None,
                          on_conflict: str = "raise") -> list[ProtocolVersion]:
    """Store each shipped protocol file whose (name, version) is not stored yet.

    A shipped file whose version is already stored with different text is refused: a
    published version never changes, so an edited file must carry a new version number.
    ``on_conflict="raise"`` raises :class:`UsageError` for it; ``"skip"`` keeps the stored
    version, logs a warning and goes on (what ``migrate`` does, so that a clinic that
    published its own version N before the software shipped one cannot be locked out).
    """
    created = []
    for filename, text in shipped_protocol_texts():
        protocol = _parse(text, f"protocols/{filename}")
        existing = ProtocolVersion.objects.filter(name=protocol.name,
                                                  version=protocol.version).first()
        if existing is not None:
            if existing.sha256 != protocol.sha256:
                problem = (f"{protocol.label} is already stored with different text; give "
                           "the changed file a new version number")
                if on_conflict == "raise":
                    raise UsageError(filename, problem)
                log.warning("shipped protocol %s not stored: %s", filename, problem)
            continue
        pv = ProtocolVersion.objects.create(
            name=protocol.name, version=protocol.version, title=protocol.title,
            toml_text=text, sha256=protocol.sha256, change_note=f"shipped file {filename}")
        audit_record(actor=actor or SYSTEM, action=AuditAction.PROTOCOL_SYNC_SHIPPED,
                     object_type="protocol_version", object_id=pv.pk,
                     detail={"name": pv.name, "version": pv.version, "sha256": pv.sha256})
        created.append(pv)
    return created


def protocol_current(name: str) -> ProtocolVersion:
    """The newest stored version of a protocol that is not a draft (else the newest).

    Each version is read through the one cached parse (:meth:`ProtocolVersion.protocol`),
    so the dose-check endpoint and the demos can call this often."""
    versions = list(ProtocolVersion.objects.filter(name=name).order_by("-version"))
    if not versions:
        raise UsageError("protocol", f"no protocol named {name!r}")
    for pv in versions:
        if pv.protocol().status is not ProtocolStatus.DRAFT:
            return pv
    return versions[0]


def normalise_protocol_text(text: str) -> str:
    """Browsers send a textarea with CRLF line ends: store LF, so that the same file pasted
    or uploaded has the same SHA-256 as on disk."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def protocol_check(*, toml_text: str) -> tuple[Protocol, ProtocolVersion | None]:
    """Validate a version about to be published: the parsed protocol, and the newest stored
    version of the same name (``None`` for a new protocol).

    Raises :class:`UsageError` naming the key path and problem for any format error, and
    ``version`` when the version number is not above every stored one of that name.
    """
    text = normalise_protocol_text(toml_text)
    if not text.strip():
        raise UsageError("toml_text", "paste the protocol's TOML text or upload its file")
    protocol = _parse(text, "upload")
    newest = (ProtocolVersion.objects.filter(name=protocol.name)
              .order_by("-version").first())
    if newest is not None and protocol.version <= newest.version:
        raise UsageError("upload:version",
                         f"{protocol.name} already has version {newest.version}; a new "
                         f"version must be numbered {newest.version + 1} or higher "
                         "(published versions are never replaced)")
    return protocol, newest


def protocol_publish(*, actor: Actor, toml_text: str, change_note: str) -> ProtocolVersion:
    """Store a new protocol version (append-only) with who, when and why."""
    if actor.user is None or not actor.user.can(Capability.PUBLISH_PROTOCOL):
        raise UsageError("user", "only a clinic administrator may publish a protocol version")
    note = (change_note or "").strip()
    if not note:
        raise UsageError("change_note", "say what changed and why")
    text = normalise_protocol_text(toml_text)
    try:
        with transaction.atomic():
            protocol, previous = protocol_check(toml_text=text)
            pv = ProtocolVersion.objects.create(
                name=protocol.name, version=protocol.version, title=protocol.title,
                toml_text=text, sha256=protocol.sha256, change_note=note,
                published_by=actor.user)
            audit_record(actor=actor,
                         action=AuditAction.PROTOCOL_PUBLISH, object_type="protocol_version",
                         object_id=pv.pk,
                         detail={"name": pv.name, "version": pv.version, "sha256": pv.sha256,
                                 "previous": previous.version if previous else None,
                                 "change_note": note})
    except IntegrityError as exc:  # published by someone else a moment ago
        raise UsageError("upload:version", "that version was published a moment ago; "
                         "reload and number yours higher") from exc
    return pv


# --------------------------------------------------------------------------- screening


def screening_record(*, actor: Actor, patient: Patient, protocol_version: ProtocolVersion,
                     answers: dict[str, Any]) -> Screening:
    """Screen a patient: registry facts plus the clinical ``answers`` → the core's decision,
    stored with the protocol version and the facts used (and their SHA-256).

    ``answers`` holds what the registry does not: ``medications_complete`` (the registry's
    medication list was reviewed with the patient and is complete), ``conditions``,
    ``conditions_absent`` (condition ids; any other id stays unknown) and ``budapest``.
    """
    if actor.user is None or not actor.user.can(Capability.SCREEN_PATIENT):
        raise UsageError("user", "your role may not screen patients")
    protocol = protocol_version.protocol()
    if protocol.status is not ProtocolStatus.ACTIVE:
        raise UsageError("protocol_version", f"{protocol.label} is {protocol.status.value}: "
                         "screen against an active version")
    today = timezone.localdate()
    facts, _provenance = patient_facts(patient, answers, on=today)
    result = screen(facts, protocol)
    data = result.to_dict()
    with transaction.atomic():
        s = Screening.objects.create(
            patient=patient, protocol_version=protocol_version, facts=data["facts"],
            facts_sha256=result.facts_sha256, decision=result.decision.value,
            reasons=data["reasons"], result=data, screened_by=actor.user,
            valid_until=today + timedelta(days=result.validity_days))
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.SCREENING_RECORD,
                     object_type="screening", object_id=s.pk,
                     detail={"patient": patient.pk, "protocol": protocol.label,
                             "decision": s.decision, "facts_sha256": s.facts_sha256,
                             "rules": [r["rule"] for r in data["reasons"]]})
    return s


def screening_override(*, actor: Actor, screening: Screening, rule: str,
                       justification: str) -> ScreeningOverride:
    """A physician's documented override of one reviewable (``review``) reason.

    Exclusions and conditions cannot be overridden; a reason is overridden at most once;
    only the patient's newest screening under that protocol version can be overridden.
    """
    if actor.user is None or not actor.user.can(Capability.OVERRIDE_SCREENING):
        raise UsageError("user", "only a physician may override a screening reason")
    text = (justification or "").strip()
    if not text:
        raise UsageError("justification", "write why the reason does not stand in the way")
    with transaction.atomic():
        locked = Screening.objects.select_for_update().get(pk=screening.pk)
        newest = (Screening.objects.filter(patient_id=locked.patient_id,
                                           protocol_version_id=locked.protocol_version_id)
                  .order_by("-screened_at", "-id").first())
        if newest is not None and newest.pk != locked.pk:
            raise UsageError("screening", "a newer screening exists for this protocol "
                             "version; review that one")
        done = set(locked.overrides.values_list("rule", flat=True))
        if rule in done:
            raise UsageError("rule", f"{rule!r} is already overridden")
        effective = decision_with_overrides(stored_result(locked), [*done, rule])
        o = ScreeningOverride.objects.create(screening=locked, rule=rule, justification=text,
                                             physician=actor.user)
        audit_record(actor=actor.at(locked.patient.site.code),
                     action=AuditAction.SCREENING_OVERRIDE,
                     object_type="screening", object_id=locked.pk,
                     detail={"patient": locked.patient_id, "rule": rule,
                             "justification": text, "effective_decision": effective.value})
    return o
