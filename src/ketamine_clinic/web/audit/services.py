"""Writing to, sealing and checking the audit trail (docs/audit.md).

* :func:`audit_record` is the hot path: one insert, no lock. The entry carries the HMAC
  of its content under ``settings.AUDIT_KEY``.
* :func:`audit_seal` (the job worker runs it every few seconds) places new entries in the
  one gapless chain, one sealer at a time, and writes a checkpoint of the new head outside
  the database.
* :func:`audit_verify` checks every entry, every link, the head, the checkpoints and the
  triggers.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit import anchor
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.chain import (
    GENESIS_HASH,
    ChainProblem,
    entry_mac,
    link_hash,
    same,
    verify_links,
)
from ketamine_clinic.web.audit.models import AuditEntry, AuditHead, AuditLink
from ketamine_clinic.web.audit.triggers import missing_triggers

if TYPE_CHECKING:
    from ketamine_clinic.web.accounts.models import User

# Entries whose transaction commits this long after they were written are still found
# by the periodic sealer; older stragglers are sealed by ``audit seal --all``.
SEAL_LOOKBACK = timedelta(hours=1)
SEAL_BATCH = 5000
# The role recorded for requests from the network without a log-in.
ANONYMOUS_ROLE = "anonymous"


class SignedInUserRequired(UsageError):
    """A service that records who did something was called without a signed-in user."""


@dataclass(frozen=True)
class Actor:
    """Who did something, from where: taken from a request or given by a command."""

    user: User | None
    client_address: str = ""
    site_code: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest, site_code: str = "") -> Actor:
        user = request.user if request.user.is_authenticated else None
        return cls(user=user, client_address=client_address(request), site_code=site_code)

    def at(self, site_code: str) -> Actor:
        """The same person acting at the site ``site_code`` (the site an entry is filed under)."""
        return replace(self, site_code=site_code)

    def require_user(self) -> User:
        """The signed-in staff member, for a record that names who wrote it.

        A command or the worker acts without one (``user=None``): a service that stores a
        person in a required column refuses such an actor instead of failing in the
        database.
        """
        if self.user is None:
            raise SignedInUserRequired(
                "user", "this is recorded under a staff member's name: sign in (or, from a "
                        "command, act as a named user) and try again")
        return self.user

    @property
    def anonymous(self) -> bool:
        """A request from the network without a log-in (not a command or the worker)."""
        if self.user is not None:
            return False
        try:
            ipaddress.ip_address(self.client_address)
        except ValueError:
            return False
        return True


def audit_key() -> bytes:
    """The HMAC key of the trail; refuses to work without one (an empty key would seal
    entries that anyone can forge)."""
    key: bytes = settings.AUDIT_KEY
    if not key:
        raise ImproperlyConfigured(
            "No audit key: set KETAMINE_CLINIC_AUDIT_KEY, or start the app once through a "
            "ketamine-clinic command (migrate, serve, demo), which makes the key file")
    return key


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))[:64]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _anonymous_allowance(actor: Actor, now: datetime) -> str:
    """'record', 'mark' (write the one entry that says the rest go unrecorded) or 'skip'."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    anonymous = AuditEntry.objects.filter(role=ANONYMOUS_ROLE, at__gte=hour)
    per_address = anonymous.filter(client_address=actor.client_address).count()
    limit = settings.AUDIT_ANONYMOUS_PER_ADDRESS_PER_HOUR
    if per_address > limit:
        return "skip"
    if per_address == limit:
        return "mark"
    total = anonymous.count()
    limit_all = settings.AUDIT_ANONYMOUS_PER_HOUR
    if total > limit_all:
        return "skip"
    return "mark" if total == limit_all else "record"


