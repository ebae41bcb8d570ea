"""Exact percentile bands of many curves, without a copy of the curves.

``numpy.percentile(y, q, axis=0)`` (linear interpolation between two order statistics) of
curves y (N, T), bit for bit. A large population's order statistics are selected among the
few values that brackets from a sample enclose (:class:`BandCounter`); a small one's (or
curves holding a NaN) by whole partitions of a few time columns at a time
(:func:`_whole_partitions`).

The counting works on any rows of the curves at a time (:meth:`BandCounter.count`), so the
population counts each chunk of patients right after the engine has written it, on as many
threads as it solves them, and the tallies of all chunks give the exact order statistics
(:meth:`BandCounter.bands`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
KeyArray = NDArray[np.int64]

# Populations of at least this many patients have their order statistics narrowed by a
# sample; below it whole partitions cost little.
NARROW_MIN = 20_000
# Bytes of curves copied at a time for whole partitions (a few columns of (N, T)).
_BLOCK_BYTES = 8 * 2**20
# Patients per tile of the transposed copy of a block of curves (see _whole_partitions).
_TILE_ROWS = 2048
# The sample of percentile_bands: one patient in _SAMPLE_STRIDE. Each bracket reaches
# _SPREAD_SD standard deviations of the sample rank either side (a miss, about one time and
# percentile in 400 for random draws, only costs that time a whole partition; on the
# benchmark's 100,000 patients x 961 times none missed at 2.5 to 4 standard deviations, and
# 3 gathered a quarter fewer values than 4).
_SAMPLE_STRIDE = 16
_SPREAD_SD = 3.0
# Patients per tile of the counting pass: a tile of 961 times stays in cache with its masks
# (measured: 16 and 32 rows cost more, in the fixed cost of each array operation), and
# fewer than 256 rows let the counts add up as bytes.
_COUNT_ROWS = 128
# Sampled patients per tile of the sample's transposed copy.
_SAMPLE_TILE_ROWS = 512
# The low 63 bits of an IEEE double: flipped on negative numbers, they make the bits of
# doubles, read as signed 64-bit integers, ordered as the doubles are (see _ordered).
_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def percentile_bands(y: FloatArray, percentiles: Sequence[float]) -> FloatArray:
    """``numpy.percentile(y, percentiles, axis=0)`` of curves y (N, T), exactly, without a
    copy of y: a large population's order statistics are selected among the few values
    that a strided sample brackets (:class:`BandCounter`), a small one's (or those of
    curves that hold a NaN) by whole partitions of a few time columns at a time."""
    n = y.shape[0]
    if n >= NARROW_MIN:
        counter = BandCounter(y[::_SAMPLE_STRIDE], n, percentiles)
        return counter.bands([counter.count(y)], y)
    below, above, weight = _ranks(n, percentiles)
    lo, hi = _whole_partitions(y, below, above)
    return _interpolate(lo, hi, weight)


def _ranks(n: int, percentiles: Sequence[float]
           ) -> tuple[IntArray, IntArray, FloatArray]:
    """numpy's two ranks (0-based) either side of each percentile, and the weight of the
    upper one."""
    q = np.asarray(percentiles, dtype=float) / 100.0
    virtual = q * (n - 1)
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    return below, above, virtual - below


def _interpolate(lo: FloatArray, hi: FloatArray, weight: FloatArray) -> FloatArray:
    # numpy's lerp: from the lower value below the midpoint, from the upper above it.
    w = weight[:, None]
    bands: FloatArray = np.where(w < 0.5, lo + (hi - lo) * w, hi - (hi - lo) * (1.0 - w))
    return bands


def _whole_partitions(y: FloatArray, below: IntArray, above: IntArray
                      ) -> tuple[FloatArray, FloatArray]:
    """The values of rank ``below`` and ``above`` (0-based) over the patients of y (N, T),
    as (len(below), T) each: a few time columns at a time, each block copied transposed
    (one contiguous row per time) and partitioned."""
    n, T = y.shape
    ranks = np.unique(np.concatenate([below, above]))
    lo = np.empty((below.size, T))
    hi = np.empty((below.size, T))
    step = max(1, _BLOCK_BYTES // (8 * n))
    for j in range(0, T, step):
        block = np.empty((min(step, T - j), n))
        # Transposed tile by tile: a tile's source rows stay in cache while each of its
        # columns is read (a whole column at once reads each row's cache line from memory
        # again and again).
        for p0 in range(0, n, _TILE_ROWS):
            block[:, p0:p0 + _TILE_ROWS] = y[p0:p0 + _TILE_ROWS, j:j + step].T
        block.partition(ranks, axis=1)
        lo[:, j:j + step] = block[:, below].T
        hi[:, j:j + step] = block[:, above].T
    return lo, hi


def _ordered(values: FloatArray) -> KeyArray:
    """The bits of doubles as signed integers ordered as the doubles (-0.0 just below
    +0.0): a negative double's magnitude bits flipped. Its own inverse."""
    bits = values.view(np.int64)
    keys: KeyArray = bits ^ ((bits >> 63) & _MAGNITUDE)
    return keys


