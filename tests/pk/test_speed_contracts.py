"""What the fast paths promise besides their numbers: BLAS threads, caches, in-place output,
bands without copies. (Speed itself is measured in benchmarks/bench_pk.py, never here.)"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk import engine
from ketamine_clinic.pk import simulate as simulate_module
from ketamine_clinic.pk.bands import NARROW_MIN, percentile_bands
from ketamine_clinic.pk.engine import DECOMPOSITION_CHUNK, single_threaded_blas, solve
from ketamine_clinic.pk.population import simulate_population
from ketamine_clinic.pk.regimen import Regimen, Segment
from ketamine_clinic.pk.simulate import (
    Patient,
    pd_effect,
    resolve_models,
    simulate,
    typical_patient,
)
from tests.pk.test_engine import SCHEDULE, TIMES, system_for

TITRATION = Regimen((Segment(0, 30, 60), Segment(30, 120, 90), Segment(120, 240, 120)))
GRID = np.arange(0.0, 961.0)


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_runs_single_threaded_inside_the_core_and_is_restored_after() -> None:
    before = blas_threads()
    assert before, "no BLAS library found by threadpoolctl"
    with single_threaded_blas():
        assert blas_threads() == [1] * len(before)
        with single_threaded_blas():  # an inner block leaves the outer one's setting
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
    simulate("domino", Patient(70.0), TITRATION, GRID)
    assert blas_threads() == before


def test_the_blas_limit_holds_until_the_last_block_on_any_thread_ends() -> None:
    # Two requests of one server process: the first block to end must not restore BLAS's
    # threads under the second, the second's end restores what was there before both, and
    # a thread that set the limit before (here this one, through threadpool_limits) does
    # not make another thread's limit a no-op.
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before, "no BLAS library found by threadpoolctl"
        assert before == [2] * len(before)
        entered, first_left = threading.Event(), threading.Event()
        seen: list[list[int]] = []

        def second() -> None:
            with single_threaded_blas():
                entered.set()
                first_left.wait(timeout=30)
                seen.append(blas_threads())
            seen.append(blas_threads())

        worker = threading.Thread(target=second)
        with single_threaded_blas():
            worker.start()
            assert entered.wait(timeout=30)
        first_left.set()
        worker.join(timeout=30)
        assert seen == [[1] * len(before), before]
        assert blas_threads() == before
        # A block on another thread alone also takes effect.
        alone: list[list[int]] = []

        def third() -> None:
            with single_threaded_blas():
                alone.append(blas_threads())

        worker = threading.Thread(target=third)
        worker.start()
        worker.join(timeout=30)
        assert alone == [[1] * len(before)]
        assert blas_threads() == before


def test_one_patient_by_the_modal_form_does_not_set_the_blas_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting and restoring the limit costs more than the whole warm call's exponentials;
    the 4 x 4 decomposition and products do not need it (benchmarks/bench_pk.py)."""
    simulate("domino", Patient(70.0), TITRATION, GRID)

    def refuse() -> None:
        raise AssertionError("the one-patient path set the BLAS limit")

    monkeypatch.setattr(engine, "_blas_libraries", refuse)
    for weight in (70.0, 70.5):  # the decomposition cached, and made afresh
        result = simulate("domino", Patient(weight), TITRATION, GRID, threshold_ng_per_ml=50.0)
        assert np.isfinite(result.plasma_ng_per_ml).all()
    with pytest.raises(AssertionError, match="BLAS limit"):  # the check can fail
        solve(system_for("domino", 70.0, n=2, seed=None), SCHEDULE, TIMES)


def test_the_blas_limit_can_be_switched_off_for_measurement(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(engine, "BLAS_THREADS", None)
    before = blas_threads()
    with single_threaded_blas():
        assert blas_threads() == before


def test_bands_equal_numpy_percentile_without_copying_the_curves() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 9, 2500):
        y = rng.lognormal(size=(n, 57))
        for pcts in ((5.0, 50.0, 95.0), (0.0, 100.0), (2.5, 33.3, 97.5)):
            assert np.array_equal(percentile_bands(y, pcts), np.percentile(y, pcts, axis=0))


