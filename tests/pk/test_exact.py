"""Every path of the engine against the independent exact reference, at 1e-9 relative.

The reference (tests/pk/exact_reference.py) solves the same matrices in 40-digit arithmetic.
The bound holds at every time where the exact value is not zero (no mask for small values):
the modal closed form with expm1 terms keeps full relative precision from the first instant
to the far tail, and the matrix-exponential path steps at most 60 min at a time.
"""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_clinic.pk import eigen, engine
from ketamine_clinic.pk.engine import make_schedule, modal_form, solve
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.pk.simulate import (
    Patient,
    prepare,
    resolve_models,
    simulate,
    typical_patient,
)
from tests.pk.exact_reference import exact_outputs, max_relative_error
from tests.pk.test_engine import MODELS, SCHEDULE, TIMES, system_for, weight_for

RTOL = 1e-9
# A titration with a loading bolus, a pause and a restart (mg/h and mg of the drug given).
REGIMEN_SEGMENTS = (Segment(0, 30, 60), Segment(30, 90, 90), Segment(90, 200, 120),
                    Segment(215, 240, 30))
REGIMEN_BOLUSES = (Bolus(0, 15), Bolus(100, 10))
# The chart's grid (every minute to 12 h after the end) plus instants just after events and
# a far-tail point 80 h out.
GRID = np.unique(np.concatenate([np.arange(0.0, 961.0), [0.001, 100.0005, 215.25, 5000.0]]))


def patient_for(model_id: str) -> Patient:
    pk, _ = resolve_models(model_id)
    ages = pk.validity.age_years
    if ages is not None and ages.low < 18:  # a paediatric model: an 8-year-old of 25 kg
        return Patient(25.0, age_years=8)
    return Patient(70.0, age_years=40)


def regimen_for(model_id: str) -> Regimen:
    pk = prepare(model_id, patient_for(model_id), Regimen(REGIMEN_SEGMENTS)).pk
    drug = "esketamine" if pk.compound == "S-ketamine" else "racemic"
    return Regimen(REGIMEN_SEGMENTS, REGIMEN_BOLUSES, drug)


@pytest.mark.parametrize("model_id", MODELS)
def test_simulate_agrees_with_the_exact_reference_to_1e_9_at_every_time(model_id: str) -> None:
    patient, regimen = patient_for(model_id), regimen_for(model_id)
    res = simulate(model_id, patient, regimen, GRID)
    prep = prepare(model_id, patient, regimen)
    system, _ = typical_patient(prep.pk.id, patient.weight_kg,
                                None if prep.ke0 is None else prep.ke0.per_min)
    exact = exact_outputs(system, prep.schedule, GRID)
    assert set(res.series()) == set(exact)
    assert max_relative_error(res.series(), exact) <= RTOL


def test_the_benchmark_case_is_exact_to_1e_9() -> None:
    # benchmarks/bench_pk.py, one patient: Domino 70 kg, 4-h titration, 961 times.
    regimen = Regimen((Segment(0, 30, 60), Segment(30, 120, 90), Segment(120, 240, 120)))
    times = np.arange(0.0, 961.0)
    res = simulate("domino", Patient(70.0, age_years=40), regimen, times)
    prep = prepare("domino", Patient(70.0, age_years=40), regimen)
    assert prep.ke0 is not None
    system, _ = typical_patient("domino", 70.0, prep.ke0.per_min)
    assert max_relative_error(res.series(), exact_outputs(system, prep.schedule, times)) \
        <= RTOL


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("vectorised", [True, False])
def test_population_paths_agree_with_the_exact_reference(model_id: str,
                                                         vectorised: bool) -> None:
    # 64 patients on the 1-min grid: the run-by-run products (evenly spaced runs factored);
    # on TIMES (uneven): the direct products; one patient alone: the single gather.
    system = system_for(model_id, weight_for(model_id), n=64, seed=5)
    grid = solve(system, SCHEDULE, GRID, method="auto", vectorised=vectorised)
    uneven = solve(system, SCHEDULE, TIMES, method="auto", vectorised=vectorised)
    for p in (0, 41):
        assert max_relative_error({k: v[p] for k, v in grid.items()},
                                  exact_outputs(system, SCHEDULE, GRID, patient=p)) <= RTOL
        assert max_relative_error({k: v[p] for k, v in uneven.items()},
                                  exact_outputs(system, SCHEDULE, TIMES, patient=p)) <= RTOL


