"""The keyed chain of the audit trail, free of Django so it can be checked anywhere.

Two layers, both HMAC-SHA256 under a key the database does not hold:

* every entry carries ``mac``, the HMAC of its own content, computed when it is written (a
  plain insert: no lock on the hot path);
* a *link* puts each entry at a place in one gapless sequence: its hash covers the previous
  link's hash, its own sequence number, the entry's id and the entry's ``mac``. Links are
  written by the sealer, one writer at a time, a few seconds after the entries.

Whoever holds only the database can neither alter an entry nor write a new one, nor
renumber, reorder or re-link the chain: each needs the key. Removing the newest entries
leaves a valid prefix, which is why the sealer also writes checkpoints of the chain's head
outside the database (see ``anchor.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64

# The fields an entry's MAC covers, in this order. Changing it invalidates every entry.
CONTENT_FIELDS = (
    "at", "nonce", "user_id", "username", "role", "site_code", "action",
    "object_type", "object_id", "client_address", "detail",
)


def _mac(key: bytes, payload: object) -> str:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, content: Mapping[str, Any]) -> str:
    """The HMAC of one entry's content (the ``CONTENT_FIELDS`` of ``content``)."""
    return _mac(key, ["entry", [content[name] for name in CONTENT_FIELDS]])


def link_hash(key: bytes, *, prev_hash: str, seq: int, entry_id: int, mac: str) -> str:
    """The hash of link ``seq``, which places entry ``entry_id`` after ``prev_hash``."""
    return _mac(key, ["link", prev_hash, seq, entry_id, mac])


def checkpoint_mac(key: bytes, *, kind: str, at: str, seq: int, hash_: str) -> str:
    """The HMAC of one line of the checkpoint file (``kind`` is checkpoint or restore)."""
    return _mac(key, ["checkpoint", kind, at, seq, hash_])


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_links(key: bytes, links: Iterable[Mapping[str, Any]]) -> list[ChainProblem]:
    """Walk the links in sequence order; report every break.

    Each mapping holds ``seq``, ``entry_id``, ``prev_hash``, ``hash`` and the entry's
    content fields with its stored ``mac``.
    """
    problems: list[ChainProblem] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for link in links:
        seq = int(link["seq"])
        if seq != expected_seq:
            kind = "missing or reordered" if seq > expected_seq else "duplicated or reordered"
            problems.append(ChainProblem(seq, f"expected entry {expected_seq}: {kind}"))
        if not same(link["prev_hash"], expected_prev):
            problems.append(ChainProblem(seq, "does not follow the entry before it"))
        if not same(entry_mac(key, link), link["mac"]):
            problems.append(ChainProblem(seq, "content altered or forged (MAC mismatch)"))
        recomputed = link_hash(key, prev_hash=link["prev_hash"], seq=seq,
                               entry_id=int(link["entry_id"]), mac=link["mac"])
        if not same(recomputed, link["hash"]):
            problems.append(ChainProblem(seq, "link altered, renumbered or forged "
                                              "(hash mismatch)"))
        expected_prev = link["hash"]
        expected_seq = seq + 1
    return problems