def audit_record(
    *,
    actor: Actor,
    action: AuditAction,
    object_type: str = "",
    object_id: object = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry | None:
    """Append one entry, inside the caller's transaction if there is one.

    A plain insert: writers never wait for each other here. Requests without a log-in are
    bounded (settings ``AUDIT_ANONYMOUS_*``): past the bound one entry records that further
    ones from that address (or from everyone anonymous) go unrecorded this hour, and this
    returns None for them.
    """
    action = AuditAction(action)  # a free-text action is refused (audit/actions.py)
    now = datetime.now(UTC)
    if actor.anonymous:
        allowance = _anonymous_allowance(actor, now)
        if allowance == "skip":
            return None
        if allowance == "mark":
            detail = {"suppressed_action": action,
                      "window_start": now.replace(minute=0, second=0, microsecond=0),
                      "limit_per_address": settings.AUDIT_ANONYMOUS_PER_ADDRESS_PER_HOUR,
                      "limit_all_addresses": settings.AUDIT_ANONYMOUS_PER_HOUR}
            action, object_type, object_id = AuditAction.AUDIT_ANONYMOUS_SUPPRESSED, "", ""
    user = actor.user
    entry = AuditEntry(
        at=now,
        nonce=secrets.token_hex(16),
        user_id_value=user.pk if user else None,
        username=user.get_username() if user else "",
        role=getattr(user, "role", "") if user else (ANONYMOUS_ROLE if actor.anonymous else ""),
        site_code=actor.site_code,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        client_address=actor.client_address,
        detail=_json_safe(detail or {}),
    )
    entry.mac = entry_mac(audit_key(), entry.chain_content())
    entry.save()
    return entry


def audit_read(
    *,
    actor: Actor,
    action: AuditAction,
    object_type: str,
    object_id: object,
    site_code: str,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry | None:
    """Record that ``actor`` read one object of a patient's record, filed under the site
    the object belongs to (``site_code``), whichever site the reader was at.

    ``patient_id`` names the patient whose record it is when the object is not the patient
    itself; it comes first in the entry's detail as ``patient``. The ``*_get_for``
    selectors call this for every page and API read they serve (docs/audit.md).
    """
    full: dict[str, Any] = {} if patient_id is None else {"patient": patient_id}
    full.update(detail or {})
    return audit_record(actor=actor.at(site_code), action=action, object_type=object_type,
                        object_id=object_id, detail=full or None)


@dataclass(frozen=True)
class SealReport:
    sealed: int
    head_seq: int


def audit_seal(*, everything: bool = False, checkpoint: bool = True) -> SealReport:
    """Link the entries not yet in the chain, in id order, after the current head.

    One sealer at a time: the head row is locked (PostgreSQL) or the write lock taken at
    BEGIN (SQLite, IMMEDIATE transactions). Writers of entries are not held up on
    PostgreSQL and wait only for this short transaction on SQLite. After a pass that
    sealed something, a checkpoint of the new head goes to the checkpoint file.
    ``everything`` looks at the whole trail instead of the new and the recent entries.
    """
    key = audit_key()
    sealed_total = 0
    while True:
        with transaction.atomic():
            head = AuditHead.objects.select_for_update().filter(pk=1).first()
            if head is None:  # (migrate creates it; two first sealers may race here)
                AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)],
                                              ignore_conflicts=True)
                head = AuditHead.objects.select_for_update().get(pk=1)
            pending = AuditEntry.objects.filter(link__isnull=True)
            if not everything:
                recent = datetime.now(UTC) - SEAL_LOOKBACK
                pending = pending.filter(Q(pk__gt=head.entry_id_max) | Q(at__gte=recent))
            batch = list(pending.order_by("id").only("id", "mac")[:SEAL_BATCH])
            seq, prev = head.seq, head.hash
            links = []
            for entry in batch:
                seq += 1
                h = link_hash(key, prev_hash=prev, seq=seq, entry_id=entry.pk, mac=entry.mac)
                links.append(AuditLink(seq=seq, entry_id=entry.pk, prev_hash=prev, hash=h))
                prev = h
            if links:
                AuditLink.objects.bulk_create(links)
                head.seq, head.hash = seq, prev
                head.entry_id_max = max(head.entry_id_max, batch[-1].pk)
                head.save(update_fields=["seq", "hash", "entry_id_max"])
        sealed_total += len(links)
        if len(batch) < SEAL_BATCH:
            break
    if checkpoint and (sealed_total or not settings.AUDIT_CHECKPOINTS.exists()) and head.seq:
        anchor.append(settings.AUDIT_CHECKPOINTS, key, seq=head.seq, hash_=head.hash)
    return SealReport(sealed=sealed_total, head_seq=head.seq)


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    problems: list[ChainProblem]
    sealed: int = 0
    pending: int = 0
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _checkpoint_problems(read: anchor.AnchorRead, seen: dict[int, str],
                         last_seq: int) -> list[ChainProblem]:
    return [ChainProblem(seq, text) for seq, text in anchor.problems(read, seen, last_seq)]


def audit_verify() -> VerifyReport:
    """Check every entry's MAC, every link, the head, the checkpoints and the triggers."""
    key = audit_key()
    read = anchor.read(settings.AUDIT_CHECKPOINTS, key)
    wanted = {cp.seq for cp in read.checkpoints}
    seen: dict[int, str] = {}
    last_seq = 0
    sealed = 0

    def stream() -> Iterator[dict[str, object]]:
        nonlocal last_seq, sealed
        links = AuditLink.objects.select_related("entry").order_by("seq")
        for link in links.iterator(chunk_size=2000):
            sealed += 1
            last_seq = link.seq
            if link.seq in wanted:
                seen[link.seq] = link.hash
            row = link.entry.chain_content()
            row.update(seq=link.seq, entry_id=link.entry_id, prev_hash=link.prev_hash,
                       hash=link.hash)
            yield row

    problems = verify_links(key, stream())
    pending = 0
    for entry in AuditEntry.objects.filter(link__isnull=True).order_by("id").iterator(
            chunk_size=2000):
        pending += 1
        if not same(entry_mac(key, entry.chain_content()), entry.mac):
            problems.append(ChainProblem(0, f"unsealed entry (id {entry.pk}) altered or "
                                            "forged (MAC mismatch)"))
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and head.seq != last_seq:
        problems.append(ChainProblem(head.seq, (
            f"the head says entry {head.seq} is the newest but the chain ends at "
            f"{last_seq} (newest entries removed or head moved)")))
    elif head is None and last_seq:
        problems.append(ChainProblem(last_seq, "the chain's head row is missing"))
    problems += _checkpoint_problems(read, seen, last_seq)
    notes = []
    if sealed and not read.exists:
        problems.append(ChainProblem(0, f"no checkpoint file at {settings.AUDIT_CHECKPOINTS}: "
                                        "removal of the newest entries cannot be ruled out"))
    if pending:
        notes.append(f"{pending} entries not yet sealed into the chain (each one's own "
                     "signature checked); the worker seals them within seconds")
    for name in missing_triggers(connection):
        problems.append(ChainProblem(0, f"the database trigger {name} is missing: run "
                                        "ketamine-clinic migrate to reinstall it"))
    return VerifyReport(entries=sealed + pending, problems=problems, sealed=sealed,
                        pending=pending, checkpoints=len(read.checkpoints), notes=notes)
