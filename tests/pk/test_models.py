"""Published reference values for the model data and the derived rate constants.

Sources: ../shared/domain/pk-models.md (stanpumpR test vector, derived values, t_peak checks)
and the abstracts it quotes. Tolerances are stated per check.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.compartments import build_system, metabolite_output_factor
from ketamine_clinic.pk.parameter_sets import (
    Parameter,
    PDModel,
    PKModel,
    catalogue,
    get_model,
    individual_parameters,
    model_ids,
    rate_constants,
)
from ketamine_clinic.pk.regimen import Regimen, Segment
from ketamine_clinic.pk.simulate import Patient, ke0_for_t_peak, simulate, t_peak_min

ISSUE_IDS = ("domino", "kamp2020", "clements", "hijazi2003", "herd2007", "elkomy2015",
             "sherwin2015", "fanta2015-otto2021", "simons2022", "dahan2011-crps")


def pk(model_id: str) -> PKModel:
    m = get_model(model_id)
    assert isinstance(m, PKModel)
    return m


def rates(model_id: str, weight_kg: float = 70.0):  # type: ignore[no-untyped-def]
    m = pk(model_id)
    return rate_constants(individual_parameters(m, weight_kg), m.structure)


def half_lives_min(model_id: str, weight_kg: float = 70.0) -> list[float]:
    m = pk(model_id)
    p = individual_parameters(m, np.array([weight_kg]))
    A = build_system(m, p).A[0]
    n = 3 if m.n_compartments == 3 else 2
    lam = np.linalg.eigvals(A[:n, :n]).real
    return sorted(math.log(2) / -lam)


def test_every_model_id_of_the_issue_is_in_the_catalogue() -> None:
    assert set(ISSUE_IDS) == set(model_ids())


def test_every_parameter_has_a_unit_and_a_known_reference() -> None:
    refs = catalogue().references
    for m in catalogue().pk.values():
        assert m.source in refs
        for p in m.parameters.values():
            assert p.source in refs, (m.id, p.name)
            assert p.same_as or p.unit, (m.id, p.name)


def test_the_derivation_reproduces_the_stanpumpr_domino_test_vector() -> None:
    # stanpumpR's test uses the rounded constants .438/.592/.590/.247/.0146 at 70 kg.
    m = pk("domino")
    rounded = {"k10": 0.438, "k12": 0.592, "k13": 0.590, "k21": 0.247, "k31": 0.0146}
    params = dict(m.parameters)
    for k, v in rounded.items():
        params[k] = replace(params[k], value=v)
    stan = replace(m, parameters=MappingProxyType(params))
    r = rate_constants(individual_parameters(stan, 70.0), stan.structure)
    expected = {"V1": 4.41, "V2": 10.56972, "V3": 178.2123, "CL": 1.93158, "Q2": 2.61072,
                "Q3": 2.6019}
    for name, value in expected.items():
        assert float(getattr(r, name)) == pytest.approx(value, rel=1e-6), name


def test_the_unrounded_domino_set_is_within_a_tenth_of_a_percent_of_the_vector() -> None:
    r = rates("domino")
    for name, value in {"V1": 4.41, "V2": 10.56972, "V3": 178.2123, "CL": 1.93158,
                        "Q2": 2.61072, "Q3": 2.6019}.items():
        assert float(getattr(r, name)) == pytest.approx(value, rel=1e-3), name


def test_domino_half_lives_match_the_published_derivation() -> None:
    # pk-models.md 3.1: half-lives 0.40, 4.6 and 115 min (2 significant figures).
    assert half_lives_min("domino") == pytest.approx([0.40, 4.6, 115], rel=0.02)


def test_kamp_micro_constants_and_half_lives_match_the_published_derivation() -> None:
    r = rates("kamp2020")
    got = [float(x) for x in (r.k10, r.k12, r.k13, r.k21, r.k31)]
    assert got == pytest.approx([0.0560, 0.1073, 0.0527, 0.0479, 0.00839], rel=2e-3)
    assert half_lives_min("kamp2020") == pytest.approx([2.8, 28, 184], rel=0.02)
    assert float(r.V1 + r.V2 + r.V3) == pytest.approx(238, abs=0.5)  # Vss


def test_kamp_clearances_scale_allometrically_and_volumes_linearly() -> None:
    r = rates("kamp2020", 140.0)
    assert float(r.V1) == pytest.approx(50.0)
    assert float(r.CL) == pytest.approx(84.0 / 60 * 2**0.75)


def test_clements_at_70_kg_matches_the_derived_volumes_and_clearance() -> None:
    r = rates("clements")
    assert float(r.V1) == pytest.approx(122.7, abs=0.05)
    assert float(r.V2) == pytest.approx(166.5, abs=0.1)
    assert float(r.CL) * 60 == pytest.approx(80.2, abs=0.05)


def test_clements_predicts_the_slow_rise_quoted_in_the_fact_sheet() -> None:
    # pk-models.md 3.3: 38 ng/mL at 5 min of 60 mg/h.
    res = simulate("clements", Patient(70), Regimen((Segment(0, 60, 60),)), [5.0])
    assert float(res.plasma_ng_per_ml[0]) == pytest.approx(38, abs=0.5)


def test_hijazi_matches_its_abstract_clearance_and_terminal_half_life() -> None:
    r = rates("hijazi2003")
    assert float(r.CL) / 70 * 1000 == pytest.approx(36.0, abs=0.05)  # mL/min/kg
    assert half_lives_min("hijazi2003")[-1] == pytest.approx(297, abs=1)


def test_paediatric_sets_scale_from_their_70_kg_values() -> None:
    for mid, (v1, cl_l_per_h) in {"herd2007": (38.7, 90.0), "elkomy2015": (57.3, 60.6),
                                  "sherwin2015": (20.5, 87.9)}.items():
        r = rates(mid, 35.0)
        assert float(r.V1) == pytest.approx(v1 / 2), mid
        assert float(r.CL) * 60 == pytest.approx(cl_l_per_h * 0.5**0.75), mid


def test_herd_ke0_comes_from_the_11_second_equilibration_half_time() -> None:
    ke0 = pk("herd2007").ke0
    assert ke0 is not None
    assert ke0.per_min == pytest.approx(math.log(2) / (11 / 60))


def test_dahan_crps_model_has_the_published_slow_effect_site_and_c50() -> None:
    d = get_model("dahan2011-crps")
    assert isinstance(d, PDModel)
    assert d.ke0.per_min == pytest.approx(4.42e-5, rel=2e-3)  # t1/2 10.9 days
    assert d.c50_ng_per_ml == 10.5
    assert d.research_model


def test_fanta_otto_scales_only_central_volume_and_clearance_with_weight() -> None:
    m = pk("fanta2015-otto2021")
    p = individual_parameters(m, 35.0)
    assert float(p["V1"]) == pytest.approx(66.5)
    assert float(p["V2"]) == pytest.approx(187.0)
    assert float(p["Q3"]) == pytest.approx(157.0 / 60)
    assert float(p["CLM"]) == pytest.approx(57.7 / 60 * 0.5**0.75)


def test_simons_shares_the_central_volume_with_norketamine_including_its_eta() -> None:
    m = pk("simons2022")
    p = individual_parameters(m, np.array([70.0, 70.0]), {"V1": np.array([0.0, 0.3])})
    assert np.array_equal(p["VM1"], p["V1"])
    assert float(p["V1"][1]) == pytest.approx(11.6 * math.exp(0.3))


def test_molar_models_convert_norketamine_with_the_molecular_weights() -> None:
    assert metabolite_output_factor(pk("simons2022")) == pytest.approx(223.70 / 237.73)
    assert metabolite_output_factor(pk("fanta2015-otto2021")) == 1.0


@pytest.mark.parametrize(("model_id", "ke0", "expected"), [
    ("domino", None, 1.61), ("kamp2020", None, 1.61), ("kamp2020", 0.5, 3.0)])
def test_time_to_peak_effect_matches_the_published_checks(model_id: str, ke0: float | None,
                                                          expected: float) -> None:
    # pk-models.md section 5 (instantaneous bolus, 70 kg), two decimals.
    assert t_peak_min(model_id, 70.0, ke0) == pytest.approx(expected, abs=0.01 if ke0 is None
                                                            else 0.05)


def test_transferring_domino_t_peak_to_kamp_recovers_simtiva_ke0() -> None:
    target = t_peak_min("domino", 70.0)
    assert ke0_for_t_peak("kamp2020", 70.0, target) == pytest.approx(1.39, abs=0.01)


@pytest.mark.parametrize("model_id", [m for m in ISSUE_IDS if m != "dahan2011-crps"])
def test_plasma_reaches_rate_over_clearance_at_steady_state(model_id: str) -> None:
    m = pk(model_id)
    weight = 70.0 if m.validity.weight_kg.contains(70.0) else 30.0  # type: ignore[union-attr]
    age = None if weight == 70 else 8.0
    r = rate_constants(individual_parameters(m, weight), m.structure)
    slowest = max(half_lives_min(model_id, weight))
    end = 60 * slowest
    drug = "esketamine" if m.compound == "S-ketamine" else "racemic"
    res = simulate(model_id, Patient(weight, age), Regimen((Segment(0, end, 60),), (), drug),
                   [end])
    rate_mg_per_min = 1.0
    assert float(res.plasma_ng_per_ml[0]) == pytest.approx(
        rate_mg_per_min / float(r.CL) * 1000, rel=1e-6)
    if m.metabolite is not None:
        p = individual_parameters(m, weight)
        fm = float(p["FM"])
        expected = fm * rate_mg_per_min / float(p["CLM"]) * 1000 * metabolite_output_factor(m)
        assert res.norketamine_ng_per_ml is not None
        assert float(res.norketamine_ng_per_ml[0]) == pytest.approx(expected, rel=1e-6)


def test_unknown_model_is_refused_naming_the_field() -> None:
    with pytest.raises(UsageError) as err:
        get_model("propofol")
    assert err.value.field == "model"


def test_every_pk_model_states_compound_sampling_and_validity() -> None:
    for m in catalogue().pk.values():
        assert m.compound in ("racemic ketamine", "S-ketamine")
        assert m.sampling
        assert m.validity.weight_kg is not None
        assert m.validity.source
    assert all(isinstance(p, Parameter) for m in catalogue().pk.values()
               for p in m.parameters.values())
