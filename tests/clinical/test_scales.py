"""Sedation, dissociation and pain scales against the fact sheet (section 4.2-4.3)."""

from __future__ import annotations

import json

import pytest

from ketamine_clinic.clinical.scales import (
    cadss6_from_cadss,
    get_scale,
    scales,
    score,
    score_items,
    within_target,
)
from ketamine_clinic.errors import UsageError


@pytest.mark.parametrize(
    ("key", "low", "high", "source"),
    [
        ("moaas", 0, 5, "S34"),
        ("moaas_6", 0, 6, "S34"),
        ("rass", -5, 4, "S36"),
        ("ramsay", 1, 6, "S35"),
        ("pain_nrs", 0, 10, "S46"),
    ],
)
def test_each_single_answer_scale_has_its_published_range_and_source(
    key: str, low: int, high: int, source: str
) -> None:
    sc = get_scale(key)
    assert (sc.minimum, sc.maximum) == (low, high)
    assert sorted(lv.value for lv in sc.levels) == list(range(low, high + 1))
    assert sc.source == source


def test_cadss6_uses_items_1_2_6_7_15_22_of_the_23_item_scale() -> None:
    assert get_scale("cadss6").items == (1, 2, 6, 7, 15, 22)
    assert get_scale("cadss").items == tuple(range(1, 24))


def test_the_cadss_item_scoring_is_carried_as_unconfirmed() -> None:
    out = score_items("cadss6", dict.fromkeys((1, 2, 6, 7, 15, 22), 0)).to_dict()
    assert any("UNCONFIRMED" in note for note in out["unconfirmed"])


def test_the_nrs_carries_its_loinc_code() -> None:
    assert get_scale("pain_nrs").loinc == "72514-3"


def test_a_single_answer_is_scored_with_its_meaning() -> None:
    s = score("rass", -2)
    assert s.value == -2
    assert "brief awakening" in s.meaning.lower()
    assert json.loads(json.dumps(s.to_dict()))["version"] == "Sessler 2002"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("moaas", 6),
        ("ramsay", 0),
        ("pain_nrs", 11),
        ("pain_nrs", 4.5),
        ("rass", True),
        ("rass", "0"),
    ],
)
def test_it_refuses_a_value_that_is_not_a_level(key: str, value: object) -> None:
    with pytest.raises(UsageError):
        score(key, value)


def test_a_whole_float_from_a_client_is_accepted() -> None:
    assert score("pain_nrs", 7.0).value == 7


def test_cadss6_total_is_the_sum_of_its_six_items() -> None:
    answers = {1: 1, 2: 2, 6: 0, 7: 4, 15: 3, 22: 1}
    s = score_items("cadss6", answers)
    assert s.value == 11
    assert (s.scale.minimum, s.scale.maximum) == (0, 24)
    assert s.to_dict()["inputs"]["items"]["7"] == 4


def test_cadss6_is_extracted_from_a_full_cadss() -> None:
    full = {n: n % 5 for n in range(1, 24)}
    six = cadss6_from_cadss(full)
    assert six.value == 1 + 2 + 1 + 2 + 0 + 2  # items 1, 2, 6, 7, 15, 22 mod 5
    assert score_items("cadss", full).value == sum(n % 5 for n in range(1, 24))


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({1: 1, 2: 2, 6: 0, 7: 4, 15: 3}, "item 22 is not answered"),
        ({1: 1, 2: 2, 6: 0, 7: 4, 15: 3, 22: 5}, "outside 0–4"),
        ({1: 1, 2: 2, 3: 0, 6: 0, 7: 4, 15: 3, 22: 1}, "no item 3"),
    ],
)
def test_it_refuses_incomplete_or_out_of_range_item_answers(
    answers: dict[int, int], problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        score_items("cadss6", answers)


def test_it_refuses_an_unknown_scale_and_the_wrong_scoring_function() -> None:
    with pytest.raises(UsageError, match="unknown scale"):
        score("glasgow", 3)
    with pytest.raises(UsageError, match="use score_items"):
        score("cadss6", 3)
    with pytest.raises(UsageError, match="use score"):
        score_items("moaas", {1: 1})


def test_a_target_range_is_checked_inclusively_on_the_scale() -> None:
    assert within_target(score("moaas", 4), 3, 4)
    assert not within_target(score("moaas", 2), 3, 4)
    with pytest.raises(UsageError, match="not on the MOAA/S scale"):
        within_target(score("moaas", 4), 3, 7)


def test_every_scale_loads_with_a_source_and_levels_or_items() -> None:
    for sc in scales().values():
        assert sc.source
        assert sc.levels or sc.items
