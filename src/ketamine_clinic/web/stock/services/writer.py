"""What every stock write shares: permission and site checks, the site's chain lock, the
replay of an idempotent request, and the one append of a ledger entry (with its audit).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.utils import timezone

from ketamine_clinic.clinical import clock
from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_key, audit_record
from ketamine_clinic.web.stock.models import (
    ChainHead,
    Container,
    Count,
    Discrepancy,
    LedgerEntry,
    LossCase,
    Product,
    Receipt,
    Registration,
    StockGrant,
)
from ketamine_clinic.web.stock.permissions import DEFAULT_GRANTS, StockCapability, stock_can

_R = TypeVar("_R")


def fr(value: Decimal | None) -> Fraction:
    return Fraction(0) if value is None else Fraction(str(value))


def dec(value: Fraction) -> Decimal:
    return core.ledger_mg(value)


def _require(user: User | None, capability: StockCapability, who: str = "you") -> User:
    if user is None or not stock_can(user, capability):
        name = "You" if who == "you" else who
        raise UsageError("permission", f"{name} may not {capability.label.lower()} "
                                       "(set by the clinic administrator on Stock settings)")
    return user


def _require_site(user: User, site: Site) -> None:
    if not user.sites.filter(pk=site.pk).exists():
        raise UsageError("site", f"you do not work at {site.name}")


def registration_of(site: Site) -> Registration | None:
    return Registration.objects.filter(site=site).first()


def local_date(site: Site, at: datetime) -> date:
    return timezone.localtime(at, ZoneInfo(site.time_zone)).date()


def ensure_default_grants() -> None:
    """The default role grants (a fresh database gets them from migration 0002)."""
    for capability, roles in DEFAULT_GRANTS.items():
        for role in roles:
            StockGrant.objects.get_or_create(role=str(role), capability=str(capability))


# --------------------------------------------------------------------------- the writer


@dataclass
class _Locked:
    site: Site
    head: ChainHead
    now: datetime


def _chain_key() -> bytes:
    """The ledger's chain key: derived from the audit trail's key (kept outside the
    database, see docs/audit.md), separated from the audit's own use by its label."""
    return hmac.new(audit_key(), b"stock-ledger-chain", hashlib.sha256).digest()


def _lock(site: Site) -> _Locked:
    ChainHead.objects.get_or_create(site=site, defaults={"hash": core.GENESIS_HASH})
    head = ChainHead.objects.select_for_update().get(site=site)
    return _Locked(site, head, timezone.now())


def _lock_sites(*sites: Site) -> dict[int, _Locked]:
    """Lock several sites' chains in a fixed order (no deadlock between two transfers)."""
    return {s.pk: _lock(s) for s in sorted(sites, key=lambda s: s.pk)}


@dataclass(frozen=True)
class Recorded(Generic[_R]):
    """What a stock write answers: the record it stored, or with ``replayed`` the record a
    retry of the same request (the same idempotency key) found already stored."""

    record: _R
    replayed: bool = False


def _replayed(key: str | None) -> Recorded[LedgerEntry] | None:
    if not key:
        return None
    found = LedgerEntry.objects.filter(idempotency_key=key).first()
    return Recorded(found, replayed=True) if found is not None else None


def _site_balance(site: Site, product: Product) -> Fraction:
    total = (Container.objects.filter(site=site, lot__product=product)
             .aggregate(t=Sum("balance_mg"))["t"])
    return fr(total)


def custody_mg(session: Any) -> Fraction:
    total = (LedgerEntry.objects.filter(session=session)
             .aggregate(t=Sum("custody_delta_mg"))["t"])
    return fr(total)


def _when(field: str, at: datetime | None, now: datetime) -> datetime:
    at = at or now
    clock.aware(field, at)
    core.check_times(at, now)
    return at


def _append(locked: _Locked, *, kind: EntryKind, user: User, product: Product,
            quantity: Fraction, occurred_at: datetime, container: Container | None = None,
            session: Any = None, witness: User | None = None,
            second_witness: User | None = None, direction: int = 1,
            from_custody: bool = False, corrects: LedgerEntry | None = None,
            correction_reason: str = "", receipt: Receipt | None = None,
            count: Count | None = None, discrepancy: Discrepancy | None = None,
            loss_case: LossCase | None = None, other_site: Site | None = None,
            detail: dict[str, Any] | None = None, note: str = "",
            idempotency_key: str | None = None) -> LedgerEntry:
    """Append one entry to the locked site's chain and move the container cache."""
    rules = core.load_rules()
    change = core.deltas(kind, quantity, direction=direction, from_custody=from_custody)
    if corrects is not None:
        # What the corrected entry moved: its own amount (for a correction of a correction,
        # the amount it set, not its net effect).
        original = core.deltas(EntryKind(corrects.kind), fr(corrects.quantity_mg))
        change = core.correction_effect(original, change)
    if container is not None:
        container = Container.objects.select_for_update().get(pk=container.pk)
    before = core.Balances(
        container_mg=fr(container.balance_mg) if container else Fraction(0),
        site_mg=_site_balance(locked.site, product),
        custody_mg=custody_mg(session) if session is not None else Fraction(0))
    after = core.post(before, change,
                      container_label=f"vial {container.label}" if container else "the vial")
    head = locked.head
    entry = LedgerEntry(
        site=locked.site, seq=head.seq + 1, kind=kind.value, product=product,
        container=container, session=session,
        patient=session.patient if session is not None else None,
        occurred_at=occurred_at, recorded_at=locked.now,
        late=core.is_late(occurred_at, locked.now, rules), recorded_by=user,
        witness=witness, second_witness=second_witness, quantity_mg=dec(quantity),
        container_delta_mg=dec(change.container_mg), custody_delta_mg=dec(change.custody_mg),
        container_balance_mg=dec(after.container_mg) if container else None,
        site_balance_mg=dec(after.site_mg),
        custody_balance_mg=dec(after.custody_mg) if session is not None else None,
        corrects=corrects, correction_reason=correction_reason, receipt=receipt, count=count,
        discrepancy=discrepancy, loss_case=loss_case, other_site=other_site,
        detail=detail or {}, note=note, idempotency_key=idempotency_key or None,
        prev_hash=head.hash)
    # Round-trip the stored values so the hash is of what the database will hold.
    entry.hash = core.ledger_hash(entry.prev_hash, entry.chain_content(), _chain_key())
    entry.save()
    head.seq, head.hash = entry.seq, entry.hash
    head.save(update_fields=["seq", "hash"])
    if container is not None and change.container_mg != 0:
        container.balance_mg = dec(after.container_mg)
        if change.container_mg < 0:
            container.opened = True
        container.save(update_fields=["balance_mg", "opened"])
    return entry


def _audit(actor: Actor, action: AuditAction, obj: Any, detail: dict[str, Any]) -> None:
    audit_record(actor=actor, action=action, object_type=type(obj).__name__.lower(),
                 object_id=obj.pk, detail=detail)
