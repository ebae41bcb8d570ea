"""Writing the controlled-substance record. Every function runs in one transaction, takes
the site's chain lock first (so balances are computed from a settled ledger and two
writers queue), decides through ``clinical.stock`` and raises ``UsageError`` (nothing
recorded) when it refuses."""

from ketamine_clinic.web.stock.services.bedside import (
    SessionStock,
    session_close_hold,
    session_closed,
    session_record_link,
    session_stock,
    session_totals,
    stock_draw,
    stock_return,
    stock_session_reconcile,
    stock_waste,
)
from ketamine_clinic.web.stock.services.counts import (
    CORRECTABLE,
    discrepancy_act,
    inventory_take,
    stock_count,
    stock_entry_correct,
)
from ketamine_clinic.web.stock.services.room import (
    loss_case_record,
    stock_destroy,
    stock_loss_report,
    stock_transfer,
)
from ketamine_clinic.web.stock.services.setup import (
    grants_set,
    product_create,
    registration_save,
    stock_receive,
)
from ketamine_clinic.web.stock.services.verify import (
    stock_checkpoint,
    stock_restored,
    stock_verify,
)
from ketamine_clinic.web.stock.services.writer import (
    Recorded,
    custody_mg,
    dec,
    ensure_default_grants,
    fr,
    local_date,
    registration_of,
)

__all__ = [
    "CORRECTABLE",
    "Recorded",
    "SessionStock",
    "custody_mg",
    "dec",
    "discrepancy_act",
    "ensure_default_grants",
    "fr",
    "grants_set",
    "inventory_take",
    "local_date",
    "loss_case_record",
    "product_create",
    "registration_of",
    "registration_save",
    "session_close_hold",
    "session_closed",
    "session_record_link",
    "session_stock",
    "session_totals",
    "stock_checkpoint",
    "stock_count",
    "stock_destroy",
    "stock_draw",
    "stock_entry_correct",
    "stock_loss_report",
    "stock_receive",
    "stock_restored",
    "stock_return",
    "stock_session_reconcile",
    "stock_transfer",
    "stock_verify",
    "stock_waste",
]
