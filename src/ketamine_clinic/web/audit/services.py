"""Writing to and checking the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest

from ketamine_clinic.web.audit.chain import GENESIS_HASH, ChainProblem, entry_hash, verify_chain
from ketamine_clinic.web.audit.models import AuditEntry, AuditHead

if TYPE_CHECKING:
    from ketamine_clinic.web.accounts.models import User


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


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str = "",
    object_id: object = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain, inside the caller's transaction if there is one."""
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            head = AuditHead.objects.create(pk=1, seq=0, hash=GENESIS_HASH)
        user = actor.user
        entry = AuditEntry(
            seq=head.seq + 1,
            at=datetime.now(UTC),
            user_id_value=user.pk if user else None,
            username=user.get_username() if user else "",
            role=getattr(user, "role", "") if user else "",
            site_code=actor.site_code,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id != "" else "",
            client_address=actor.client_address,
            detail=_json_safe(detail or {}),
            prev_hash=head.hash,
        )
        entry.hash = entry_hash(entry.prev_hash, entry.chain_content())
        entry.save()
        head.seq, head.hash = entry.seq, entry.hash
        head.save(update_fields=["seq", "hash"])
    return entry


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_verify() -> VerifyReport:
    """Recompute the whole chain and compare with the stored tip."""
    count = 0

    def stream():  # type: ignore[no-untyped-def]
        nonlocal count
        for entry in AuditEntry.objects.order_by("seq", "id").iterator(chunk_size=2000):
            count += 1
            yield entry.chain_content()

    problems = verify_chain(stream())
    head = AuditHead.objects.filter(pk=1).first()
    last = AuditEntry.objects.order_by("-seq").first()
    if head is not None and (last is None or (last.seq, last.hash) != (head.seq, head.hash)):
        problems.append(ChainProblem(head.seq, "the newest entries were removed (tip mismatch)"))
    return VerifyReport(entries=count, problems=problems)
