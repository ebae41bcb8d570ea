"""The stock ledger's pure decisions (clinical/stock.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError

RULES = core.load_rules()
KEY = b"a test key"
VIAL = core.ContainerFacts("vial DEN-0001", Fraction(500), date(2027, 6, 30))


def test_the_rules_cite_only_their_own_sources() -> None:
    assert RULES.cited["loss"] in RULES.sources
    assert RULES.cited["policy"] == "clinic-policy"
    assert RULES.notice_business_days == 1
    assert RULES.form_106_calendar_days == 45


def test_the_rules_refuse_an_unknown_source() -> None:
    import tomllib
    from importlib import resources

    raw = tomllib.loads(resources.files("ketamine_clinic.reference")
                        .joinpath("controlled_substances.toml").read_text())
    raw["loss"]["source"] = "S999"
    with pytest.raises(UsageError, match="S999"):
        core.rules_from_mapping(raw)


def test_a_draw_moves_stock_from_the_vial_into_the_session() -> None:
    after = core.post(core.Balances(Fraction(500), Fraction(1500), Fraction(0)),
                      core.deltas(EntryKind.DRAW, Fraction(200)))
    assert after == core.Balances(Fraction(300), Fraction(1300), Fraction(200))


@pytest.mark.parametrize(("kind", "container", "custody"), [
    (EntryKind.RECEIVE, 1, 0), (EntryKind.ADMINISTER, 0, -1), (EntryKind.WASTE, 0, -1),
    (EntryKind.RETURN, 1, -1), (EntryKind.DESTROY, -1, 0), (EntryKind.LOSS, -1, 0),
    (EntryKind.COUNT, 0, 0), (EntryKind.TRANSFER_OUT, -1, 0), (EntryKind.TRANSFER_IN, 1, 0),
])
def test_each_kind_moves_ketamine_its_own_way(kind: EntryKind, container: int,
                                              custody: int) -> None:
    d = core.deltas(kind, Fraction(7))
    assert (d.container_mg, d.custody_mg) == (7 * container, 7 * custody)


def test_a_balance_never_goes_below_zero() -> None:
    with pytest.raises(UsageError, match="holds only 100 mg"):
        core.post(core.Balances(Fraction(100), Fraction(100)),
                  core.deltas(EntryKind.DRAW, Fraction(101)))
    with pytest.raises(UsageError, match="session holds only"):
        core.post(core.Balances(custody_mg=Fraction(10)),
                  core.deltas(EntryKind.WASTE, Fraction(11)))


def test_only_an_adjustment_takes_stock_away_by_direction() -> None:
    assert core.deltas(EntryKind.ADJUST, Fraction(5), direction=-1).container_mg == -5
    with pytest.raises(UsageError, match="direction"):
        core.deltas(EntryKind.DRAW, Fraction(5), direction=-1)


def test_a_correction_changes_only_the_difference() -> None:
    original = core.deltas(EntryKind.WASTE, Fraction(40))
    fixed = core.correction_effect(original, core.deltas(EntryKind.WASTE, Fraction(25)))
    assert fixed == core.Deltas(Fraction(0), Fraction(15))  # 15 mg back in custody


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from([EntryKind.DRAW, EntryKind.RETURN,
                                           EntryKind.RECEIVE, EntryKind.DESTROY]),
                          st.integers(min_value=1, max_value=600)), max_size=40))
def test_no_sequence_of_accepted_entries_leaves_a_negative_balance(
        moves: list[tuple[EntryKind, int]]) -> None:
    balances = core.Balances()
    for kind, amount in moves:
        try:
            balances = core.post(balances, core.deltas(kind, Fraction(amount)))
        except UsageError:
            continue
        assert balances.container_mg >= 0
        assert balances.custody_mg >= 0


def test_a_draw_from_an_expired_lot_is_refused() -> None:
    with pytest.raises(UsageError, match="expired on 2027-06-30"):
        core.check_draw(VIAL, Fraction(100), on=date(2027, 7, 1))
    core.check_draw(VIAL, Fraction(100), on=date(2027, 6, 30))  # usable through expiry


def test_a_draw_from_an_empty_vial_or_beyond_its_content_is_refused() -> None:
    empty = core.ContainerFacts("vial DEN-0002", Fraction(0), date(2027, 6, 30))
    with pytest.raises(UsageError, match="empty"):
        core.check_draw(empty, Fraction(1), on=date(2027, 1, 1))
    with pytest.raises(UsageError, match="holds 500 mg"):
        core.check_draw(VIAL, Fraction(501), on=date(2027, 1, 1))


def test_a_waste_needs_a_witness_who_is_someone_else() -> None:
    with pytest.raises(UsageError, match="second authorised person"):
        core.check_witnesses(EntryKind.WASTE, recorded_by=1, witnesses=[], rules=RULES)
    with pytest.raises(UsageError, match="own waste"):
        core.check_witnesses(EntryKind.WASTE, recorded_by=1, witnesses=[1], rules=RULES)
    core.check_witnesses(EntryKind.WASTE, recorded_by=1, witnesses=[2], rules=RULES)


def test_destruction_on_site_needs_two_different_witnesses() -> None:
    with pytest.raises(UsageError, match="2 authorised"):
        core.check_witnesses(EntryKind.DESTROY, recorded_by=1, witnesses=[2], rules=RULES)
    with pytest.raises(UsageError, match="twice"):
        core.check_witnesses(EntryKind.DESTROY, recorded_by=1, witnesses=[2, 2], rules=RULES)
    core.check_witnesses(EntryKind.DESTROY, recorded_by=1, witnesses=[2, 3], rules=RULES)
    core.check_witnesses(EntryKind.DESTROY, recorded_by=1, witnesses=[], rules=RULES,
                         on_site=False)  # a reverse distributor files Form 41


def test_a_transfer_needs_a_registration_at_the_other_end() -> None:
    with pytest.raises(UsageError, match="no DEA registration"):
        core.check_transfer(to_registration="", from_registration="AB1234563")
    with pytest.raises(UsageError, match="same registration"):
        core.check_transfer(to_registration="AB1234563", from_registration="AB1234563")


def test_dea_numbers_are_checked_by_their_check_digit() -> None:
    # A1234563: 1+3+5 = 9, 2*(2+4+6) = 24, 33 -> check digit 3.
    assert core.check_dea_number("ab1234563") == "AB1234563"
    with pytest.raises(UsageError, match="check digit"):
        core.check_dea_number("AB1234564")
    with pytest.raises(UsageError, match="two letters"):
        core.check_dea_number("1234567")


def test_reconciliation_balances_drawn_against_given_wasted_and_returned() -> None:
    tol = Fraction(5)
    ok = core.reconcile(drawn_mg=Fraction(500), given_mg=Fraction(410, 3),
                        wasted_mg=Fraction(1090, 3), returned_mg=Fraction(0), tolerance_mg=tol)
    assert ok.reconciled
    assert ok.difference_mg == 0
    due = core.reconcile(drawn_mg=Fraction(500), given_mg=Fraction(200), wasted_mg=Fraction(0),
                         returned_mg=Fraction(0), tolerance_mg=tol)
    assert due.status is core.ReconciliationStatus.WASTE_DUE
    assert due.expected_waste_mg == 300
    assert "300 mg drawn is not yet accounted for" in due.message
    over = core.reconcile(drawn_mg=Fraction(100), given_mg=Fraction(150), wasted_mg=Fraction(0),
                          returned_mg=Fraction(0), tolerance_mg=tol)
    assert over.status is core.ReconciliationStatus.OVER_ACCOUNTED
    within = core.reconcile(drawn_mg=Fraction(500), given_mg=Fraction(200),
                            wasted_mg=Fraction(296), returned_mg=Fraction(0), tolerance_mg=tol)
    assert within.reconciled


def test_a_blind_count_finds_what_differs_beyond_the_tolerance() -> None:
    lines = [core.CountLine("A", Fraction(500), Fraction(500), Fraction(5)),
             core.CountLine("B", Fraction(250), Fraction(246), Fraction(5)),
             core.CountLine("C", Fraction(250), Fraction(200), Fraction(5))]
    found = core.compare_count(lines)
    assert [line.container_label for line in found] == ["C"]
    assert "50 mg short" in found[0].message()


def test_the_clinic_day_opens_and_closes_with_its_counts() -> None:
    day = core.check_count(core.DayState.NOT_OPENED, core.CountMoment.OPENING)
    assert day is core.DayState.OPEN
    assert core.check_count(day, core.CountMoment.SPOT) is core.DayState.OPEN
    closed = core.check_count(day, core.CountMoment.CLOSING)
    with pytest.raises(UsageError, match="closed"):
        core.check_count(closed, core.CountMoment.SPOT)
    with pytest.raises(UsageError, match="opening count first"):
        core.check_count(core.DayState.NOT_OPENED, core.CountMoment.CLOSING)


def test_a_discrepancy_is_explained_before_it_is_resolved_or_escalated() -> None:
    S, E = core.DiscrepancyState, core.DiscrepancyEvent
    with pytest.raises(UsageError, match="explain the discrepancy before"):
        core.discrepancy_transition(S.OPEN, E.RESOLVE, "done")
    explained = core.discrepancy_transition(S.OPEN, E.EXPLAIN, "spill at the bedside")
    assert core.discrepancy_transition(explained, E.RESOLVE, "ok") is S.RESOLVED
    assert core.discrepancy_transition(S.OPEN, E.ESCALATE, "missing") is S.ESCALATED
    with pytest.raises(UsageError, match="note"):
        core.discrepancy_transition(S.OPEN, E.EXPLAIN, "  ")
    with pytest.raises(UsageError):
        core.discrepancy_transition(S.RESOLVED, E.EXPLAIN, "again")


def test_a_loss_found_on_a_friday_is_notified_by_monday_and_filed_within_45_days() -> None:
    friday = date(2026, 11, 27)  # the day after Thanksgiving
    d = core.loss_deadlines(friday, holidays={date(2026, 11, 26)}, rules=RULES)
    assert d.notice_due_on == date(2026, 11, 30)
    assert d.form_106_due_on == friday + timedelta(days=45)
    wed = core.loss_deadlines(date(2026, 11, 25), holidays={date(2026, 11, 26)}, rules=RULES)
    assert wed.notice_due_on == date(2026, 11, 27)  # Thanksgiving skipped


def test_an_inventory_counts_full_vials_and_estimates_opened_ones() -> None:
    def vial(balance: int, lot: str = "L1", exp: date = date(2027, 1, 31)) -> Any:
        return core.ContainerState("Ketamine", "0143-9508", "injectable solution",
                                   Fraction(50), Fraction(10), lot, exp, Fraction(balance))

    lines = core.inventory_lines([vial(500), vial(500), vial(125), vial(0),
                                  vial(500, "L0", date(2026, 1, 31))], on=date(2026, 12, 1))
    by_lot = {line.lot: line for line in lines}
    assert by_lot["L1"].full_containers == 2
    assert by_lot["L1"].opened_containers == 1
    assert by_lot["L1"].opened_ml == Fraction(125, 50)
    assert by_lot["L1"].total_mg == 1125
    assert by_lot["L0"].expired
    assert not by_lot["L1"].expired


def test_the_biennial_inventory_is_due_two_years_after_the_last() -> None:
    assert core.biennial_due(date(2024, 2, 29), RULES) == date(2026, 2, 28)
    assert core.biennial_due(None, RULES) is None


def test_a_site_may_keep_records_longer_but_never_shorter() -> None:
    assert core.retention_years(3, RULES) == 3
    assert core.retention_years(None, RULES) == RULES.retention_years
    with pytest.raises(UsageError, match="less than the federal"):
        core.retention_years(1, RULES)


def test_an_entry_recorded_long_after_the_act_is_late() -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert not core.is_late(at, at + RULES.late_entry_after, RULES)
    assert core.is_late(at, at + RULES.late_entry_after + timedelta(seconds=1), RULES)


def _chain(n: int) -> list[core.ChainEntry]:
    out, prev = [], core.GENESIS_HASH
    for seq in range(1, n + 1):
        content = (seq, "draw", str(seq * 10))
        h = core.ledger_hash(prev, content, KEY)
        out.append(core.ChainEntry(seq, content, prev, h))
        prev = h
    return out


def test_the_chain_detects_an_altered_removed_or_reordered_entry() -> None:
    chain = _chain(5)
    assert core.verify_ledger(chain, tip=(5, chain[-1].hash), key=KEY) == []
    altered = [*chain]
    altered[2] = core.ChainEntry(3, (3, "draw", "999"), chain[2].prev_hash, chain[2].hash)
    assert "altered" in core.verify_ledger(altered, tip=(5, chain[-1].hash), key=KEY)[0].problem
    removed = chain[:2] + chain[3:]
    assert core.verify_ledger(removed, tip=(5, chain[-1].hash), key=KEY)
    reordered = [chain[0], chain[2], chain[1], *chain[3:]]
    assert core.verify_ledger(reordered, tip=(5, chain[-1].hash), key=KEY)
    rechained = _chain(5)  # recomputed by someone without the key: every hash differs
    assert core.verify_ledger(rechained, tip=(5, rechained[-1].hash), key=b"another key")
    truncated = chain[:4]
    (problem,) = core.verify_ledger(truncated, tip=(5, chain[-1].hash), key=KEY)
    assert "tip mismatch" in problem.problem


def test_ledger_amounts_are_stored_to_the_microgram() -> None:
    assert str(core.ledger_mg(Fraction(410, 3))) == "136.667"
    assert core.show_mg(Fraction(250)) == "250 mg"
