"""The controlled-substance record: registrations, products, lots, numbered containers and
an append-only, hash-chained ledger per registered site.

The ledger rows are never updated or deleted (database triggers, see ``triggers.py``);
the database itself refuses a balance below zero, a waste without a witness and a waste
witnessed by the person wasting. ``Container.balance_mg``, ``ClinicDay.state`` and the
``state`` of discrepancies and loss cases are caches of the append-only rows, written only
by ``services.py`` under the site's chain lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.models import AppendOnly, ClinicModel
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.sessions.models import InfusionSession


class _DecimalDigits(TypedDict):
    max_digits: int
    decimal_places: int


# Milligrams kept to the microgram.
MG: _DecimalDigits = {"max_digits": 14, "decimal_places": 3}


class Registration(ClinicModel):
    """A site's DEA registration: stock and records are kept per registered location."""

    site = models.OneToOneField(Site, on_delete=models.PROTECT, related_name="dea_registration")
    dea_number = models.CharField("DEA registration number", max_length=9, unique=True)
    registrant_name = models.CharField(max_length=200)
    address = models.CharField(max_length=300)
    schedules = models.CharField(max_length=40, default="2, 2N, 3, 3N, 4, 5")
    expires_on = models.DateField()
    retention_years = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="only where the state keeps records longer than the federal 2 years")
    state_rule_note = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.dea_number} ({self.site})"


class Product(ClinicModel):
    """A ketamine product as its NDC record has it (every ketamine NDC is Schedule III)."""

    ndc = models.CharField("NDC", max_length=13, unique=True)
    name = models.CharField(max_length=200)
    form = models.CharField(max_length=60, default="injectable solution")
    strength_mg_per_ml = models.DecimalField(max_digits=8, decimal_places=3)
    container_volume_ml = models.DecimalField(max_digits=8, decimal_places=3)
    schedule = models.CharField(max_length=4, default="CIII")
    rxnorm = models.CharField(max_length=12, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "ndc"]

    def __str__(self) -> str:
        return (f"{self.name} {self.strength_mg_per_ml.normalize():f} mg/mL, "
                f"{self.container_volume_ml.normalize():f} mL vial")

    @property
    def content_mg(self) -> object:
        return self.strength_mg_per_ml * self.container_volume_ml


class Lot(ClinicModel):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=40)
    expires_on = models.DateField()

    class Meta:
        ordering = ["expires_on", "lot_number"]
        constraints = [models.UniqueConstraint(fields=["product", "lot_number"],
                                               name="stock_one_lot_number_per_product")]

    def __str__(self) -> str:
        return f"lot {self.lot_number} (exp. {self.expires_on:%Y-%m-%d})"


class Receipt(AppendOnly):
    """A shipment received: supplier, invoice or packing slip, the date actually received
    and the quantity confirmed [CFR-1304.21]. Schedule III needs no DEA Form 222."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    supplier_name = models.CharField(max_length=200)
    supplier_address = models.CharField(max_length=300)
    supplier_dea_number = models.CharField(max_length=9)
    invoice_number = models.CharField(max_length=60)
    received_on = models.DateField()
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    containers_confirmed = models.PositiveIntegerField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_on", "-id"]

    def __str__(self) -> str:
        return f"invoice {self.invoice_number} from {self.supplier_name}"


class Container(ClinicModel):
    """One numbered vial. ``site`` and ``balance_mg`` are caches of the ledger."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="containers")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    receipt = models.ForeignKey(Receipt, null=True, on_delete=models.PROTECT,
                                related_name="containers")
    label = models.CharField(max_length=40, unique=True)
    balance_mg = models.DecimalField(**MG)
    opened = models.BooleanField(default=False)

    class Meta:
        ordering = ["lot__expires_on", "label"]
        constraints = [models.CheckConstraint(condition=Q(balance_mg__gte=0),
                                              name="stock_container_never_negative")]

    def __str__(self) -> str:
        return f"vial {self.label}"