def test_bands_of_large_populations_equal_numpy_percentile_exactly() -> None:
    # Long rows go through the sample-narrowed selection; ties, a constant column and
    # columns whose strided sample misleads the bracket (every 16th value an outlier) must
    # come out bit for bit as numpy's.
    rng = np.random.default_rng(5)
    for n in (20_000, 65_537):
        y = rng.lognormal(size=(n, 9))
        y[:, 3] = 1.0
        y[:, 4] = np.round(y[:, 4], 1)
        y[::16, 5] = 100.0
        y[:, 6] = 0.0
        y[::16, 6] = 1.0
        y[:, 7] = np.sort(y[:, 7])
        for pcts in ((5.0, 50.0, 95.0), (0.0, 100.0), (2.5, 33.3, 97.5)):
            assert np.array_equal(percentile_bands(y, pcts), np.percentile(y, pcts, axis=0))


def test_bands_of_values_equal_in_single_precision_are_exact() -> None:
    # The counting passes compare single-precision roundings: values that differ only past
    # single precision (and a bracket that rounds onto them) must still give numpy's ranks.
    rng = np.random.default_rng(6)
    n = 30_000
    y = np.empty((n, 3))
    y[:, 0] = 1.0 + rng.permutation(n) * 1e-12
    y[:, 1] = rng.lognormal(size=n).astype(np.float32) + rng.uniform(0, 1e-9, size=n)
    y[:, 2] = np.where(rng.uniform(size=n) < 0.5, 1.0, 1.0 + 1e-10)
    for pcts in ((5.0, 50.0, 95.0), (0.0, 100.0), (2.5, 33.3, 97.5)):
        assert np.array_equal(percentile_bands(y, pcts), np.percentile(y, pcts, axis=0))


def test_bands_of_values_past_single_precision_are_exact() -> None:
    # A value past single precision's range (an infinity when rounded) sends the whole
    # population to whole partitions; values that round to minus infinity, and a column
    # of a constant zero, are ordered by the narrowed selection or partitioned whole.
    rng = np.random.default_rng(8)
    n = 24_000
    y = rng.lognormal(size=(n, 4))
    y[rng.uniform(size=n) < 0.1, 1] = -1e300
    y[:, 2] = 0.0
    y[:, 3] = -y[:, 3]
    pcts = (5.0, 50.0, 95.0)
    assert np.array_equal(percentile_bands(y, pcts), np.percentile(y, pcts, axis=0))
    y[7, 0] = 1e300
    assert np.array_equal(percentile_bands(y, pcts), np.percentile(y, pcts, axis=0))


def test_the_engine_gives_the_same_values_on_any_number_of_threads() -> None:
    n = DECOMPOSITION_CHUNK * 2 + 100  # three chunks: the threads share them out
    system = system_for("domino", 70.0, n=n, seed=None)
    one = solve(system, SCHEDULE, TIMES, threads=1)
    for threads in (2, 3):
        many = solve(system, SCHEDULE, TIMES, threads=threads)
        assert all(np.array_equal(many[o], one[o]) for o in one)


@pytest.mark.parametrize("n", [3_000, NARROW_MIN + 500])
def test_a_population_is_the_same_bit_for_bit_on_any_number_of_threads(n: int) -> None:
    # Below NARROW_MIN the bands come from whole partitions, above it from the counts of
    # each chunk against brackets from the first chunk; both split over the threads.
    grid = np.arange(0.0, 361.0, 5.0)
    runs = [simulate_population("domino", Patient(70.0), TITRATION, grid, n=n, seed=4,
                                omega2={"V1": 0.1, "k10": 0.09}, threshold_ng_per_ml=200.0,
                                keep_individuals=True, threads=threads)
            for threads in (1, 2, 3)]
    first = runs[0]
    assert first.individuals is not None
    for series, curves in first.individuals.items():
        assert np.array_equal(first.bands[series],
                              np.percentile(curves, first.percentiles, axis=0))
    for other in runs[1:]:
        assert other.individuals is not None
        for series in first.bands:
            assert np.array_equal(other.bands[series], first.bands[series])
            assert np.array_equal(other.individuals[series], first.individuals[series])
        for series in first.crossing_percentiles_min:
            assert np.array_equal(other.crossing_percentiles_min[series],
                                  first.crossing_percentiles_min[series])


def test_a_population_refuses_a_thread_count_below_one() -> None:
    for threads in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="threads"):
            simulate_population("domino", Patient(70.0), TITRATION, GRID, n=10, seed=1,
                                omega2={"k10": 0.09}, threads=threads)  # type: ignore[arg-type]


