"""Property test of the band counter: whatever the sample, the split of the rows into passes
and the values (ties, signed zeros, subnormals, values past single precision), the bands
are numpy's percentiles exactly. The counter is driven directly, so small populations take
the sample-narrowed path that only populations of ``NARROW_MIN`` patients take otherwise."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ketamine_clinic.pk.bands import BandCounter

# Values chosen to sit on the edges of the counter's single-precision comparisons and of its
# integer keys, mixed with any finite double.
_EDGES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-310, 5e-324, -5e-324, 1e300, -1e300, 3.0])
# Within +-1e300, so that the interpolation between two values (numpy's and the counter's
# alike) cannot overflow: a warning then comes from the counter's own steps.
_VALUES = st.one_of(_EDGES, st.floats(min_value=-1e300, max_value=1e300, width=64))
_SINGLE_MAX = float(np.finfo(np.float32).max)


# A warning (an overflow in the counter's own arithmetic) fails the test.
@pytest.mark.filterwarnings("error")
@settings(max_examples=300, deadline=None)
# Brackets at single precision's largest finite values, either sign.
@example(y=np.array([[-_SINGLE_MAX], [0.0], [_SINGLE_MAX], [1.0]]), sample_rows=4,
         percentiles=[5.0, 50.0, 95.0], passes=1)
@given(
    y=arrays(np.float64, st.tuples(st.integers(1, 300), st.integers(1, 5)), elements=_VALUES),
    sample_rows=st.integers(1, 50),
    percentiles=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=4),
    passes=st.integers(1, 4),
)
def test_bands_from_any_sample_and_any_passes_are_numpy_percentiles(
        y: np.ndarray, sample_rows: int, percentiles: list[float], passes: int) -> None:
    n = y.shape[0]
    counter = BandCounter(y[:min(sample_rows, n)], n, percentiles)
    bounds = np.linspace(0, n, passes + 1).astype(int).tolist()
    tallies = [counter.count(y[a:b]) for a, b in pairwise(bounds) if b > a]
    assert np.array_equal(counter.bands(tallies, y), np.percentile(y, percentiles, axis=0))
