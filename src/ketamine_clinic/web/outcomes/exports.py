"""The outcome report as CSV and PDF (shared by the page and ``ketamine-clinic report``)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.template.loader import render_to_string

from ketamine_clinic.web.outcomes.charts import GROUP_LABELS, static_images

CSV_COLUMNS = ["section", "group", "measure", "value", "ci_low", "ci_high", "n", "k"]


def csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per reported number, with its interval and counts where it has them."""
    rows: list[dict[str, Any]] = []

    def add(section: str, group: str, measure: str, value: Any, lo: Any = None,
            hi: Any = None, n: Any = None, k: Any = None) -> None:
        rows.append({"section": section, "group": group, "measure": measure, "value": value,
                     "ci_low": lo, "ci_high": hi, "n": n, "k": k})

    add("cohort", "all", "series", data["n_series"])
    add("cohort", "all", "patients", data["n_patients"])
    add("cohort", "all", "series without baseline pain", data["series_without_baseline_pain"])
    imm = data["immediate_response"]
    add("immediate response", "all", "infusions", imm["infusions"])
    m = imm["mean_percent_reduction"]
    add("immediate response", "all", "mean % reduction", m["mean"], m["ci_low"], m["ci_high"],
        m["n"])
    for pct, p in imm["at_least_percent"].items():
        add("immediate response", "all", f"share >= {pct}% reduction", p["proportion"],
            p["ci_low"], p["ci_high"], p["n"], p["k"])
    for pct, p in data["responders"]["responders"].items():
        add("responders", "all", f"share >= {pct}% reduction", p["proportion"], p["ci_low"],
            p["ci_high"], p["n"], p["k"])
    for key, by in (("relief_by_diagnosis", "diagnosis"), ("relief_by_protocol", "protocol")):
        for group, c in data[key]["curves"].items():
            add(f"duration of relief by {by}", group, "median days", c["median_days"],
                c["median_ci_low"], c["median_ci_high"], c["n"], c["events"])
        for group, count in data[key]["without_relief"].items():
            add(f"duration of relief by {by}", group, "series without relief", count)
    for group, mc in data["pain_change_by_diagnosis"].items():
        add("pain change", group, "mean NRS change", mc["mean"], mc["ci_low"], mc["ci_high"],
            mc["n"])
    ae = data["adverse_events"]
    add("adverse events", "all", "events per session", ae["per_session"], n=ae["sessions"],
        k=ae["events"])
    for kind, rate in ae["by_type_per_session"].items():
        add("adverse events", kind, "events per session", rate, n=ae["sessions"],
            k=ae["by_type"][kind])
    op = data["opioids"]
    ch = op["change"]
    add("opioids", "all", "mean MME/day change", ch["mean"], ch["ci_low"], ch["ci_high"],
        ch["n"])
    red = op["reduced"]
    add("opioids", "all", "share with lower MME", red["proportion"], red["ci_low"],
        red["ci_high"], red["n"], red["k"])
    return rows


def report_csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(data):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def report_pdf(data: dict[str, Any], *, title: str, generated_for: str = "") -> bytes:
    """A printable report with the plots as PNG images (WeasyPrint)."""
    # WeasyPrint (and its fonts) loads only when a PDF is made.
    from weasyprint import HTML

    html = render_to_string("outcomes/report_pdf.html", {
        "data": data, "images": static_images(data), "title": title,
        "generated_for": generated_for, "rows": csv_rows(data),
        "group_labels": GROUP_LABELS})
    return bytes(HTML(string=html).write_pdf())
