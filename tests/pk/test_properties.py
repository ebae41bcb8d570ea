"""Invariants of the exact solution, checked with hypothesis over random regimens."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ketamine_clinic.pk.compartments import build_system
from ketamine_clinic.pk.engine import Schedule, make_schedule, solve
from ketamine_clinic.pk.parameter_sets import individual_parameters
from ketamine_clinic.pk.simulate import resolve_models

MODELS = ("domino", "kamp2020", "clements", "hijazi2003", "herd2007", "elkomy2015",
          "sherwin2015", "fanta2015-otto2021", "simons2022", "dahan2011-crps")
TIMES = np.linspace(0.0, 900.0, 181)


@st.composite
def regimens(draw: st.DrawFn) -> tuple[list[tuple[float, float, float]],
                                       list[tuple[float, float]]]:
    """Up to 4 back-to-back or spaced segments [mg/min] and up to 2 boluses [mg]."""
    t = 0.0
    segments = []
    for _ in range(draw(st.integers(0, 4))):
        t += draw(st.floats(0.0, 60.0))
        length = draw(st.floats(1.0, 120.0))
        segments.append((t, t + length, draw(st.floats(0.0, 3.0))))
        t += length
    boluses = [(draw(st.floats(0.0, 300.0)), draw(st.floats(0.1, 50.0)))
               for _ in range(draw(st.integers(0 if segments else 1, 2)))]
    return segments, boluses


def system(model_id: str, *, sinks: bool = False):  # type: ignore[no-untyped-def]
    pk, pd = resolve_models(model_id)
    ke0 = pd.ke0 if pd is not None else pk.ke0
    weight = 70.0 if pk.validity.weight_kg and pk.validity.weight_kg.contains(70.0) else 25.0
    params = individual_parameters(pk, np.array([weight]))
    return build_system(pk, params, None if ke0 is None else np.array([ke0.per_min]),
                        sinks=sinks)


def given_mg(schedule: Schedule, t: np.ndarray) -> np.ndarray:
    """Drug given up to each time (boluses included at their own time) [mg]."""
    total = np.zeros_like(t)
    ends = np.append(schedule.event_min[1:], np.inf)
    for start, end, rate, bolus in zip(schedule.event_min, ends, schedule.rate_mg_per_min,
                                       schedule.bolus_mg, strict=True):
        total += rate * np.clip(t - start, 0.0, end - start) + bolus * (t >= start)
    return total


# Each example solves several ODE systems: these tests take fewer examples than the
# project's profile (tests/conftest.py), on these tests only.
PK_EXAMPLES = settings(max_examples=25)


@PK_EXAMPLES
@given(st.sampled_from(MODELS), regimens(), regimens())
def test_two_regimens_given_together_add_up(model_id: str, r1, r2) -> None:  # type: ignore[no-untyped-def]
    s = system(model_id)
    both = make_schedule(r1[0] + r2[0], r1[1] + r2[1])
    y12 = solve(s, both, TIMES, method="auto")
    y1 = solve(s, make_schedule(*r1), TIMES, method="auto")
    y2 = solve(s, make_schedule(*r2), TIMES, method="auto")
    for name in y12:
        scale = max(1.0, float(np.abs(y12[name]).max()))
        assert np.allclose(y12[name], y1[name] + y2[name], rtol=1e-9, atol=1e-10 * scale)


@PK_EXAMPLES
@given(st.sampled_from(MODELS), regimens())
def test_drug_in_the_body_plus_drug_eliminated_equals_drug_given(model_id: str, r) -> None:  # type: ignore[no-untyped-def]
    s = system(model_id, sinks=True)
    total_row = np.zeros_like(s.b)
    total_row[:, list(s.amount_states)] = 1.0
    s = replace(s, outputs={"total_mg": total_row})
    schedule = make_schedule(*r)
    y = solve(s, schedule, TIMES, method="expm")["total_mg"][0]
    assert np.allclose(y, given_mg(schedule, TIMES), rtol=1e-9, atol=1e-9)


@PK_EXAMPLES
@given(st.sampled_from(MODELS), regimens())
def test_concentrations_are_never_negative(model_id: str, r) -> None:  # type: ignore[no-untyped-def]
    s = system(model_id)
    y = solve(s, make_schedule(*r), TIMES, method="auto")
    for name, values in y.items():
        assert values.min() >= -1e-12 * max(1.0, float(values.max())), name


@PK_EXAMPLES
@given(st.sampled_from(MODELS), regimens())
# The smallest rate a float holds (found by hypothesis): every concentration is subnormal.
@example("domino", ([(0.0, 1.0, 5e-324)], []))
def test_plasma_concentration_falls_once_the_infusion_has_stopped(model_id: str, r) -> None:  # type: ignore[no-untyped-def]
    s = system(model_id)
    schedule = make_schedule(*r)
    after = schedule.last_input_min + np.linspace(0.01, 600.0, 200)
    y = solve(s, schedule, after, method="auto")["plasma"][0]
    # Or nothing was given that a float can hold: every value 0 or below the smallest normal
    # float (a subnormal number has too few digits left to fall at every step).
    assert np.all(np.diff(y) < 0) or np.all(y <= np.finfo(float).tiny)


@PK_EXAMPLES
@given(st.sampled_from(MODELS), regimens(), st.floats(0.1, 10.0))
def test_doubling_the_doses_doubles_the_concentrations(model_id: str, r, factor: float) -> None:  # type: ignore[no-untyped-def]
    s = system(model_id)
    scaled = ([(a, b, c * factor) for a, b, c in r[0]], [(t, mg * factor) for t, mg in r[1]])
    y = solve(s, make_schedule(*r), TIMES, method="auto")
    yk = solve(s, make_schedule(*scaled), TIMES, method="auto")
    for name in y:
        scale = max(1.0, float(np.abs(yk[name]).max()))
        assert np.allclose(yk[name], factor * y[name], rtol=1e-9, atol=1e-10 * scale)
