"""Reading the stock record: balances, the ledger, dispensing log, open cases, inventories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet, Sum
from django.utils import timezone

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.stock import chart
from ketamine_clinic.web.stock.models import (
    ClinicDay,
    Container,
    Discrepancy,
    Inventory,
    LedgerEntry,
    LossCase,
    Registration,
)
from ketamine_clinic.web.stock.services import local_date


def sites_for(user: User) -> QuerySet[Site]:
    return user.sites.order_by("name")


def day_state(site: Site, on: date | None = None) -> str:
    on = on or local_date(site, timezone.now())
    day = ClinicDay.objects.filter(site=site, day=on).first()
    return day.state if day else core.DayState.NOT_OPENED.value


def days_left_open(site: Site) -> list[date]:
    """Earlier clinic days that were opened and never closed by their closing count."""
    today = local_date(site, timezone.now())
    return list(ClinicDay.objects.filter(site=site, state=core.DayState.OPEN.value,
                                         day__lt=today).values_list("day", flat=True))


def vials_in_stock(site: Site) -> QuerySet[Container]:
    return (Container.objects.filter(site=site, balance_mg__gt=0)
            .select_related("lot__product").order_by("lot__expires_on", "label"))


def ledger(site: Site, *, start: date | None = None, end: date | None = None
           ) -> QuerySet[LedgerEntry]:
    qs = (LedgerEntry.objects.filter(site=site)
          .select_related("site", "product", "container__lot", "recorded_by", "witness",
                          "second_witness", "patient", "session", "other_site", "corrects")
          .order_by("-seq"))
    if start:
        qs = qs.filter(occurred_at__date__gte=start)
    if end:
        qs = qs.filter(occurred_at__date__lte=end)
    return qs


def dispensing_log(site: Site, *, patient_id: int | None = None, start: date | None = None,
                   end: date | None = None) -> QuerySet[LedgerEntry]:
    """Administrations and wastes per patient [CFR-1304.22(c)]: patient, date, quantity,
    who administered (and who witnessed a waste)."""
    qs = ledger(site, start=start, end=end).filter(kind__in=("draw", "administer", "waste",
                                                             "return"))
    if patient_id:
        qs = qs.filter(patient_id=patient_id)
    return qs.order_by("occurred_at", "seq")


def open_discrepancies(site: Site) -> QuerySet[Discrepancy]:
    return (Discrepancy.objects.filter(site=site, state__in=("open", "explained"))
            .select_related("container", "session__patient"))


def open_loss_cases(site: Site) -> QuerySet[LossCase]:
    return LossCase.objects.filter(site=site).exclude(state="filed")


@dataclass(frozen=True)
class InventoryStatus:
    last: Inventory | None
    initial: Inventory | None
    biennial_due: date | None


def inventory_status(site: Site) -> InventoryStatus:
    invs = Inventory.objects.filter(site=site)
    last = invs.filter(kind__in=("initial", "biennial")).order_by("-taken_on").first()
    initial = invs.filter(kind="initial").first()
    return InventoryStatus(last, initial,
                           core.biennial_due(last.taken_on if last else None, core.load_rules()))


@dataclass(frozen=True)
class SessionRow:
    session: Any
    drawn_mg: Decimal
    accounted_mg: Decimal
    discrepancy: bool


def sessions_today(site: Site) -> list[SessionRow]:
    """Today's sessions (and open ones) with what the ledger holds for each: drawn, and
    given + wasted + returned so far (two queries whatever the number of sessions)."""


    zone = ZoneInfo(site.time_zone)
    start = datetime.combine(local_date(site, timezone.now()), time.min, tzinfo=zone)
    sessions = chart.sessions_for_stock(site, start=start, end=start + timedelta(days=1))
    sums: dict[tuple[int, str], Decimal] = {
        (sid, kind): total for sid, kind, total in LedgerEntry.objects.filter(
            session__in=sessions).values("session", "kind")
        .annotate(t=Sum("custody_delta_mg")).values_list("session", "kind", "t")}
    flagged = set(Discrepancy.objects.filter(session__in=sessions, state__in=(
        "open", "explained")).values_list("session", flat=True))
    rows = []
    for s in sessions:
        drawn = sums.get((s.pk, "draw"), Decimal(0))
        out = -sum((sums.get((s.pk, k), Decimal(0)) for k in ("administer", "waste", "return",
                                                              "loss")), Decimal(0))
        rows.append(SessionRow(s, drawn, out, s.pk in flagged))
    return rows


def registration(site: Site) -> Registration | None:
    return Registration.objects.filter(site=site).first()


def retention_years(site: Site) -> int:
    reg = registration(site)
    return core.retention_years(reg.retention_years if reg else None, core.load_rules())


def entry_row(e: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as a report row (CSV, PDF and page alike)."""
    def who(u: Any) -> str:
        return u.display_name if u else ""

    return {
        "seq": e.seq, "kind": core.EntryKind(e.kind).label,
        "occurred_at": timezone.localtime(e.occurred_at).strftime("%Y-%m-%d %H:%M"),
        "recorded_at": timezone.localtime(e.recorded_at).strftime("%Y-%m-%d %H:%M"),
        "late": "late entry" if e.late else "",
        "product": str(e.product), "ndc": e.product.ndc,
        "vial": e.container.label if e.container else "",
        "lot": e.container.lot.lot_number if e.container else "",
        "quantity_mg": f"{e.quantity_mg.normalize():f}",
        "vial_balance_mg": ("" if e.container_balance_mg is None
                            else f"{e.container_balance_mg.normalize():f}"),
        "site_balance_mg": f"{e.site_balance_mg.normalize():f}",
        "patient": (f"{e.patient.family_name}, {e.patient.given_name}" if e.patient else ""),
        "patient_address": e.patient.address if e.patient else "",
        "session": e.session_id or "",
        "by": who(e.recorded_by), "witness": ", ".join(
            w for w in (who(e.witness), who(e.second_witness)) if w),
        "corrects": e.corrects.seq if e.corrects_id and e.corrects else "",
        "reason": e.correction_reason, "other_site": str(e.other_site or ""),
        "note": e.note,
    }


def when_local(at: datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")
