"""The synthetic cohort: reproducible, plausible, and its ground truth recoverable."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from ketamine_clinic.clinical.codes import lookup_diagnosis
from ketamine_clinic.clinical.monitoring import infusion_totals
from ketamine_clinic.clinical.outcomes import (
    relief_duration,
    relief_survival,
    responder_rates,
)
from ketamine_clinic.errors import UsageError
from ketamine_clinic.synth import CohortParams, generate_cohort, generate_patient, iter_cohort

SMALL = CohortParams.default(40, seed=7)


@pytest.fixture(scope="module")
def small() -> list:
    return generate_cohort(SMALL)


def test_the_same_seed_gives_the_same_cohort_and_another_seed_does_not(small: list) -> None:
    again = generate_cohort(CohortParams.default(40, seed=7))
    assert again == small
    other = generate_cohort(CohortParams.default(40, seed=8))
    assert other != small


def test_a_patient_does_not_depend_on_the_chunk_size(small: list) -> None:
    chunks = list(iter_cohort(SMALL, chunk_size=6))
    assert [c.first_index for c in chunks] == list(range(0, 40, 6))
    assert [r for c in chunks for r in c.patients] == small
    assert generate_patient(SMALL, 17) == small[17]
    assert sum(c.sessions for c in chunks) == sum(r.session_count for r in small)


def test_patients_are_adults_with_catalogued_diagnoses(small: list) -> None:
    for record in small:
        p = record.patient
        entry = lookup_diagnosis(p.diagnosis_system, p.diagnosis_code)
        assert entry.is_crps == (p.diagnosis_group == "crps")
        first_session = record.series[0].sessions[0].scheduled_start.date()
        age_years = (first_session - p.date_of_birth).days / 365.25
        assert 17.9 < age_years < 76
        assert 45 <= p.weight_kg <= 160
        assert p.given_name
        assert p.family_name


def test_sessions_have_a_valid_pump_history_and_vitals_every_15_minutes(small: list) -> None:
    for record in small:
        for series in record.series:
            for s in series.sessions:
                totals = infusion_totals(
                    s.rate_events,
                    weight_kg=s.weight_kg,
                    concentration_mg_per_ml=s.concentration_mg_per_ml,
                )
                # 4 h from start to stop, at 60 mg/h or more (titration only goes up).
                assert totals.infusing_time + totals.paused_time == timedelta(hours=4)
                assert totals.total_mg >= 60 * (totals.infusing_time / timedelta(hours=1))
                gaps = {b.at - a.at for a, b in zip(s.vitals, s.vitals[1:], strict=False)}
                assert gaps == {timedelta(minutes=15)}
                assert s.vitals[0].at < s.rate_events[0].at  # a pre-infusion baseline
                assert 0 <= s.pain_after <= s.pain_before <= 10


def test_follow_ups_are_on_the_scheduled_days_until_a_drop_out(small: list) -> None:
    schedule = [0, 1, 7, 14, 28, 56, 84]
    for record in small:
        for series in record.series:
            days = [f.day for f in series.follow_ups]
            assert days == schedule[: len(days)]
            assert series.dropped_out == (len(days) < len(schedule))
        # Nobody is treated again after being lost to follow-up.
        assert all(not s.dropped_out for s in record.series[:-1])


def test_the_observed_relief_matches_the_generators_truth(small: list) -> None:
    for record in small:
        for series in record.series:
            d = relief_duration(series.to_outcome(), response_percent=30, loss_percent=30)
            assert d.had_relief == series.truth.responder
            if not d.had_relief:
                continue
            visits = [f.day for f in series.follow_ups]
            later = [v for v in visits if v >= series.truth.relief_days]
            if later:
                assert (d.days, d.lost) == (later[0], True)
            else:
                assert (d.days, d.lost) == (visits[-1], False)


def test_unknown_parameter_sections_are_refused() -> None:
    with pytest.raises(UsageError):
        CohortParams.default(1, seed=1, dosing={})
    with pytest.raises(UsageError):
        list(iter_cohort(SMALL, chunk_size=0))


# One session per series keeps this cohort quick while giving ~4000 series.
BIG = CohortParams.default(
    4000,
    seed=2025,
    treatment={"series_per_patient": [1, 1], "sessions_per_series": [1, 1]},
)


@pytest.fixture(scope="module")
def big_outcomes() -> list:
    return [s.to_outcome() for r in generate_cohort(BIG) for s in r.series]


@pytest.mark.parametrize("group", ["crps", "other"])
def test_the_true_responder_rate_is_recovered(big_outcomes: list, group: str) -> None:
    p = BIG.response["responder_probability"][group]
    cohort = [s for s in big_outcomes if s.diagnosis_group == group]
    rates = responder_rates(cohort)
    n = rates.by_threshold["30"].n
    tolerance = 4 * math.sqrt(p * (1 - p) / n)  # four standard errors
    # Responders lose >= 50% and non-responders < 30%, so both rates estimate p.
    assert rates.by_threshold["30"].value == pytest.approx(p, abs=tolerance)
    assert rates.by_threshold["50"].value == pytest.approx(p, abs=tolerance)


@pytest.mark.parametrize("group", ["crps", "other"])
def test_the_true_relief_duration_is_recovered(big_outcomes: list, group: str) -> None:
    km = relief_survival(
        big_outcomes, response_percent=30, loss_percent=30, by="diagnosis_group"
    ).curves[group]
    assert km.censored > 0  # drop-outs are censored
    for day in (7, 14, 28, 56):
        truth = BIG.true_relief_survival(group, day)
        se = math.sqrt(truth * (1 - truth) / km.n)
        assert km.survival_at(day) == pytest.approx(truth, abs=5 * se + 0.01)
    # Relief is only seen lost at visits, so the observed median is the first visit day
    # whose true survival is at or below one half.
    visits = BIG.response["follow_up_days"]
    expected = next(v for v in visits if BIG.true_relief_survival(group, v) <= 0.5)
    assert km.median_days == expected
