"""API shapes for the stock record. Amounts are strings of exact decimals (mg or mL)."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema

KEY = Field(..., min_length=8, max_length=80,
            description="client operation id: a retry with the same key records nothing new")


class EntryOut(Schema):
    id: int
    site: str
    seq: int
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    late: bool
    container: str | None
    session: int | None
    patient: int | None
    quantity_mg: str
    container_balance_mg: str | None
    site_balance_mg: str
    custody_balance_mg: str | None
    recorded_by: str
    witness: str | None
    second_witness: str | None
    corrects: int | None
    detail: dict
    replayed: bool = False


class ReceiveIn(Schema):
    site: str
    product_ndc: str
    lot_number: str
    expires_on: date
    containers: int
    supplier_name: str
    supplier_address: str
    supplier_dea_number: str
    invoice_number: str
    received_on: date
    note: str = ""
    idempotency_key: str = KEY


class ReceiptOut(Schema):
    id: int
    containers: list[str]
    replayed: bool = False


class DrawIn(Schema):
    session: int
    container: str = Field(..., description="vial label, e.g. DENVER-0001")
    volume_ml: str | None = Field(None, description="empty: the whole vial")
    occurred_at: datetime | None = None
    idempotency_key: str = KEY


class WasteIn(Schema):
    session: int
    quantity_mg: str | None = None
    volume_ml: str | None = Field(None, description="of the bag, at the ordered concentration")
    witness_username: str
    witness_password: str
    occurred_at: datetime | None = None
    note: str = ""
    idempotency_key: str = KEY


class ReturnIn(Schema):
    session: int
    container: str
    quantity_mg: str | None = None
    idempotency_key: str = KEY


class TransferIn(Schema):
    container: str
    to_site: str
    invoice_number: str
    occurred_at: datetime | None = None
    idempotency_key: str = KEY


class WitnessIn(Schema):
    username: str
    password: str


class DestroyIn(Schema):
    container: str
    method: str = Field(..., description="on_site or reverse_distributor")
    witnesses: list[WitnessIn] = []
    manner: str = ""
    place: str = ""
    reverse_distributor: dict[str, str] = {}
    occurred_at: datetime | None = None
    idempotency_key: str = KEY


class LossItemIn(Schema):
    container: str
    quantity_mg: str


class LossIn(Schema):
    site: str
    loss_type: str
    discovered_at: datetime
    items: list[LossItemIn]
    description: str
    police_notified: bool = False
    police_department: str = ""
    police_phone: str = ""
    purchase_value_usd: str | None = None
    measures_taken: str = ""


class LossOut(Schema):
    id: int
    state: str
    quantity_mg: str
    notice_due_on: date
    form_106_due_on: date


class CountIn(Schema):
    site: str
    moment: str = Field(..., description="opening, closing or spot")
    counted_ml: dict[str, str] = Field(..., description="vial label -> mL in the vial")
    inventory_kind: str = ""
    occurred_at: datetime | None = None
    idempotency_key: str = KEY


class CountOut(Schema):
    id: int
    moment: str
    mismatches: int
    discrepancies: list[int]
    replayed: bool = False


class ReconcileOut(Schema):
    session: int
    status: str
    drawn_mg: str
    given_mg: str
    wasted_mg: str
    returned_mg: str
    difference_mg: str
    message: str
    can_close: bool
    discrepancy: int | None


class BalanceOut(Schema):
    container: str
    product_ndc: str
    lot: str
    expires_on: date
    balance_mg: str


class CorrectionIn(Schema):
    quantity_mg: str = Field(..., description="the correct amount; 0 = entered in error")
    reason: str
    witness_username: str | None = None
    witness_password: str | None = None