class ChainHead(ClinicModel):
    """The tip of one site's ledger chain; locked to serialise that site's entries."""

    site = models.OneToOneField(Site, on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.site} #{self.seq}"


class ClinicDay(ClinicModel):
    """A clinic day of one site: opened by its opening count, closed by its closing count."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    state = models.CharField(max_length=12, default="not_opened")

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["site", "day"],
                                               name="stock_one_clinic_day")]

    def __str__(self) -> str:
        return f"{self.site} {self.day} ({self.state})"


class Count(AppendOnly):
    """A blind count: the counter entered what was there; the system compared."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    clinic_day = models.ForeignKey(ClinicDay, on_delete=models.PROTECT, related_name="counts")
    moment = models.CharField(max_length=10)  # opening, closing, spot
    counted_at = models.DateTimeField()
    counted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    lines = models.JSONField(default=list)
    mismatches = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=80, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-counted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.moment} count {self.counted_at:%Y-%m-%d %H:%M}"


class LossCase(ClinicModel):
    """Theft or significant loss: 1-business-day notice, DEA Form 106 within 45 days."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    discovered_at = models.DateTimeField()
    loss_type = models.CharField(max_length=40)
    is_theft = models.BooleanField()
    quantity_mg = models.DecimalField(**MG)
    police_notified = models.BooleanField(default=False)
    police_department = models.CharField(max_length=200, blank=True)
    police_phone = models.CharField(max_length=40, blank=True)
    purchase_value_usd = models.DecimalField(max_digits=10, decimal_places=2, null=True,
                                             blank=True)
    measures_taken = models.TextField(blank=True)
    description = models.TextField()
    notice_due_on = models.DateField()
    form_106_due_on = models.DateField()
    deadline_inputs = models.JSONField(default=dict)
    state = models.CharField(max_length=20, default="open")  # open, notified, filed

    class Meta:
        ordering = ["-discovered_at"]

    def __str__(self) -> str:
        return f"loss case {self.pk} ({self.loss_type})"


class LossCaseEvent(AppendOnly):
    case = models.ForeignKey(LossCase, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20)  # notice_sent, form_106_filed, note
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    reference = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.case}"


class Discrepancy(ClinicModel):
    """A difference between the ledger and what was found (a count or a session)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10)  # count, session
    container = models.ForeignKey(Container, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    count = models.ForeignKey(Count, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="discrepancies")
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+")
    expected_mg = models.DecimalField(**MG)
    found_mg = models.DecimalField(**MG)
    message = models.TextField()
    detail = models.JSONField(default=dict)
    state = models.CharField(max_length=12, default="open")
    loss_case = models.ForeignKey(LossCase, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="discrepancies")

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name_plural = "discrepancies"

    def __str__(self) -> str:
        return f"discrepancy {self.pk} ({self.state})"

    @property
    def difference_mg(self) -> object:
        return self.found_mg - self.expected_mg


class DiscrepancyNote(AppendOnly):
    discrepancy = models.ForeignKey(Discrepancy, on_delete=models.PROTECT, related_name="notes")
    event = models.CharField(max_length=10)  # explain, resolve, escalate
    note = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.event} on {self.discrepancy}"


