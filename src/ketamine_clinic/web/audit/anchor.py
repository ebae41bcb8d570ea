"""Checkpoints of the chain's head kept outside the database.

The sealer appends one line per pass that sealed something: the time, the newest sequence
number and its link hash, under an HMAC with the audit key. ``audit verify`` checks that
the database still holds every checkpointed link, so removing the newest entries (or
truncating the whole trail) and moving the head back is caught, which a chain inside the
database alone cannot catch. A ``restore`` line, written by ``ketamine-clinic restore``,
says that the chain was deliberately put back to an earlier head; checkpoints before it
and beyond that head no longer count.

The file is opened for appending only. Put it where the database's administrator cannot
write (``KETAMINE_CLINIC_AUDIT_CHECKPOINTS``), for example a different host's mount or a
file with the append-only attribute (``chattr +a``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ketamine_clinic.web.audit.chain import checkpoint_mac, same


@dataclass(frozen=True)
class Checkpoint:
    line: int
    kind: str  # "checkpoint" or "restore"
    at: str
    seq: int
    hash: str


@dataclass(frozen=True)
class AnchorRead:
    checkpoints: list[Checkpoint]  # the ones still in force, oldest first
    bad_lines: list[int]  # line numbers that are not valid checkpoints (forged or altered)
    exists: bool


def append(path: Path, key: bytes, *, seq: int, hash_: str, kind: str = "checkpoint") -> None:
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    line = json.dumps({"kind": kind, "at": at, "seq": seq, "hash": hash_,
                       "mac": checkpoint_mac(key, kind=kind, at=at, seq=seq, hash_=hash_)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def last(read_: AnchorRead) -> Checkpoint | None:
    """The newest checkpoint still in force."""
    return read_.checkpoints[-1] if read_.checkpoints else None


def problems(read_: AnchorRead, seen: dict[int, str], last_seq: int) -> list[tuple[int, str]]:
    """What the checkpoints say is wrong with a chain that ends at ``last_seq`` and whose
    links at the checkpointed sequence numbers are ``seen``: ``(seq, sentence)`` pairs."""
    out = [(0, f"checkpoint file line {n} is not a valid checkpoint (forged or altered)")
           for n in read_.bad_lines]
    for cp in read_.checkpoints:
        if cp.seq > last_seq:
            out.append((cp.seq, f"entries {last_seq + 1} to {cp.seq} were removed: a "
                                f"checkpoint written at {cp.at} recorded entry {cp.seq}"))
        elif cp.seq and not same(seen.get(cp.seq, ""), cp.hash):
            out.append((cp.seq, f"differs from the checkpoint written at {cp.at}"))
    return out


def read(path: Path, key: bytes) -> AnchorRead:
    if not path.exists():
        return AnchorRead([], [], exists=False)
    in_force: list[Checkpoint] = []
    bad: list[int] = []
    with path.open(encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                cp = Checkpoint(number, str(data["kind"]), str(data["at"]), int(data["seq"]),
                                str(data["hash"]))
                valid = cp.kind in {"checkpoint", "restore"} and same(
                    checkpoint_mac(key, kind=cp.kind, at=cp.at, seq=cp.seq, hash_=cp.hash),
                    str(data["mac"]))
            except (ValueError, KeyError, TypeError):
                valid = False
            if not valid:
                bad.append(number)
                continue
            if cp.kind == "restore":
                in_force = [c for c in in_force if c.seq <= cp.seq]
            in_force.append(cp)
    return AnchorRead(in_force, bad, exists=True)
