"""The ledger's entry types, their refusals, reconciliation with the chart, counts and the
chain (services.py on the real database)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.stock import services
from ketamine_clinic.web.stock.models import (
    ClinicDay,
    Container,
    Discrepancy,
    LedgerEntry,
    LossCase,
)
from tests.web.stock.conftest import SUPPLIER, Stock, Walk, key, open_day, register


def balance(vial: Any) -> Decimal:
    vial.refresh_from_db()
    return vial.balance_mg


def test_a_receipt_numbers_each_vial_and_records_the_supplier(stock: Stock) -> None:
    entries = LedgerEntry.objects.filter(receipt=stock.receipt).order_by("seq")
    assert [e.kind for e in entries] == ["receive"] * 4
    assert [v.label for v in stock.vials] == ["DENVER-0001", "DENVER-0002", "DENVER-0003",
                                              "DENVER-0004"]
    assert all(v.balance_mg == Decimal(500) for v in stock.vials)
    assert [e.site_balance_mg for e in entries] == [Decimal(500 * n) for n in range(1, 5)]
    assert entries[0].detail["supplier_dea_number"] == "RF1234563"


def test_a_receipt_replayed_with_its_key_records_nothing_twice(stock: Stock) -> None:
    args = dict(actor=stock.actor(stock.cast.bob), site=stock.cast.denver,
                product=stock.product, lot_number="KX2032",
                expires_on=timezone.localdate() + timedelta(days=200), containers=2,
                invoice_number="INV-7782", received_on=timezone.localdate(),
                idempotency_key="rx-1", **SUPPLIER)
    first = services.stock_receive(**args)
    again = services.stock_receive(**args)
    assert again.record.pk == first.record.pk
    assert (first.replayed, again.replayed) == (False, True)
    assert Container.objects.count() == 6


@pytest.mark.parametrize(("change", "field"), [
    ({"supplier_dea_number": "RF1234564"}, "supplier_dea_number"),
    ({"containers": 0}, "containers"),
    ({"invoice_number": " "}, "invoice_number"),
    ({"received_on": "tomorrow"}, "received_on"),
    ({"expires_on": "past"}, "expires_on"),
])
def test_a_bad_receipt_is_refused_and_nothing_is_recorded(stock: Stock, change: dict[str, Any],
                                                          field: str) -> None:
    today = timezone.localdate()
    args: dict[str, Any] = dict(
        actor=stock.actor(stock.cast.bob), site=stock.cast.denver, product=stock.product,
        lot_number="KX9", expires_on=today + timedelta(days=100), containers=1,
        invoice_number="INV-1", received_on=today, **SUPPLIER)
    args.update(change)
    if change.get("received_on") == "tomorrow":
        args["received_on"] = today + timedelta(days=1)
    if change.get("expires_on") == "past":
        args["expires_on"] = today - timedelta(days=1)
    before = LedgerEntry.objects.count()
    with pytest.raises(UsageError) as err:
        services.stock_receive(**args)
    assert err.value.field == field
    assert LedgerEntry.objects.count() == before


def test_a_site_without_a_registration_cannot_receive(stock: Stock) -> None:
    stock.cast.bob.sites.add(stock.cast.boulder)
    with pytest.raises(UsageError, match="no DEA registration"):
        services.stock_receive(
            actor=stock.actor(stock.cast.bob), site=stock.cast.boulder, product=stock.product,
            lot_number="KX2031", expires_on=stock.vials[0].lot.expires_on, containers=1,
            invoice_number="INV-2", received_on=timezone.localdate(), **SUPPLIER)


def test_a_role_without_the_grant_is_refused(stock: Stock) -> None:
    with pytest.raises(UsageError, match="may not receive"):
        services.stock_receive(
            actor=stock.actor(stock.cast.carol), site=stock.cast.denver,
            product=stock.product, lot_number="KX2031",
            expires_on=stock.vials[0].lot.expires_on, containers=1, invoice_number="INV-3",
            received_on=timezone.localdate(), **SUPPLIER)


def test_administrators_set_who_may_draw(stock: Stock, walk: Walk) -> None:
    from ketamine_clinic.web.stock.permissions import DEFAULT_GRANTS

    open_day(stock)
    grants = {str(c): [str(r) for r in roles] for c, roles in DEFAULT_GRANTS.items()}
    grants["draw"] = ["physician"]
    services.grants_set(actor=stock.actor(stock.cast.dave), grants=grants)
    bob = type(stock.cast.bob).objects.get(pk=stock.cast.bob.pk)
    with pytest.raises(UsageError, match="may not draw"):
        services.stock_draw(actor=stock.actor(bob), session=walk.s, container=stock.vials[0])
    with pytest.raises(UsageError, match="manage"):
        services.grants_set(actor=stock.actor(stock.cast.dave), grants={"draw": ["nurse"]})


# --------------------------------------------------------------------------- bedside


def test_a_draw_needs_the_day_opened_by_its_count(stock: Stock, walk: Walk) -> None:
    with pytest.raises(UsageError, match="has not been opened"):
        services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                            container=stock.vials[0])
    open_day(stock)
    entry = services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                                container=stock.vials[0]).record
    assert entry.quantity_mg == 500
    assert entry.custody_balance_mg == 500
    assert balance(stock.vials[0]) == 0


def test_a_draw_from_an_empty_vial_or_an_expired_lot_is_refused(stock: Stock,
                                                                walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    with pytest.raises(UsageError, match="empty"):
        services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    lot = stock.vials[1].lot
    type(lot).objects.filter(pk=lot.pk).update(expires_on=timezone.localdate()
                                               - timedelta(days=1))
    with pytest.raises(UsageError, match="expired"):
        services.stock_draw(actor=bob, session=walk.s, container=stock.vials[1])
    with pytest.raises(UsageError, match="negative"):
        services.stock_draw(actor=bob, session=walk.s, container=stock.vials[2],
                            volume_ml="-2")


def test_a_waste_without_a_witness_or_self_witnessed_is_refused(stock: Stock,
                                                                walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    before = LedgerEntry.objects.count()
    with pytest.raises(UsageError, match="second authorised person"):
        services.stock_waste(actor=bob, session=walk.s, witness=None, quantity_mg="100")
    with pytest.raises(UsageError, match="own waste"):
        services.stock_waste(actor=bob, session=walk.s, witness=stock.cast.bob,
                             quantity_mg="100")
    with pytest.raises(UsageError, match="may not witness"):
        services.stock_waste(actor=bob, session=walk.s, witness=stock.cast.carol,
                             quantity_mg="100")
    assert LedgerEntry.objects.count() == before
    w = services.stock_waste(actor=bob, session=walk.s, witness=stock.nina,
                             quantity_mg="100").record
    assert w.witness == stock.nina
    assert w.custody_balance_mg == 400


def test_the_database_itself_refuses_a_self_witnessed_waste(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    draw = services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                               container=stock.vials[0]).record
    row = LedgerEntry(site=draw.site, seq=999, kind="waste", product=draw.product,
                      session=walk.s, occurred_at=draw.occurred_at,
                      recorded_at=draw.recorded_at, recorded_by=stock.cast.bob,
                      witness=stock.cast.bob, quantity_mg=1, container_delta_mg=0,
                      custody_delta_mg=-1, site_balance_mg=0, prev_hash="x", hash="y")
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def test_ledger_rows_cannot_be_updated_or_deleted_in_the_database(stock: Stock) -> None:
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("UPDATE stock_ledgerentry SET quantity_mg = 1")
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("DELETE FROM stock_ledgerentry")


def test_a_return_puts_an_unused_vial_back(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[1])
    back = services.stock_return(actor=bob, session=walk.s, container=stock.vials[1]).record
    assert back.quantity_mg == 500
    assert balance(stock.vials[1]) == 500
    with pytest.raises(UsageError, match="nothing was drawn"):
        services.stock_return(actor=bob, session=walk.s, container=stock.vials[2])


def _charted(walk: Walk) -> Fraction:
    """Given by the rate history below, computed here independently: Σ rate × hours."""
    steps = [(30, 60, 60), (60, 90, 70), (100, 150, 70)]  # (from min, to min, mg/h)
    return sum((Fraction(rate) * Fraction(end - start, 60) for start, end, rate in steps),
               Fraction(0))


def chart_with_changes_and_a_pause(walk: Walk) -> None:
    walk.infusing()  # 60 mg/h from minute 30
    walk.scores(59)  # an increase needs fresh sedation and dissociation scores
    walk.rate("70 mg/h", 60)
    walk.event("pause", 90, reason="nausea")
    walk.event("resume", 100)
    walk.event("stop", 150, reason="planned end")


def test_a_session_reconciles_with_the_dose_the_chart_derives(stock: Stock,
                                                              walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    chart_with_changes_and_a_pause(walk)
    status = services.session_stock(walk.s)
    given = _charted(walk)
    assert status.charted.given_mg == given
    assert status.reconciliation.expected_waste_mg == 500 - given
    assert not status.can_close
    services.stock_waste(actor=bob, session=walk.s, witness=stock.nina,
                         quantity_mg=f"{float(500 - given):.3f}")
    done = services.stock_session_reconcile(actor=bob, session=walk.s, close=True)
    assert done.reconciliation.reconciled
    assert done.can_close
    administered = LedgerEntry.objects.get(session=walk.s, kind="administer")
    assert administered.quantity_mg == Decimal(str(round(float(given), 3)))
    assert administered.patient == walk.s.patient
    assert not Discrepancy.objects.exists()


def test_an_unreconciled_session_opens_a_discrepancy_instead_of_closing(
        stock: Stock, walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    chart_with_changes_and_a_pause(walk)
    services.stock_waste(actor=bob, session=walk.s, witness=stock.nina, quantity_mg="200")
    result = services.stock_session_reconcile(actor=bob, session=walk.s, close=True)
    assert not result.can_close
    d = Discrepancy.objects.get(session=walk.s)
    assert d.state == "open"
    assert "not yet accounted for" in d.message
    # The ledger's session stays open; the discrepancy is on record, so the bedside is
    # not held (tests/web/stock/test_session_close.py).
    assert services.session_close_hold(walk.s) is None
    # Reconciling again opens no second one.
    services.stock_session_reconcile(actor=bob, session=walk.s, close=True)
    assert Discrepancy.objects.filter(session=walk.s).count() == 1


def test_reconciling_a_running_infusion_for_closing_is_refused(stock: Stock,
                                                               walk: Walk) -> None:
    open_day(stock)
    services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                        container=stock.vials[0])
    walk.infusing()
    with pytest.raises(UsageError, match="stop the infusion"):
        services.stock_session_reconcile(actor=stock.actor(stock.cast.bob), session=walk.s,
                                         close=True)


def test_a_corrected_waste_is_a_new_entry_and_the_original_stays(stock: Stock,
                                                                 walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    w = services.stock_waste(actor=bob, session=walk.s, witness=stock.nina,
                             quantity_mg="300").record
    fixed = services.stock_entry_correct(actor=bob, entry=w, quantity_mg="250",
                                         reason="misread the syringe", witness=stock.nina)
    assert fixed.corrects == w
    assert fixed.custody_delta_mg == 50
    assert services.session_totals(walk.s)["wasted"] == 250
    w.refresh_from_db()
    assert w.quantity_mg == 300  # untouched
    with pytest.raises(UsageError, match="already corrected"):
        services.stock_entry_correct(actor=bob, entry=w, quantity_mg="1", reason="x",
                                     witness=stock.nina)


# --------------------------------------------------------------------------- stock room


def test_a_blind_count_that_differs_opens_a_discrepancy(stock: Stock) -> None:
    count = services.stock_count(
        actor=stock.actor(stock.cast.bob), site=stock.cast.denver, moment="opening",
        counted_ml={stock.vials[0].pk: "10", stock.vials[1].pk: "10", stock.vials[2].pk: "10",
                    stock.vials[3].pk: "7"}).record
    assert count.mismatches == 1
    d = Discrepancy.objects.get(count=count)
    assert d.container == stock.vials[3]
    assert d.found_mg == 350
    assert d.expected_mg == 500
    assert "150 mg short" in d.message
    assert ClinicDay.objects.get(site=stock.cast.denver).state == "open"
    # explain -> resolve with an adjustment brings the vial to what was found
    dave = stock.actor(stock.cast.dave)
    with pytest.raises(UsageError, match="explain the discrepancy before"):
        services.discrepancy_act(actor=dave, discrepancy=d, event="resolve", note="x")
    services.discrepancy_act(actor=stock.actor(stock.cast.bob), discrepancy=d,
                             event="explain", note="vial cracked in the box")
    services.discrepancy_act(actor=dave, discrepancy=d, event="resolve", note="adjusted",
                             adjust=True)
    d.refresh_from_db()
    assert d.state == "resolved"
    assert balance(stock.vials[3]) == 350


def test_every_vial_must_be_counted_and_a_closed_day_takes_no_count(stock: Stock) -> None:
    bob = stock.actor(stock.cast.bob)
    partial = {stock.vials[0].pk: "10"}
    with pytest.raises(UsageError, match="enter what is in vial DENVER-0002"):
        services.stock_count(actor=bob, site=stock.cast.denver, moment="opening",
                             counted_ml=partial)
    open_day(stock)
    full = {v.pk: "10" for v in stock.vials}
    services.stock_count(actor=bob, site=stock.cast.denver, moment="closing", counted_ml=full)
    with pytest.raises(UsageError, match="closed"):
        services.stock_count(actor=bob, site=stock.cast.denver, moment="spot", counted_ml=full)
    bad = {**full, stock.vials[0].pk: "-1"}
    day = ClinicDay.objects.get(site=stock.cast.denver)
    type(day).objects.filter(pk=day.pk).update(state="open")
    with pytest.raises(UsageError, match="negative"):
        services.stock_count(actor=bob, site=stock.cast.denver, moment="spot", counted_ml=bad)


def test_a_count_can_be_the_biennial_inventory(stock: Stock) -> None:
    full = {v.pk: "10" for v in stock.vials}
    full[stock.vials[3].pk] = "4.5"
    count = services.stock_count(actor=stock.actor(stock.cast.bob), site=stock.cast.denver,
                                 moment="opening", counted_ml=full,
                                 inventory_kind="biennial").record
    inv = count.inventory
    assert inv.kind == "biennial"
    assert inv.business_moment == "opening"
    (line,) = inv.lines
    assert (line["full_containers"], line["opened_containers"]) == (3, 1)
    assert Fraction(line["opened_ml"]) == Fraction(9, 2)
    assert inv.registrant["dea_number"] == "AF1234563"


def test_a_transfer_goes_only_to_a_registered_site(stock: Stock) -> None:
    dave = stock.actor(stock.cast.dave)
    with pytest.raises(UsageError, match="no DEA registration"):
        services.stock_transfer(actor=dave, container=stock.vials[0],
                                to_site=stock.cast.boulder, invoice_number="T-1")
    register(stock.cast, stock.cast.boulder, "BF1234563")
    out = services.stock_transfer(actor=dave, container=stock.vials[0],
                                  to_site=stock.cast.boulder, invoice_number="T-1").record
    stock.vials[0].refresh_from_db()
    assert out.kind == "transfer_out"
    assert stock.vials[0].site == stock.cast.boulder
    arrived = LedgerEntry.objects.get(site=stock.cast.boulder, kind="transfer_in")
    assert arrived.site_balance_mg == 500
    assert out.site_balance_mg == 1500


def test_destruction_on_site_records_form_41_with_two_witnesses(stock: Stock) -> None:
    dave = stock.actor(stock.cast.dave)
    with pytest.raises(UsageError, match="2 authorised"):
        services.stock_destroy(actor=dave, container=stock.vials[0], method="on_site",
                               witnesses=[stock.nina], manner="chemical digestion")
    e = services.stock_destroy(actor=dave, container=stock.vials[0], method="on_site",
                               witnesses=[stock.nina, stock.cast.bob],
                               manner="chemical digestion kit", place="Denver stock room").record
    form = e.detail["form_41"]
    assert form["batch"] == "KX2031"
    assert form["full_packages"] == 1
    assert form["total_destroyed_mg"] == "500"
    assert len(form["witnesses"]) == 2
    assert balance(stock.vials[0]) == 0


def test_a_reverse_distributor_needs_its_name_and_registration(stock: Stock) -> None:
    dave = stock.actor(stock.cast.dave)
    with pytest.raises(UsageError) as err:
        services.stock_destroy(actor=dave, container=stock.vials[1],
                               method="reverse_distributor",
                               reverse_distributor={"name": "Returns Co"})
    assert err.value.field.startswith("reverse_distributor.")
    e = services.stock_destroy(
        actor=dave, container=stock.vials[1], method="reverse_distributor",
        reverse_distributor={"name": "Returns Co", "address": "9 Dock Rd, Aurora CO",
                             "dea_number": "RR1234563", "invoice_number": "RD-55"}).record
    assert e.detail["form_41"]["reverse_distributor"]["dea_number"] == "RR1234563"


def test_a_theft_opens_a_case_with_its_deadlines(stock: Stock) -> None:
    dave = stock.actor(stock.cast.dave)
    found = timezone.now()
    case = services.stock_loss_report(
        actor=dave, site=stock.cast.denver, loss_type="employee pilferage",
        discovered_at=found, items=[(stock.vials[2], "500")],
        description="vial missing from the locked box", police_notified=True,
        police_department="Denver PD", police_phone="720-000-0000")
    assert isinstance(case, LossCase)
    assert case.is_theft
    assert case.notice_due_on > services.local_date(stock.cast.denver, found)
    assert case.form_106_due_on == (services.local_date(stock.cast.denver, found)
                                    + timedelta(days=45))
    assert balance(stock.vials[2]) == 0
    services.loss_case_record(actor=dave, case=case, kind="notice_sent", reference="fax 1")
    case.refresh_from_db()
    assert case.state == "notified"
    with pytest.raises(UsageError, match="choose one of"):
        services.stock_loss_report(actor=dave, site=stock.cast.denver, loss_type="aliens",
                                   discovered_at=found, items=[(stock.vials[1], "1")],
                                   description="x")


def test_a_discrepancy_escalated_becomes_a_loss_case(stock: Stock) -> None:
    counted = {v.pk: "10" for v in stock.vials}
    counted[stock.vials[0].pk] = "0"
    count = services.stock_count(actor=stock.actor(stock.cast.bob), site=stock.cast.denver,
                                 moment="opening", counted_ml=counted).record
    d = count.discrepancies.get()
    services.discrepancy_act(actor=stock.actor(stock.cast.dave), discrepancy=d,
                             event="escalate", note="vial not found anywhere",
                             loss_type="other")
    d.refresh_from_db()
    assert d.state == "escalated"
    assert d.loss_case is not None
    assert d.loss_case.quantity_mg == 500
    assert balance(stock.vials[0]) == 0


# --------------------------------------------------------------------------- chain


def test_the_chain_verifies_and_detects_an_altered_entry(stock: Stock) -> None:
    from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers

    assert services.stock_verify() == {"denver": []}
    remove_triggers(connection)
    try:
        e = LedgerEntry.objects.filter(site=stock.cast.denver).order_by("seq")[1]
        LedgerEntry.objects.filter(pk=e.pk).update(quantity_mg=Decimal("50"))
        problems = services.stock_verify()["denver"]
        assert problems
        assert "altered" in problems[0].problem
        assert problems[0].seq == 2
    finally:
        install_triggers(connection)


def test_the_chain_detects_a_removed_entry(stock: Stock) -> None:
    from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers

    remove_triggers(connection)
    try:
        LedgerEntry.objects.filter(site=stock.cast.denver, seq=2).delete()
        problems = services.stock_verify()["denver"]
        assert any("missing" in p.problem for p in problems)
    finally:
        install_triggers(connection)


def _newest_removed_and_head_moved_back(stock: Stock, keep: int) -> None:
    """What an administrator with database access could do: delete the newest ledger rows
    and set the head to the last one kept (the chain inside the database then adds up)."""
    from ketamine_clinic.web.stock.models import ChainHead

    kept = LedgerEntry.objects.get(site=stock.cast.denver, seq=keep)
    LedgerEntry.objects.filter(site=stock.cast.denver, seq__gt=keep).delete()
    ChainHead.objects.filter(site=stock.cast.denver).update(seq=kept.seq, hash=kept.hash)


def test_the_checkpoints_outside_the_database_catch_removed_newest_entries(
        stock: Stock) -> None:
    from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers

    newest = LedgerEntry.objects.filter(site=stock.cast.denver).order_by("-seq").first()
    assert newest is not None
    assert newest.seq > 1
    assert services.stock_checkpoint() == 1
    assert services.stock_checkpoint() == 0  # the head did not move: nothing new to write
    remove_triggers(connection)
    try:
        _newest_removed_and_head_moved_back(stock, keep=1)
        problems = services.stock_verify()["denver"]
        assert [p.seq for p in problems] == [newest.seq]
        assert f"entries 2 to {newest.seq} were removed" in problems[0].problem
    finally:
        install_triggers(connection)


def test_a_site_whose_whole_ledger_was_removed_is_still_found(stock: Stock) -> None:
    from ketamine_clinic.web.stock.models import ChainHead
    from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers

    services.stock_checkpoint()
    remove_triggers(connection)
    try:
        LedgerEntry.objects.filter(site=stock.cast.denver).delete()
        ChainHead.objects.filter(site=stock.cast.denver).delete()
        problems = services.stock_verify()["denver"]
        assert problems
        assert "were removed" in problems[0].problem
    finally:
        install_triggers(connection)


def test_a_forged_checkpoint_line_is_reported(stock: Stock, settings: Any) -> None:
    services.stock_checkpoint()
    path = settings.STOCK_CHECKPOINTS / "denver.log"
    with path.open("a") as f:
        f.write('{"kind": "checkpoint", "at": "2026-01-01T00:00:00", "seq": 1, '
                '"hash": "00", "mac": "00"}\n')
    problems = services.stock_verify()["denver"]
    assert [p.problem for p in problems] == [
        "checkpoint file line 2 is not a valid checkpoint (forged or altered)"]


def test_a_restore_line_puts_the_checkpoints_back_to_the_restored_head(
        stock: Stock) -> None:
    from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers

    services.stock_checkpoint()
    remove_triggers(connection)
    try:
        _newest_removed_and_head_moved_back(stock, keep=1)  # as a restore of an older backup
        services.stock_restored()
        assert services.stock_verify() == {"denver": []}
    finally:
        install_triggers(connection)


def test_late_entries_are_flagged(stock: Stock, walk: Walk) -> None:
    drawn_at = timezone.now() - timedelta(hours=3)
    # The day is opened just before the draw (three hours ago may be yesterday there).
    counted = {v.pk: v.balance_mg / v.lot.product.strength_mg_per_ml for v in stock.vials}
    opening = services.stock_count(actor=stock.actor(stock.cast.bob), site=stock.cast.denver,
                                   moment="opening", counted_ml=counted,
                                   occurred_at=drawn_at - timedelta(minutes=1)).record
    assert opening.pk
    late = services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                               container=stock.vials[0], volume_ml="2", occurred_at=drawn_at).record
    assert late.late


def test_a_chart_that_gave_more_than_was_drawn_opens_a_discrepancy(stock: Stock,
                                                                   walk: Walk) -> None:
    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0], volume_ml="1")
    chart_with_changes_and_a_pause(walk)  # gives more than the 50 mg drawn
    result = services.stock_session_reconcile(actor=bob, session=walk.s, close=True)
    assert result.reconciliation.status.value == "over_accounted"
    assert not result.can_close
    assert services.custody_mg(walk.s) == 0  # booked up to what was drawn, never below
    assert Discrepancy.objects.get(session=walk.s).state == "open"


def test_a_chart_corrected_downwards_corrects_the_booked_administration(
        stock: Stock, walk: Walk) -> None:
    from ketamine_clinic.web.sessions import services as sessions

    open_day(stock)
    bob = stock.actor(stock.cast.bob)
    services.stock_draw(actor=bob, session=walk.s, container=stock.vials[0])
    chart_with_changes_and_a_pause(walk)
    first = services.stock_session_reconcile(actor=bob, session=walk.s)
    assert first.totals["administered"] == Fraction(services.dec(_charted(walk)))
    # The rate change was charted in error: the pump stayed at 60 mg/h throughout.
    change = walk.s.entries.get(kind="rate_change")
    sessions.session_entry_correct(actor=walk.nurse, session=walk.s, entry=change,
                                   entered_in_error=True, reason="wrong patient's pump",
                                   idempotency_key=key())
    again = services.stock_session_reconcile(actor=bob, session=walk.s)
    given = Fraction(60) * Fraction(110, 60)  # 30→90 and 100→150 at 60 mg/h
    assert again.charted.given_mg == given
    assert again.totals["administered"] == Fraction(services.dec(given))
    fixed = LedgerEntry.objects.get(session=walk.s, kind="administer", corrects__isnull=False)
    assert fixed.correction_reason == "the chart was corrected"
