"""Printable and exportable stock reports: inventory (PDF, CSV), ledger and dispensing log
(CSV, PDF). PDF through weasyprint from the same template the page uses."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.http import HttpResponse
from django.template.loader import render_to_string

INVENTORY_COLUMNS = ("product", "ndc", "form", "strength_mg_per_ml", "container_volume_ml",
                     "lot", "expires_on", "expired", "full_containers", "opened_containers",
                     "opened_ml", "total_mg")
LEDGER_COLUMNS = ("seq", "occurred_at", "recorded_at", "late", "kind", "product", "ndc",
                  "vial", "lot", "quantity_mg", "vial_balance_mg", "site_balance_mg",
                  "patient", "patient_address", "session", "by", "witness", "corrects",
                  "reason", "other_site", "note")


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]],
             preamble: Sequence[Sequence[str]] = ()) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for line in preamble:
        writer.writerow(line)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue()


def inventory_csv(inv: Any) -> str:
    reg = inv.registrant
    preamble = [["registrant", reg.get("name", "")], ["address", reg.get("address", "")],
                ["DEA registration", reg.get("dea_number", "")],
                ["inventory", inv.kind], ["date", inv.taken_on.isoformat()],
                ["taken at", "opening of business" if inv.business_moment == "opening"
                 else "close of business"], ["taken by", inv.taken_by.display_name], []]
    return csv_text(INVENTORY_COLUMNS, inv.lines, preamble)


def pdf_bytes(template: str, context: Mapping[str, Any]) -> bytes:
    # WeasyPrint (and its fonts) loads only when a PDF is made.
    from weasyprint import HTML

    html = render_to_string(template, dict(context))
    return bytes(HTML(string=html).write_pdf())


def download(content: str | bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