def test_the_default_thread_count_follows_the_cores_this_process_may_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A process limited to one core (a container's CPU set, taskset) gets one thread, not
    # one per core of the host; many cores are capped.
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda _pid: {3}, raising=False)
    assert engine.default_threads() == 1
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda _pid: set(range(64)),
                        raising=False)
    assert engine.default_threads() == engine.MAX_DEFAULT_THREADS
    monkeypatch.delattr(engine.os, "sched_getaffinity", raising=False)
    assert engine.default_threads() == engine.MAX_DEFAULT_THREADS
    monkeypatch.setattr(engine.os, "cpu_count", lambda: None)
    assert engine.default_threads() == 1


def test_a_population_pd_readout_is_that_of_each_patient_effect_site() -> None:
    # Worked out chunk by chunk inside the engine's loop; the same values as the readout
    # of the whole effect-site array, and its bands exact.
    n = NARROW_MIN + 10
    grid = np.arange(0.0, 1441.0, 60.0)
    pop = simulate_population("dahan2011-crps", Patient(70.0), TITRATION, grid, n=n,
                              seed=2, keep_individuals=True, threads=2)
    assert pop.individuals is not None
    _, pd = resolve_models("dahan2011-crps")
    assert pd is not None
    readout = pop.individuals["pd_effect"]
    assert np.array_equal(readout, pd_effect(pd, pop.individuals["effect_site"]))
    assert np.array_equal(pop.bands["pd_effect"],
                          np.percentile(readout, pop.percentiles, axis=0))


def test_a_population_writes_into_the_arrays_it_is_given() -> None:
    system = system_for("domino", 70.0, n=70, seed=None)
    out = {o: np.full((70, TIMES.size), np.nan) for o in system.outputs}
    result = solve(system, SCHEDULE, TIMES, out=out)
    assert all(result[o] is out[o] for o in out)
    assert all(np.isfinite(v).all() for v in out.values())


def test_a_population_written_in_place_gives_the_same_values_in_any_layout() -> None:
    # Contiguous rows are written in place; column-major arrays and every-other-column
    # views go through scratch rows copied out. All give the values of fresh arrays.
    system = system_for("domino", 70.0, n=300, seed=1)
    fresh = solve(system, SCHEDULE, GRID)
    column_major = {o: np.asfortranarray(np.full((300, GRID.size), np.nan))
                    for o in system.outputs}
    both = np.full((300, 2 * GRID.size), np.nan)
    interleaved = {o: both[:, i::2] for i, o in enumerate(system.outputs)}
    for out in (column_major, interleaved):
        solve(system, SCHEDULE, GRID, out=out)
        assert all(np.array_equal(out[o], fresh[o]) for o in fresh)


def test_the_decomposition_is_done_once_per_parameter_set_and_shared_read_only() -> None:
    typical_patient.cache_clear()
    simulate("kamp2020", Patient(71.5), TITRATION, GRID)
    simulate("kamp2020", Patient(71.5), TITRATION.what_if(60, 120), GRID)
    info = typical_patient.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    system, modal = typical_patient("kamp2020", 71.5, simulate_module.prepare(
        "kamp2020", Patient(71.5), TITRATION).ke0.per_min)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="read-only"):
        modal.lam[0, 0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        system.A[0, 0, 0] = 0.0


def test_model_setup_is_not_repeated_for_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    simulate_module._setup.cache_clear()
    calls = []
    real = simulate_module.resolve_models
    monkeypatch.setattr(simulate_module, "resolve_models",
                        lambda model_id: calls.append(model_id) or real(model_id))
    for weight in (60.0, 70.0, 80.0):
        simulate("domino", Patient(weight), TITRATION, GRID)
    assert calls == ["domino"]


def test_a_population_and_its_typical_patient_agree_with_zero_variance() -> None:
    pop = simulate_population("domino", Patient(70.0), TITRATION, GRID, n=100, seed=1,
                              omega2={"k10": 0.0}, keep_individuals=True)
    assert pop.individuals is not None
    for name, curves in pop.individuals.items():
        if name in pop.typical.series():
            assert np.allclose(curves, pop.typical.series()[name], rtol=1e-12, atol=0)