@dataclass(frozen=True, slots=True)
class Tally:
    """What one pass over some rows found, per wanted rank i: ``counts[i]`` (T,) the values
    below the lower bracket, ``values[i]`` the values inside the bracket and ``columns[i]``
    their times (indices), in pieces."""

    counts: IntArray
    values: list[list[FloatArray]]
    columns: list[list[NDArray[np.integer]]]


class BandCounter:
    """Exact order statistics of N curves from passes over any rows of them at a time.

    Partitioning costs some ten nanoseconds a value for several ranks at once (its
    comparisons are branches that the processor cannot predict), and a transposed copy of
    the curves some two nanoseconds a value (NumPy's strided copy, measured). Instead, a
    sample of the patients gives, for each wanted rank and time, two of its order
    statistics that very likely bracket it. A pass over the curves as they lie (patients in
    rows, a cache-sized tile of rows at a time) counts, for every time at once, the values
    below each lower bracket and gathers those between the two: branch-free vectorised
    comparisons. The values gathered from all passes are then ordered at once, as integer
    keys holding the time and the value (:meth:`bands`). The bracket is checked by the
    counts, so the result is exact whatever the sample says; a time whose bracket misses
    is partitioned whole. :meth:`count` touches no state of the counter, so passes over
    disjoint rows may run on several threads at once.

    The comparisons are made in single precision, half the bytes: rounding is monotone, so
    the values below a rounded bracket are below every value inside it, and those inside
    below every value above it, which is all the selection needs (the values gathered are
    the curves' own). The sample's roundings are ordered as its values.
    """

    def __init__(self, sample: FloatArray, n: int, percentiles: Sequence[float]) -> None:
        """``sample`` (k, T): some of the N = ``n`` patients' curves, drawn like the rest
        (a strided sample, or the first chunk of patients drawn independently)."""
        self.below, self.above, self.weight = _ranks(n, percentiles)
        self.n = n
        with np.errstate(over="ignore"):  # past single precision: an infinity, in order
            rows = sample.astype(np.float32)
        size, T = rows.shape
        ordered = np.empty((T, size), dtype=np.float32)
        # Transposed tile by tile from a compact copy (measured 20 ms against 50 ms for the
        # strided sample of 100,000 x 961 values transposed at once).
        for p0 in range(0, size, _SAMPLE_TILE_ROWS):
            ordered[:, p0:p0 + _SAMPLE_TILE_ROWS] = rows[p0:p0 + _SAMPLE_TILE_ROWS].T
        del rows
        # A vectorised sort costs less than selecting the bracket ranks (measured on
        # 961 x 6,250 values: 40 ms against 140 ms).
        ordered.sort(axis=1)
        self.lows = np.empty((self.below.size, T), dtype=np.float32)
        self.highs = np.empty((self.below.size, T), dtype=np.float32)
        for i, r in enumerate(self.below.tolist()):
            # The sample rank of r, widened by the sample's binomial spread either side.
            p = (r + 0.5) / n
            centre = r * size / n
            spread = _SPREAD_SD * math.sqrt(size * p * (1.0 - p)) + 2.0
            self.lows[i] = ordered[:, max(0, math.floor(centre - spread))]
            self.highs[i] = ordered[:, min(size - 1, math.ceil(centre + spread))]
        # A time whose bracket spans more than the keys of _select can hold (one at a
        # constant zero, say: single precision's neighbours of zero are some 2^62 ordered
        # doubles apart) gathers nothing: its brackets are NaN, which no comparison
        # passes, and it is partitioned whole (a few such times at most).
        self.shift = 63 - max(1, (T - 1).bit_length())
        # A bracket at single precision's largest finite value steps to an infinity, which
        # is ordered as the values are (and leaves that time's bracket wide).
        with np.errstate(over="ignore"):
            below_low = np.nextafter(self.lows, np.float32(-np.inf))
            above_high = np.nextafter(self.highs, np.float32(np.inf))
        base = _ordered(below_low.astype(np.float64))
        top = _ordered(above_high.astype(np.float64))
        # Halved first, so the difference cannot overflow.
        wide = (top >> 1) - (base >> 1) >= (1 << (self.shift - 1)) - 1
        self.lows[wide] = np.nan
        self.highs[wide] = np.nan
        # Key = time << shift + (ordered bits - base) = ordered bits - adjust (see _select).
        self.adjust = base - (np.arange(T, dtype=np.int64) << self.shift)
        self.column_type = np.int16 if T < 2**15 else np.intp
        # The time of every value of a full tile, gathered with the values (cheaper than
        # the remainder of each flat index: measured 3 against 15 us a tile and rank).
        self.tile_columns: NDArray[np.integer] = np.tile(
            np.arange(T, dtype=self.column_type), _COUNT_ROWS)

    def count(self, rows: FloatArray) -> Tally | None:
        """One pass over ``rows`` (P, T) of the curves; None if they hold a NaN or a value
        past single precision's range."""
        with np.errstate(over="ignore"):  # a value past single precision ends the pass
            return self._count(rows)

    def _count(self, rows: FloatArray) -> Tally | None:
        P_all, T = rows.shape
        B = self.below.size
        counts = np.zeros((B, T), dtype=np.intp)
        values: list[list[FloatArray]] = [[] for _ in range(B)]
        columns: list[list[NDArray[np.integer]]] = [[] for _ in range(B)]
        under = np.empty((_COUNT_ROWS, T), dtype=bool)
        inside = np.empty((_COUNT_ROWS, T), dtype=bool)
        single = np.empty((_COUNT_ROWS, T), dtype=np.float32)
        for p0 in range(0, P_all, _COUNT_ROWS):
            tile = np.ascontiguousarray(rows[p0:p0 + _COUNT_ROWS])
            P = tile.shape[0]
            rounded = single[:P]
            np.copyto(rounded, tile, casting="same_kind")
            # A NaN propagates into the maximum (one pass, against two for a sum).
            if not math.isfinite(float(rounded.max())):
                return None
            flat = tile.reshape(-1)
            where = self.tile_columns[:P * T]
            is_under, is_inside = under[:P], inside[:P]
            for i in range(B):
                np.less(rounded, self.lows[i], out=is_under)
                counts[i] += np.add.reduce(is_under.view(np.uint8), axis=0, dtype=np.uint8)
                np.less_equal(rounded, self.highs[i], out=is_inside)
                np.logical_xor(is_inside, is_under, out=is_inside)
                at = np.flatnonzero(is_inside)
                if at.size:
                    values[i].append(flat.take(at))
                    columns[i].append(where.take(at))
        return Tally(counts, values, columns)

    def bands(self, tallies: Sequence[Tally | None], y: FloatArray) -> FloatArray:
        """The percentile bands (len(percentiles), T) of curves y (N, T), from the tallies
        of passes that together covered every row of y once each."""
        return self.combine([self.order_statistics(i, tallies, y)
                             for i in range(self.below.size)], y)

    def order_statistics(self, i: int, tallies: Sequence[Tally | None], y: FloatArray
                         ) -> tuple[FloatArray, FloatArray] | None:
        """The two order statistics (T,) each of the i-th percentile, or None if a pass
        found a NaN. Touches no state of the counter: the percentiles of several series
        may be selected on several threads at once."""
        done = [t for t in tallies if t is not None]
        if len(done) < len(tallies):
            return None
        T = y.shape[1]
        lo, hi = np.empty(T), np.empty(T)
        self._select(i, done, y, lo, hi)
        return lo, hi

    def combine(self, found: Sequence[tuple[FloatArray, FloatArray] | None], y: FloatArray
                ) -> FloatArray:
        """The bands from :meth:`order_statistics` of every percentile in order (whole
        partitions of y if any is None)."""
        pairs = [f for f in found if f is not None]
        if len(pairs) < len(found):
            lo, hi = _whole_partitions(y, self.below, self.above)
        else:
            lo = np.stack([p[0] for p in pairs])
            hi = np.stack([p[1] for p in pairs])
        return _interpolate(lo, hi, self.weight)

    def _select(self, i: int, tallies: Sequence[Tally], y: FloatArray,
                lo: FloatArray, hi: FloatArray) -> None:
        """The order statistics of wanted rank i at every time, into lo and hi (T,).

        The values gathered at every time are ordered in one sort of 64-bit keys, each a
        time's index in the high bits and, below it, the value's ordered bits (_ordered)
        less those of the greatest single-precision number below the time's lower bracket:
        every gathered value lies above that number and below the least one above the upper
        bracket, and where those two are less than 2^(63 - bits of T) apart (within a few
        binades; the counter gathers nothing at any other time) the keys order the values
        by time and then by value, exactly. Measured on 100,000 x 961 values (7.5 million
        gathered a series), against grouping by time with a stable argsort and
        partitioning each time: 0.26 s for both series against 0.33 s."""
        r, r2 = int(self.below[i]), int(self.above[i])
        T = lo.size
        pieces = [v for t in tallies for v in t.values[i]]
        values = np.concatenate(pieces) if pieces else np.empty(0)
        col_pieces = [c for t in tallies for c in t.columns[i]]
        columns = np.concatenate(col_pieces) if col_pieces else \
            np.empty(0, dtype=self.column_type)
        first = np.sum([t.counts[i] for t in tallies], axis=0)
        sizes = np.bincount(columns, minlength=T)
        # Positive doubles' bits are ordered already (every gathered value lies above a
        # lower bracket's predecessor, so a positive bracket holds positive values only).
        bits = _ordered(values) if bool((self.lows[i] <= 0.0).any()) else \
            values.view(np.int64)
        # Integer arrays wrap around; the key is in range at every time that gathered.
        keys = bits - self.adjust[i].take(columns)
        del pieces, col_pieces, values, columns, bits
        keys.sort()
        starts = np.cumsum(sizes) - sizes
        hit = np.flatnonzero((first <= r) & (r2 < first + sizes))
        for target, rank in ((lo, r), (hi, r2)):
            picked = keys[starts[hit] + (rank - first[hit])] + self.adjust[i, hit]
            target[hit] = _ordered(picked).view(np.float64)
        missed = np.ones(T, dtype=bool)
        missed[hit] = False
        for t in np.flatnonzero(missed).tolist():  # partitioned whole
            column = y[:, t].copy()
            # One rank selected (vectorised for a single rank: measured 1.1 against 14 ns
            # a value for two at once); the next one, if wanted, is the least value above.
            column.partition(r)
            lo[t] = column[r]
            hi[t] = lo[t] if r2 == r else column[r2:].min()
