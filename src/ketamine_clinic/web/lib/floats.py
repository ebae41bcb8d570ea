"""Numbers a cache keeps for a report to read in bulk: float64, little-endian, NaN for none,
so that the report takes every row's numbers into one NumPy array in one call
(``numpy.frombuffer`` over the rows' bytes joined) instead of a step per number."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable


def float64_bytes(values: Iterable[float | None]) -> bytes:
    """``values`` as stored: float64, little-endian, NaN for None."""
    floats = [math.nan if v is None else float(v) for v in values]
    return struct.pack(f"<{len(floats)}d", *floats)


def floats_of(stored: bytes | memoryview) -> list[float | None]:
    """The numbers stored by :func:`float64_bytes` (None for NaN)."""
    raw = bytes(stored)
    return [None if math.isnan(v) else v for v in struct.unpack(f"<{len(raw) // 8}d", raw)]
