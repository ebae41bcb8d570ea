"""The hash chain of the audit trail, free of Django so it can be checked anywhere.

Each entry's hash covers its own canonical content and the previous entry's hash, so an
altered, removed, inserted or reordered entry breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64

# The fields that are hashed, in this order. Changing this list invalidates old chains.
HASHED_FIELDS = (
    "seq", "at", "user_id", "username", "role", "site_code", "action",
    "object_type", "object_id", "client_address", "detail",
)


def entry_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    payload = json.dumps(
        [prev_hash, [content[name] for name in HASHED_FIELDS]],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> list[ChainProblem]:
    """Walk entries in stored order; report every break.

    Each mapping holds the hashed fields plus ``prev_hash`` and ``hash``.
    """
    problems: list[ChainProblem] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for entry in entries:
        seq = int(entry["seq"])
        if seq != expected_seq:
            kind = "missing or reordered" if seq > expected_seq else "duplicated or reordered"
            problems.append(ChainProblem(seq, f"expected entry {expected_seq}: {kind}"))
        if entry["prev_hash"] != expected_prev:
            problems.append(ChainProblem(seq, "does not follow the entry before it"))
        if entry_hash(entry["prev_hash"], entry) != entry["hash"]:
            problems.append(ChainProblem(seq, "content altered (hash mismatch)"))
        expected_prev = entry["hash"]
        expected_seq = seq + 1
    return problems
