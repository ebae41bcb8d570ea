"""Verifying the ledger: checkpoints of each site's chain head and the check of every chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.web.audit import anchor
from ketamine_clinic.web.stock.models import (
    ChainHead,
    LedgerEntry,
)
from ketamine_clinic.web.stock.services.writer import _chain_key

# --------------------------------------------------------------------------- verify


def _checkpoints(site_code: str) -> Path:
    return Path(settings.STOCK_CHECKPOINTS) / f"{site_code}.log"


# The newest checkpoint written to each file by this process, so the sealer (every few
# seconds) reads a file only the first time instead of at every pass.
_last_written: dict[Path, tuple[int, str]] = {}


def _newest_on_file(path: Path) -> tuple[int, str] | None:
    if path not in _last_written or not path.exists():
        newest = anchor.last(anchor.read(path, _chain_key()))
        if newest is None:
            return None
        _last_written[path] = (newest.seq, newest.hash)
    return _last_written[path]


def _append(path: Path, head: ChainHead, kind: str = "checkpoint") -> None:
    anchor.append(path, _chain_key(), seq=head.seq, hash_=head.hash, kind=kind)
    _last_written[path] = (head.seq, head.hash)


def stock_checkpoint() -> int:
    """Append each site's ledger head to its checkpoint file outside the database, when it
    moved since the last checkpoint (the worker runs this with the audit sealer; restore
    writes a ``restore`` line). Returns the number of checkpoints written."""
    written = 0
    for head in ChainHead.objects.select_related("site").filter(seq__gt=0):
        path = _checkpoints(head.site.code)
        if _newest_on_file(path) != (head.seq, head.hash):
            _append(path, head)
            written += 1
    return written


def stock_restored() -> None:
    """After a restore: each site's ledger was deliberately put back to its stored head."""
    for head in ChainHead.objects.select_related("site"):
        _append(_checkpoints(head.site.code), head, kind="restore")


def stock_verify() -> dict[str, list[core.ChainBreak]]:
    """Recompute every site's chain and compare it with the checkpoints kept outside the
    database: ``{site code: [breaks]}`` (empty lists when intact). A site whose ledger
    rows and head were removed together is still found by its checkpoint file."""
    heads = {h.site.code: h for h in ChainHead.objects.select_related("site")}
    folder = Path(settings.STOCK_CHECKPOINTS)
    on_file = sorted(p.stem for p in folder.glob("*.log")) if folder.is_dir() else []
    return {code: _verify_site(code, heads.get(code)) for code in sorted({*heads, *on_file})}


def _verify_site(code: str, head: ChainHead | None) -> list[core.ChainBreak]:
    read = anchor.read(_checkpoints(code), _chain_key())
    wanted = {cp.seq for cp in read.checkpoints}
    seen: dict[int, str] = {}
    last_seq = 0

    def chain() -> Iterator[core.ChainEntry]:
        nonlocal last_seq
        rows = LedgerEntry.objects.filter(site__code=code).order_by("seq", "id")
        for e in rows.iterator(chunk_size=2000):
            last_seq = max(last_seq, e.seq)
            if e.seq in wanted:
                seen[e.seq] = e.hash
            yield core.ChainEntry(e.seq, e.chain_content(), e.prev_hash, e.hash)

    breaks = core.verify_ledger(chain(), tip=(head.seq, head.hash) if head else None,
                                key=_chain_key())
    return breaks + [core.ChainBreak(seq, text)
                     for seq, text in anchor.problems(read, seen, last_seq)]
