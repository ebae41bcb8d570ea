"""Outcome statistics on small cohorts computed by hand (issue 8)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

from ketamine_clinic.clinical.outcomes import (
    FollowUp,
    SeriesOutcome,
    adverse_event_rate,
    default_responder_thresholds,
    immediate_response,
    kaplan_meier,
    mean_pain_change,
    opioid_change,
    outcome_report,
    percent_reduction,
    proportion,
    relief_duration,
    relief_survival,
    responder_rates,
    responder_thresholds,
)
from ketamine_clinic.errors import UsageError

Z95 = 1.959963984540054  # standard normal 97.5th percentile (statistical tables)
T95_DF1 = 12.706204736174698  # Student t 97.5th percentile, 1 degree of freedom (tables)
T95_DF2 = 4.302652729749464  # Student t 97.5th percentile, 2 degrees of freedom (tables)


def series(
    sid: str, group: str, baseline: float, pains: dict[float, float], **kw: object
) -> SeriesOutcome:
    return SeriesOutcome(
        series_id=sid,
        patient_id=kw.pop("patient", sid),  # type: ignore[arg-type]
        diagnosis_group=group,
        protocol=kw.pop("protocol", "clinic-standard"),  # type: ignore[arg-type]
        baseline_pain=baseline,
        follow_ups=tuple(FollowUp(d, p) for d, p in pains.items()),
        **kw,  # type: ignore[arg-type]
    )


# Hand-worked cohort: responder status at day 0 and relief with response 30%, loss < 30%.
S1 = series(
    "s1",
    "crps",
    8,
    {0: 3, 7: 4, 14: 6},
    sessions=5,
    adverse_events=("nausea",),
    mme_before=60,
    mme_after=30,
)  # 62.5%, 50%, 25% -> lost on day 14
S2 = series(
    "s2",
    "crps",
    6,
    {0: 4, 7: 5},
    sessions=5,
    adverse_events=("nausea", "hypertension"),
    mme_before=40,
    mme_after=40,
)
# 33.3% then 16.7% -> lost on day 7
S3 = series(
    "s3",
    "other",
    10,
    {0: 5, 7: 5, 14: 6},
    sessions=4,
    last_contact_day=20,
    protocol="schwartzman-2009",
)  # 50%, 50%, 40% -> censored at day 20
S4 = series("s4", "other", 5, {0: 4}, sessions=3)  # 20%: no relief
S5 = series("s5", "other", 0, {0: 0}, sessions=1)  # baseline 0: no percent reduction
COHORT = [S1, S2, S3, S4, S5]


def test_the_default_responder_thresholds_are_immpacts_30_and_50_percent() -> None:
    th = default_responder_thresholds()
    assert th.percents == (30, 50)
    assert "Dworkin2008" in th.source


def test_percent_reduction_is_exact_and_refuses_a_zero_baseline() -> None:
    assert percent_reduction(7, 4.9) == 30  # 2.1 / 7 exactly; floats give 29.999...
    assert percent_reduction(6, 8) == Fraction(-100, 3)
    with pytest.raises(UsageError, match="baseline of 0"):
        percent_reduction(0, 0)
    with pytest.raises(UsageError, match="0–10"):
        percent_reduction(11, 3)


@pytest.mark.parametrize(
    ("before", "after", "band"),
    [
        (8, 4, "substantial"),
        (10, 7, "moderately important"),
        (10, 8, "minimally important"),
        (10, 9.5, "none"),
        (4, 6, "none"),
    ],
)
def test_immediate_response_names_the_immpact_band(before: float, after: float, band: str) -> None:
    r = immediate_response(before, after)
    assert r.band == band
    assert r.change == Fraction(after) - before


def test_responders_at_30_and_50_percent_from_the_series_baseline() -> None:
    rates = responder_rates(COHORT)
    assert (rates.by_threshold["30"].k, rates.by_threshold["30"].n) == (3, 4)
    assert (rates.by_threshold["50"].k, rates.by_threshold["50"].n) == (2, 4)
    assert rates.excluded == {"baseline pain 0": 1}


def test_responders_on_a_later_day_leave_out_series_without_that_visit() -> None:
    rates = responder_rates(COHORT, day=7)
    assert (rates.by_threshold["50"].k, rates.by_threshold["50"].n) == (2, 3)
    assert rates.excluded == {"no score on that day": 2}


def test_a_protocol_may_set_its_own_responder_threshold() -> None:
    th = responder_thresholds([25], "protocol X")
    assert responder_rates(COHORT, thresholds=th).by_threshold["25"].k == 3
    with pytest.raises(UsageError):
        responder_thresholds([0], "bad")


def test_the_wilson_interval_matches_the_formula() -> None:
    k, n = 3, 4
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / denom
    got = proportion(k, n)
    assert got.low == pytest.approx(centre - half, abs=1e-9)
    assert got.high == pytest.approx(centre + half, abs=1e-9)


def test_relief_is_lost_at_the_first_visit_below_the_loss_threshold() -> None:
    durations = {
        s.series_id: relief_duration(s, response_percent=30, loss_percent=30) for s in COHORT
    }
    assert (durations["s1"].days, durations["s1"].lost) == (14, True)
    assert (durations["s2"].days, durations["s2"].lost) == (7, True)
    assert (durations["s3"].days, durations["s3"].lost) == (20, False)
    assert not durations["s4"].had_relief
    assert not durations["s5"].had_relief


def test_a_lower_loss_threshold_keeps_relief_longer() -> None:
    d = relief_duration(S1, response_percent=50, loss_percent=20)
    assert (d.days, d.lost) == (14, False)  # 25% on day 14 is still above 20%
    with pytest.raises(UsageError):
        relief_duration(S1, response_percent=30, loss_percent=50)


# Durations with ties (two at day 3, two at day 8) and censoring at tied times.
TIMES = [2, 3, 3, 5, 6, 8, 8, 9]
LOST = [True, True, False, True, True, False, True, True]


def hand_kaplan_meier() -> list[tuple[float, float, float, float]]:
    """(day, S, lower, upper): product-limit with Greenwood variance and a log(-log)
    band, written out independently of the library."""
    out = []
    s, greenwood = 1.0, 0.0
    for day in sorted(set(TIMES)):
        at_risk = sum(t >= day for t in TIMES)
        d = sum(t == day and e for t, e in zip(TIMES, LOST, strict=True))
        if d:
            s *= (at_risk - d) / at_risk
            if at_risk > d:
                greenwood += d / (at_risk * (at_risk - d))
        if 0 < s < 1:
            c = Z95 * math.sqrt(greenwood) / math.log(s)
            lower, upper = s ** math.exp(-c), s ** math.exp(c)
        else:
            lower = upper = s
        out.append((day, s, lower, upper))
    return out


def test_kaplan_meier_matches_a_hand_computation_with_ties_and_censoring() -> None:
    km = kaplan_meier(TIMES, LOST)
    assert [r.day for r in km.table] == [2, 3, 5, 6, 8, 9]
    # 7/8, ×6/7, ×4/5, ×3/4, ×2/3, ×0/1 (censored at 3 and 8 leave the risk set after).
    assert [r.survival for r in km.table] == pytest.approx([0.875, 0.75, 0.6, 0.45, 0.3, 0.0])
    hand = hand_kaplan_meier()
    for row, (day, s, lower, upper) in zip(km.table, hand, strict=True):
        assert row.day == day
        assert row.survival == pytest.approx(s, abs=1e-12)
        assert row.ci_low == pytest.approx(lower, abs=1e-6)
        assert row.ci_high == pytest.approx(upper, abs=1e-6)
    assert [(r.at_risk, r.events, r.censored) for r in km.table] == [
        (8, 1, 0),
        (7, 1, 1),
        (5, 1, 0),
        (4, 1, 0),
        (3, 1, 1),
        (1, 1, 0),
    ]
    # Median: first day S <= 0.5. Its CI: first days where the band's ends reach 0.5.
    assert km.median_days == 6
    assert km.median_ci_low == next(d for d, _, lo, _ in hand if lo <= 0.5)
    assert km.median_ci_high == next(d for d, _, _, hi in hand if hi <= 0.5)
    assert (km.events, km.censored) == (6, 2)


def test_a_median_that_is_not_reached_is_none() -> None:
    km = kaplan_meier([5, 10, 12], [True, False, False])
    assert km.median_days is None
    assert km.survival_at(6) == pytest.approx(2 / 3)


def test_relief_survival_is_grouped_by_diagnosis_and_by_protocol() -> None:
    by_dx = relief_survival(COHORT, response_percent=30, loss_percent=30, by="diagnosis_group")
    assert set(by_dx.curves) == {"crps", "other"}
    crps = by_dx.curves["crps"]
    assert (crps.n, crps.events) == (2, 2)
    assert crps.median_days == 7  # S = 1/2 after day 7
    assert by_dx.without_relief == {"other": 2}
    by_protocol = relief_survival(COHORT, response_percent=30, loss_percent=30, by="protocol")
    assert by_protocol.curves["schwartzman-2009"].censored == 1
    with pytest.raises(UsageError):
        relief_survival(COHORT, response_percent=30, loss_percent=30, by="site")


def test_mean_pain_change_by_diagnosis_group() -> None:
    means = mean_pain_change(COHORT)
    crps, other = means["crps"], means["other"]
    assert crps.mean == pytest.approx(-3.5)  # (-5, -2)
    assert crps.sd == pytest.approx(math.sqrt(4.5))
    assert crps.ci_low == pytest.approx(-3.5 - T95_DF1 * math.sqrt(4.5) / math.sqrt(2))
    assert other.mean == pytest.approx(-2.0)  # (-5, -1, 0)
    assert other.sd == pytest.approx(math.sqrt(7))
    assert other.ci_high == pytest.approx(-2 + T95_DF2 * math.sqrt(7) / math.sqrt(3))


def test_adverse_events_per_session() -> None:
    ae = adverse_event_rate(COHORT)
    assert (ae.sessions, ae.events) == (18, 3)
    assert ae.per_session == pytest.approx(3 / 18)
    assert ae.by_type == {"hypertension": 1, "nausea": 2}


def test_opioid_use_change_in_morphine_equivalents() -> None:
    op = opioid_change(COHORT)
    assert op.n == 2
    assert op.change.mean == pytest.approx(-15)  # (-30, 0)
    assert (op.reduced.k, op.reduced.n) == (1, 2)
    assert (op.mean_before_mme, op.mean_after_mme) == (50, 35)


def test_series_records_refuse_unordered_visits_and_impossible_pain() -> None:
    with pytest.raises(UsageError, match="in order"):
        series("x", "crps", 8, {7: 4, 0: 3})
    with pytest.raises(UsageError, match="0–10"):
        series("x", "crps", 8, {0: 12})
    with pytest.raises(UsageError, match="before the last follow-up"):
        series("x", "crps", 8, {0: 3, 7: 3}, last_contact_day=5)


def test_the_full_report_is_json_with_its_parameters() -> None:
    report = outcome_report(COHORT, loss_percent=30)
    out = json.loads(json.dumps(report.to_dict()))
    assert out["n_series"] == 5
    assert out["parameters"]["thresholds"]["percents"] == [30.0, 50.0]
    assert out["relief_by_diagnosis"]["curves"]["crps"]["median_days"] == 7
    assert len(out["relief_by_protocol"]["inputs"]["durations"]) == 5


def test_kaplan_meier_agrees_with_lifelines_on_a_large_censored_sample() -> None:
    import numpy as np
    from lifelines import KaplanMeierFitter  # type: ignore[import-untyped]
    from lifelines.utils import median_survival_times  # type: ignore[import-untyped]

    rng = np.random.default_rng(7)
    days = [float(d) for d in rng.integers(0, 120, 3000) / 2]  # many ties, some at day 0
    lost = [bool(x) for x in rng.random(3000) < 0.7]
    km = kaplan_meier(days, lost)
    ref = KaplanMeierFitter(alpha=0.05).fit(days, event_observed=lost)
    table = ref.event_table
    times = [t for t in table.index if t > 0 or table.loc[t, "removed"] > 0]
    assert [r.day for r in km.table] == times
    assert [r.at_risk for r in km.table] == [int(table.loc[t, "at_risk"]) for t in times]
    assert [r.events for r in km.table] == [int(table.loc[t, "observed"]) for t in times]
    surv = ref.survival_function_.iloc[:, 0]
    band = ref.confidence_interval_
    for row in km.table:
        assert row.survival == pytest.approx(float(surv.loc[row.day]), rel=1e-12)
        assert row.ci_low == pytest.approx(float(band.loc[row.day].iloc[0]), rel=1e-9)
        assert row.ci_high == pytest.approx(float(band.loc[row.day].iloc[1]), rel=1e-9)
    ci = median_survival_times(band)
    assert (km.median_days, km.median_ci_low, km.median_ci_high) == (
        ref.median_survival_time_, ci.iloc[0, 0], ci.iloc[0, 1])