@pytest.mark.parametrize("model_id", ["domino", "fanta2015-otto2021", "kamp2020"])
def test_population_tilings_of_evenly_spaced_grids_are_exact(model_id: str) -> None:
    # The population's factored products on evenly spaced grids: a titration whose steps
    # share a divisor (30, 90, 120 min: one tiling across three runs) and a tail of 721
    # times (7 blocks of 103), the benchmark's case; a step of 131 times (no divisor: a
    # partial last block of its own); a 10-min grid to 83 h, whose offset tables reach the
    # floor of the exponentials for the fast modes.
    system = system_for(model_id, weight_for(model_id), n=64, seed=5)
    titration = make_schedule([(0.0, 30.0, 1.0), (30.0, 120.0, 1.5), (120.0, 240.0, 2.0)],
                              [])
    uneven_step = make_schedule([(0.0, 30.0, 1.0), (30.0, 161.0, 2.0)], [(0.0, 15.0)])
    for schedule, grid in ((titration, np.arange(0.0, 961.0)),
                           (uneven_step, np.arange(0.0, 961.0)),
                           (titration, np.arange(0.0, 5000.0, 10.0))):
        ours = solve(system, schedule, grid, method="auto")
        for p in (0, 41):
            assert max_relative_error({k: v[p] for k, v in ours.items()},
                                      exact_outputs(system, schedule, grid, patient=p)) \
                <= RTOL


@pytest.mark.parametrize("model_id", ["domino", "fanta2015-otto2021", "simons2022"])
def test_the_matrix_exponential_path_is_exact_to_1e_9_into_the_far_tail(model_id: str) -> None:
    system = system_for(model_id, weight_for(model_id))
    ours = solve(system, SCHEDULE, TIMES, method="expm")
    assert max_relative_error({k: v[0] for k, v in ours.items()},
                              exact_outputs(system, SCHEDULE, TIMES)) <= RTOL


def test_per_patient_times_agree_with_the_exact_reference() -> None:
    system = system_for("fanta2015-otto2021", 70.0, n=3, seed=2)
    own = np.stack([TIMES, TIMES[::-1], np.roll(TIMES, 7)])
    ours = solve(system, SCHEDULE, own, method="auto")
    for p in range(3):
        exact = exact_outputs(system, SCHEDULE, own[p], patient=p)
        assert max_relative_error({k: v[p] for k, v in ours.items()}, exact) <= RTOL


def test_unsorted_and_repeated_times_give_each_its_own_value() -> None:
    system = system_for("domino", 70.0, n=80, seed=1)
    rng = np.random.default_rng(4)
    times = rng.permutation(np.concatenate([GRID, GRID[:50]]))
    ours = solve(system, SCHEDULE, times, method="auto")
    ordered = solve(system, SCHEDULE, np.sort(times), method="auto")
    back = np.argsort(np.argsort(times, kind="stable"), kind="stable")
    for name in ours:
        assert np.array_equal(ours[name], ordered[name][:, back])


def test_the_defective_delay_chain_is_detected_and_solved_by_matrix_exponentials() -> None:
    # Simons 2022: two transit compartments with the same rate make A defective.
    for vectorised in (True, False):
        system = system_for("simons2022", 70.0, n=50, seed=1)
        rows = np.stack(list(system.outputs.values()), axis=1)
        mf = modal_form(system.A, system.b, rows, vectorised=vectorised)
        assert not mf.ok.any()
    fanta = system_for("fanta2015-otto2021", 70.0, n=50, seed=1)
    rows = np.stack(list(fanta.outputs.values()), axis=1)
    assert modal_form(fanta.A, fanta.b, rows, vectorised=True).ok.all()


def test_a_patient_mix_of_modal_and_fallback_paths_is_exact() -> None:
    # Equal ke0 and a mammillary eigenvalue make one patient nearly defective.
    system = system_for("domino", 70.0, n=60, seed=None)
    lam = np.linalg.eigvals(system.A[0, :3, :3]).real
    A = system.A.copy()
    A[7, 3, 3] = lam[1]
    A[7, 3, 0] = -lam[1] / 4.41  # ke0 / V1 with ke0 = -lam
    mixed = engine.LinearSystem(A, system.b, system.outputs, system.states,
                                system.amount_states)
    rows = np.stack(list(mixed.outputs.values()), axis=1)
    assert not modal_form(mixed.A, mixed.b, rows, vectorised=True).ok[7]
    ours = solve(mixed, SCHEDULE, GRID, method="auto", vectorised=True)
    for p in (6, 7):
        assert max_relative_error({k: v[p] for k, v in ours.items()},
                                  exact_outputs(mixed, SCHEDULE, GRID, patient=p)) <= RTOL


