"""Simulation API: validation, warnings, refusal, drug handling, crossing times, populations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.population import simulate_population
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.pk.simulate import Patient, simulate

TITRATION = Regimen((Segment(0, 30, 60), Segment(30, 120, 90), Segment(120, 240, 120)))
ADULT = Patient(70.0, age_years=45)
GRID = np.arange(0.0, 961.0)


def field_of(exc: pytest.ExceptionInfo[UsageError]) -> str:
    return exc.value.field


@pytest.mark.parametrize(("segments", "problem"), [
    ((Segment(-1, 10, 60),), "before time 0"),
    ((Segment(10, 5, 60),), "end after it starts"),
    ((Segment(0, 10, -60),), "negative rate"),
    ((Segment(0, 30, 60), Segment(20, 40, 60)), "overlap"),
    ((Segment(0, math.nan, 60),), "finite"),
])
def test_it_refuses_bad_segments_naming_the_segment(segments: tuple[Segment, ...],
                                                     problem: str) -> None:
    with pytest.raises(UsageError) as err:
        Regimen(segments)
    assert field_of(err) == "segment"
    assert problem in err.value.problem


def test_it_refuses_a_bolus_before_time_zero_and_an_empty_regimen() -> None:
    with pytest.raises(UsageError) as err:
        Regimen(boluses=(Bolus(-5, 10),))
    assert field_of(err) == "bolus"
    with pytest.raises(UsageError) as err:
        Regimen()
    assert field_of(err) == "segment"


def test_it_refuses_times_before_zero() -> None:
    with pytest.raises(UsageError) as err:
        simulate("domino", ADULT, TITRATION, [-1.0, 10.0])
    assert field_of(err) == "times_min"


def test_it_refuses_a_weight_outside_every_models_range() -> None:
    with pytest.raises(UsageError) as err:
        simulate("domino", Patient(200.0), TITRATION, [10.0])
    assert field_of(err) == "weight_kg"
    assert "every model" in err.value.problem


def test_a_paediatric_model_refuses_an_adult_and_warns_for_a_missing_age() -> None:
    with pytest.raises(UsageError) as err:
        simulate("herd2007", Patient(70.0, age_years=40), TITRATION, [10.0])
    assert field_of(err) == "age_years"
    res = simulate("herd2007", Patient(30.0), TITRATION, [10.0])
    assert any("age not given" in w for w in res.warnings)


def test_an_adult_outside_the_studied_range_gets_a_warning_in_the_result() -> None:
    res = simulate("simons2022", Patient(110.0, age_years=50), TITRATION, [10.0])
    assert any("weight 110 kg is outside" in w for w in res.warnings)
    assert any("age 50 years is outside" in w for w in res.warnings)
    assert res.to_dict()["warnings"] == list(res.warnings)


def test_a_racemic_dose_gives_an_s_ketamine_model_half_of_the_milligrams() -> None:
    rac = simulate("fanta2015-otto2021", ADULT, TITRATION, GRID)
    esk = simulate("fanta2015-otto2021", ADULT, Regimen(TITRATION.segments, drug="esketamine"),
                   GRID)
    assert np.allclose(rac.plasma_ng_per_ml, 0.5 * esk.plasma_ng_per_ml, rtol=1e-12)
    assert any("S-ketamine part (50%)" in w for w in rac.warnings)


def test_esketamine_is_refused_for_a_racemic_model() -> None:
    with pytest.raises(UsageError) as err:
        simulate("domino", ADULT, Regimen(TITRATION.segments, drug="esketamine"), [1.0])
    assert field_of(err) == "drug"


def test_models_without_ke0_have_no_effect_site_and_assumed_ke0_is_flagged() -> None:
    assert simulate("elkomy2015", Patient(20.0, 6), TITRATION, [1.0]).effect_site_ng_per_ml \
        is None
    res = simulate("clements", ADULT, TITRATION, [1.0])
    assert res.effect_site_ng_per_ml is not None
    assert any("assumption" in w for w in res.warnings)
    user = simulate("elkomy2015", Patient(20.0, 6), TITRATION, [1.0], ke0_per_min=0.5)
    assert user.model.ke0_status == "user-given"


def test_the_result_carries_its_inputs_model_version_and_references() -> None:
    res = simulate("kamp2020", ADULT, TITRATION, [60.0])
    d = res.to_dict()
    assert d["model"] == "kamp2020"
    assert d["model_info"]["version"]
    assert "Kamp2020" in d["model_info"]["references"]
    assert d["regimen"]["segments"][0]["rate_mg_per_h"] == 60
    assert d["patient"]["weight_kg"] == 70.0
    assert d["norketamine_ng_per_ml"] is None
    with pytest.raises(ValueError, match="read-only"):
        res.plasma_ng_per_ml[0] = 1.0


def test_the_crossing_time_is_where_the_exact_curve_meets_the_threshold() -> None:
    res = simulate("domino", ADULT, TITRATION, [0.0], threshold_ng_per_ml=100.0)
    t = res.threshold_crossing_min["plasma"]
    assert t > 240.0
    at = simulate("domino", ADULT, TITRATION, [t - 1e-6, t, t + 1e-6])
    assert at.plasma_ng_per_ml[0] > 100.0 > at.plasma_ng_per_ml[2]
    assert at.plasma_ng_per_ml[1] == pytest.approx(100.0, rel=1e-8)


def test_a_threshold_never_reached_after_the_infusion_crosses_at_its_end() -> None:
    res = simulate("domino", ADULT, TITRATION, [0.0], threshold_ng_per_ml=1e6)
    assert res.threshold_crossing_min["plasma"] == 240.0


def test_the_effect_site_peak_after_stopping_is_found_for_norketamine_too() -> None:
    res = simulate("fanta2015-otto2021", ADULT, TITRATION, [0.0], threshold_ng_per_ml=50.0)
    t = res.threshold_crossing_min["norketamine"]
    after = simulate("fanta2015-otto2021", ADULT, TITRATION, [t - 1e-3, t + 1e-3])
    assert after.norketamine_ng_per_ml is not None
    assert after.norketamine_ng_per_ml[0] > 50.0 > after.norketamine_ng_per_ml[1]


def test_dahan_crps_research_model_reports_a_slow_effect_and_is_labelled() -> None:
    regimen = Regimen((Segment(0, 100 * 60, 20),), drug="esketamine")
    res = simulate("dahan2011-crps", ADULT, regimen, [6000.0, 6000.0 + 10.9 * 1440])
    assert res.pd_effect is not None
    assert res.effect_site_ng_per_ml is not None
    assert 0.0 < res.pd_effect[0] < 1.0
    ce = res.effect_site_ng_per_ml
    assert res.pd_effect[0] == pytest.approx(ce[0] / (10.5 + ce[0]))
    assert any("research model" in w for w in res.warnings)


def test_rate_history_and_what_if_build_the_expected_segments() -> None:
    r = Regimen.from_rate_changes([(0, 60), (30, 90), (90, 0), (100, 60)], stop_min=240)
    assert r.segments == (Segment(0, 30, 60), Segment(30, 90, 90), Segment(100, 240, 60))
    alt = r.what_if(60, 120)
    assert alt.segments == (Segment(0, 30, 60), Segment(30, 60, 90), Segment(60, 240, 120))


def test_a_population_is_reproducible_and_its_median_is_near_the_typical_patient() -> None:
    a = simulate_population("fanta2015-otto2021", ADULT, TITRATION, GRID, n=2000, seed=7)
    b = simulate_population("fanta2015-otto2021", ADULT, TITRATION, GRID, n=2000, seed=7)
    c = simulate_population("fanta2015-otto2021", ADULT, TITRATION, GRID, n=2000, seed=8)
    assert np.array_equal(a.bands["plasma"], b.bands["plasma"])
    assert not np.array_equal(a.bands["plasma"], c.bands["plasma"])
    lo, med, hi = a.bands["plasma"][:, 240]
    assert lo < med < hi
    # Log-normal variability of V1/CL around the typical values: median within 5%.
    assert med == pytest.approx(a.typical.plasma_ng_per_ml[240], rel=0.05)
    assert a.iiv_label == "published (Otto2021)"


def test_population_with_zero_variance_equals_the_typical_patient() -> None:
    pop = simulate_population("domino", ADULT, TITRATION, GRID, n=5, seed=1,
                              omega2={"k10": 0.0}, keep_individuals=True)
    assert pop.individuals is not None
    assert np.allclose(pop.individuals["plasma"], pop.typical.plasma_ng_per_ml, rtol=1e-9)
    assert pop.iiv_label == "user-given"


def test_a_model_without_published_variability_needs_user_omegas() -> None:
    with pytest.raises(UsageError) as err:
        simulate_population("domino", ADULT, TITRATION, GRID, n=10, seed=1)
    assert field_of(err) == "omega2"
    with pytest.raises(UsageError) as err:
        simulate_population("domino", ADULT, TITRATION, GRID, n=10, seed=1,
                            omega2={"CLX": 0.1})
    assert field_of(err) == "omega2"


def test_population_crossing_percentiles_bracket_the_typical_crossing() -> None:
    pop = simulate_population("kamp2020", ADULT, TITRATION, GRID, n=500, seed=3,
                              omega2={"CL": 0.09, "V1": 0.1}, threshold_ng_per_ml=100.0)
    lo, med, hi = pop.crossing_percentiles_min["plasma"]
    assert lo < pop.typical.threshold_crossing_min["plasma"] < hi
    assert lo < med < hi