class LedgerEntry(AppendOnly):
    """One movement of ketamine, recorded once, in its site's hash chain."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=15)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    container = models.ForeignKey(Container, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="entries")
    session = models.ForeignKey(InfusionSession, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    late = models.BooleanField(default=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    witness = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    second_witness = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    quantity_mg = models.DecimalField(**MG)
    container_delta_mg = models.DecimalField(**MG)
    custody_delta_mg = models.DecimalField(**MG)
    container_balance_mg = models.DecimalField(null=True, blank=True, **MG)
    site_balance_mg = models.DecimalField(**MG)
    custody_balance_mg = models.DecimalField(null=True, blank=True, **MG)
    corrects = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="corrections")
    correction_reason = models.TextField(blank=True)
    receipt = models.ForeignKey(Receipt, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="entries")
    count = models.ForeignKey(Count, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="entries")
    discrepancy = models.ForeignKey(Discrepancy, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="entries")
    loss_case = models.ForeignKey(LossCase, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="entries")
    other_site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    detail = models.JSONField(default=dict)
    note = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["site", "seq"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["session", "kind"]),
                   models.Index(fields=["patient", "occurred_at"]),
                   models.Index(fields=["site", "occurred_at"])]
        constraints = [
            models.UniqueConstraint(fields=["site", "seq"], name="stock_one_seq_per_site"),
            models.CheckConstraint(condition=Q(quantity_mg__gte=0),
                                   name="stock_quantity_never_negative"),
            models.CheckConstraint(condition=Q(site_balance_mg__gte=0),
                                   name="stock_site_balance_never_negative"),
            models.CheckConstraint(
                condition=Q(container_balance_mg__isnull=True) | Q(container_balance_mg__gte=0),
                name="stock_container_balance_never_negative"),
            models.CheckConstraint(
                condition=Q(custody_balance_mg__isnull=True) | Q(custody_balance_mg__gte=0),
                name="stock_custody_never_negative"),
            models.CheckConstraint(
                condition=~Q(kind="waste") | (Q(witness__isnull=False)
                                              & ~Q(witness=F("recorded_by"))),
                name="stock_waste_witnessed_by_another"),
            models.CheckConstraint(
                condition=Q(second_witness__isnull=True) | ~Q(second_witness=F("witness")),
                name="stock_two_different_witnesses"),
        ]

    def __str__(self) -> str:
        return f"{self.site} #{self.seq} {self.kind}"

    def chain_content(self) -> tuple[object, ...]:
        """The hashed fields, in a fixed order. Changing it invalidates existing chains."""
        return (
            self.seq, self.site_id, self.kind, self.product_id, self.container_id,
            self.session_id, self.patient_id,
            _utc(self.occurred_at), _utc(self.recorded_at), self.late,
            self.recorded_by_id, self.witness_id, self.second_witness_id,
            _mg(self.quantity_mg), _mg(self.container_delta_mg), _mg(self.custody_delta_mg),
            _mg(self.container_balance_mg), _mg(self.site_balance_mg),
            _mg(self.custody_balance_mg), self.corrects_id, self.correction_reason,
            self.receipt_id, self.count_id, self.discrepancy_id, self.loss_case_id,
            self.other_site_id, self.detail, self.note, self.idempotency_key,
        )


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _mg(value: object) -> str | None:
    """A stored amount as a canonical string (the same on SQLite and PostgreSQL)."""
    if value is None:
        return None

    return f"{Decimal(str(value)).quantize(Decimal('0.001')):f}"


class Inventory(AppendOnly):
    """An initial or biennial (or other) inventory of one registered location [CFR-1304.11],
    taken from a blind count and signed by the person who took it."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10)  # initial, biennial, other
    taken_on = models.DateField()
    taken_at = models.DateTimeField()
    business_moment = models.CharField(max_length=10)  # opening, close
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    count = models.OneToOneField(Count, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="inventory")
    registrant = models.JSONField(default=dict)
    lines = models.JSONField(default=list)
    rules_version = models.CharField(max_length=20)

    class Meta:
        ordering = ["-taken_at", "-id"]
        verbose_name_plural = "inventories"

    def __str__(self) -> str:
        return f"{self.kind} inventory {self.taken_on}"


class StockGrant(ClinicModel):
    """Which role may do which act in the stock record; set by clinic administrators."""

    role = models.CharField(max_length=20)
    capability = models.CharField(max_length=20)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "capability"],
                                               name="stock_one_grant")]

    def __str__(self) -> str:
        return f"{self.role} may {self.capability}"