def test_a_schedule_of_boluses_only_and_a_grid_past_every_event_are_exact() -> None:
    system = system_for("kamp2020", 70.0, n=64, seed=None)
    schedule = make_schedule([], [(0.0, 20.0), (45.5, 5.0)])
    times = np.linspace(50.0, 2000.0, 400)
    ours = solve(system, schedule, times, method="auto", vectorised=True)
    exact = exact_outputs(system, schedule, times)
    assert max_relative_error({k: v[3] for k, v in ours.items()}, exact) <= RTOL


@pytest.mark.parametrize("model_id", ["domino", "fanta2015-otto2021", "dahan2011-crps"])
def test_one_patient_at_unsorted_times_and_alone_in_its_batch_is_exact(model_id: str) -> None:
    # One patient: event states in Python floats and the single gather, whose infusion term
    # stops at the last time in an interval with a rate; here the times come in no order
    # (so that last time is not the last one) and each must still get its exact value.
    patient, regimen = patient_for(model_id), regimen_for(model_id)
    times = np.random.default_rng(8).permutation(GRID)
    res = simulate(model_id, patient, regimen, times)
    prep = prepare(model_id, patient, regimen)
    system, modal = typical_patient(prep.pk.id, patient.weight_kg,
                                    None if prep.ke0 is None else prep.ke0.per_min)
    assert max_relative_error(res.series(), exact_outputs(system, prep.schedule, times)) \
        <= RTOL
    # The one-patient event states are those of the batched expressions, to rounding.
    pair = engine.ModalForm(*(np.concatenate([a, a]) for a in (modal.lam, modal.beta,
                                                               modal.CV, modal.ok)), True)
    alone = engine.modal_solution(system, prep.schedule, modal=modal).z
    batched = engine._event_states(pair, prep.schedule)
    assert np.allclose(alone[0], batched[1], rtol=1e-14, atol=0)


@pytest.mark.parametrize("model_id", MODELS)
def test_one_matrix_by_left_and_right_eigenvectors_agrees_with_eig_and_inv(
        model_id: str) -> None:
    # One patient is decomposed by one dgeev call (left eigenvectors as V's inverse); a
    # batch by numpy's eig and inv. Each mode's product CV beta does not depend on how the
    # eigenvectors are scaled, so the two must give it to rounding, and the same verdict.
    system = system_for(model_id, weight_for(model_id))
    rows = np.stack(list(system.outputs.values()), axis=1)
    one = modal_form(system.A, system.b, rows)
    batch = modal_form(system.A, system.b, rows, vectorised=False)
    assert one.ok[0] == batch.ok[0] == (model_id != "simons2022")
    if one.ok[0]:
        order_one, order_batch = np.argsort(one.lam[0]), np.argsort(batch.lam[0])
        assert np.allclose(one.lam[0, order_one], batch.lam[0, order_batch], rtol=1e-13,
                           atol=0)
        terms_one = (one.CV * one.beta[:, None, :])[0][:, order_one]
        terms_batch = (batch.CV * batch.beta[:, None, :])[0][:, order_batch]
        assert np.allclose(terms_one, terms_batch, rtol=0,
                           atol=1e-12 * np.abs(terms_batch).max())


def test_one_matrix_with_a_repeated_eigenvalue_still_gives_the_exact_bolus_response() -> None:
    # A diagonalisable matrix with a double eigenvalue: LAPACK's left and right bases of its
    # eigenspace need not be dual, so the scaled left eigenvectors are not V's inverse there
    # (checked before they are used). Whatever path serves it, a patient the modal form
    # accepts must get exp(A t) b, here from scipy's matrix exponential.
    from scipy.linalg import expm

    rng = np.random.default_rng(20261203)
    accepted = 0
    for _ in range(40):
        S = rng.normal(size=(4, 4))
        A = S @ np.diag([-1.0, -1.0, -2.0, -0.5]) @ np.linalg.inv(S)
        b = rng.uniform(0.1, 1.0, size=4)  # every mode excited
        modal = modal_form(A[None], b[None], np.eye(4)[None])
        if not modal.ok[0]:
            continue
        accepted += 1
        for t in (0.5, 3.0):
            exact = expm(A * t) @ b
            ours = (modal.CV[0] * np.exp(modal.lam[0] * t)) @ modal.beta[0]
            assert np.allclose(ours, exact, rtol=0, atol=1e-9 * np.abs(exact).max())
    assert accepted >= 20  # most such matrices are well conditioned: the check is exercised


def test_one_matrix_with_complex_eigenvalues_goes_to_the_checked_lapack_path() -> None:
    rotating = np.array([[[-1.0, 2.0], [-2.0, -1.0]]])
    eig = eigen.eigen_decomposition(rotating)
    assert eig.Vinv is None
    assert not eig.real[0]
