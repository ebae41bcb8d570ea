"""The exact solution against an independent integrator, for every model, both methods."""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_clinic.pk.compartments import build_system
from ketamine_clinic.pk.engine import make_schedule, solve
from ketamine_clinic.pk.parameter_sets import PKModel, get_model, individual_parameters
from ketamine_clinic.pk.population import draw_eta
from ketamine_clinic.pk.simulate import resolve_models
from tests.pk.reference_ode import solve_ode

MODELS = ("domino", "kamp2020", "clements", "hijazi2003", "herd2007", "elkomy2015",
          "sherwin2015", "fanta2015-otto2021", "simons2022", "dahan2011-crps")
# A titrated infusion with a bolus, a pause and a restart; output times include event
# times, points just after events, and a long tail.
SCHEDULE = make_schedule(
    [(0.0, 30.0, 1.0), (30.0, 90.0, 1.5), (90.0, 200.0, 2.0), (215.0, 240.0, 0.5)],
    [(0.0, 15.0), (100.0, 10.0)])
TIMES = np.unique(np.concatenate([np.arange(0.0, 961.0, 7.0), [0.001, 30.0, 90.0, 100.0,
                                                                  100.5, 215.0, 240.0, 5000.0]]))
RTOL = 1e-9


def system_for(model_id: str, weight_kg: float, n: int = 1, seed: int | None = None):  # type: ignore[no-untyped-def]
    pk, pd = resolve_models(model_id)
    ke0 = pd.ke0 if pd is not None else pk.ke0
    eta = None
    if seed is not None and pk.iiv is not None:
        eta = draw_eta(pk.iiv, n, np.random.default_rng(seed))
    params = individual_parameters(pk, np.full(n, weight_kg), eta)
    return build_system(pk, params, None if ke0 is None else np.full(n, ke0.per_min))


def weight_for(model_id: str) -> float:
    pk, _ = resolve_models(model_id)
    return 70.0 if pk.validity.weight_kg and pk.validity.weight_kg.contains(70.0) else 25.0


def assert_close(got: np.ndarray, ref: np.ndarray) -> None:
    """Relative agreement to 1e-9 wherever the concentration is above 1e-5 of its peak;
    below that (e.g. 80 h after a 4-h infusion, 1e-12 of the peak) any double-precision
    method is limited by absolute rounding, so there agreement is to 1e-12 of the peak."""
    peak = np.abs(ref).max()
    mask = np.abs(ref) > 1e-5 * peak
    rel = np.abs(got[mask] - ref[mask]) / np.abs(ref[mask])
    assert rel.max() < RTOL, f"max relative difference {rel.max():.2e}"
    assert np.all(np.abs(got[~mask] - ref[~mask]) <= 1e-12 * peak)


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("method", ["expm", "auto"])
def test_exact_solution_agrees_with_solve_ivp_to_1e_9(model_id: str, method: str) -> None:
    system = system_for(model_id, weight_for(model_id))
    ours = solve(system, SCHEDULE, TIMES, method=method)
    ref = solve_ode(system, SCHEDULE, TIMES)
    assert set(ours) == set(ref)
    for name in ref:
        assert_close(ours[name][0], ref[name])


@pytest.mark.parametrize("model_id", ["fanta2015-otto2021", "simons2022", "herd2007"])
def test_population_path_agrees_with_solve_ivp_for_sampled_patients(model_id: str) -> None:
    system = system_for(model_id, weight_for(model_id), n=6, seed=3)
    ours = solve(system, SCHEDULE, TIMES, method="auto")
    for p in (0, 5):
        ref = solve_ode(system, SCHEDULE, TIMES, patient=p)
        for name in ref:
            assert_close(ours[name][p], ref[name])


def test_modal_and_matrix_exponential_paths_agree_for_many_patients() -> None:
    system = system_for("fanta2015-otto2021", 70.0, n=300, seed=11)
    a = solve(system, SCHEDULE, TIMES, method="auto")
    b = solve(system, SCHEDULE, TIMES, method="expm")
    for name in a:
        for p in range(a[name].shape[0]):
            assert_close(a[name][p], b[name][p])


def test_per_patient_times_give_the_same_values_as_shared_times() -> None:
    system = system_for("domino", 70.0, n=3)
    shared = solve(system, SCHEDULE, TIMES, method="auto")
    own = solve(system, SCHEDULE, np.tile(TIMES, (3, 1)), method="auto")
    expm_own = solve(system, SCHEDULE, np.tile(TIMES, (3, 1)), method="expm")
    for name in shared:
        assert np.allclose(shared[name], own[name], rtol=1e-12, atol=1e-12)
        assert np.allclose(shared[name], expm_own[name], rtol=1e-10, atol=1e-12)


def test_a_bolus_counts_at_its_own_time() -> None:
    system = system_for("domino", 70.0)
    sched = make_schedule([], [(10.0, 44.1)])
    y = solve(system, sched, np.array([9.999999, 10.0]), method="expm")["plasma"][0]
    # 44.1 mg into V1 = 4.41 L is 10 mg/L = 10000 ng/mL.
    assert y[0] == 0.0
    assert y[1] == pytest.approx(10000.0, rel=1e-12)


def test_pk_model_lookup_returns_the_pk_model_of_the_pd_model() -> None:
    pk, pd = resolve_models("dahan2011-crps")
    assert isinstance(pk, PKModel)
    assert pd is not None
    assert pk is get_model("fanta2015-otto2021")
