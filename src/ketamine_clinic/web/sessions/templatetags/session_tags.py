"""Display helpers for the session pages: one readable line per timeline entry."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

from django import template

from ketamine_clinic.clinical.bedside.words import limit as words

register = template.Library()

VITAL_SHORT = (("systolic_bp_mmhg", "BP", "/"), ("heart_rate_per_min", "HR", ""),
               ("respiratory_rate_per_min", "RR", ""), ("spo2_percent", "SpO2", "%"),
               ("etco2_mmhg", "EtCO2", ""), ("temperature_c", "T", "°C"))


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


@register.filter
def entry_summary(entry: Any) -> str:
    """One line for an entry's payload (units shown)."""
    p, kind = entry.payload or {}, entry.kind
    if kind == "vitals":
        parts = []
        for key, label, suffix in VITAL_SHORT:
            v = p.get(key)
            if v is None:
                continue
            if key == "systolic_bp_mmhg":
                parts.append(f"BP {_g(v)}/{_g(p.get('diastolic_bp_mmhg'))} mmHg")
            else:
                parts.append(f"{label} {_g(v)}{suffix}")
        if p.get("on_oxygen"):
            parts.append("on O2")
        return " · ".join(parts)
    if kind in ("infusion_start", "rate_change"):
        return (f"{p.get('rate_mg_per_kg_per_h', 0):.3g} mg/kg/h = {p['rate_mg_per_h']:.4g} mg/h"
                f" = {p['pump_rate_ml_per_h']:.4g} mL/h (entered “{p.get('rate_entered', '')}”)"
                + (f" — override {p['override_code']}: {p['override_text']}"
                   if p.get("override_code") else ""))
    if kind == "sedation":
        r = p.get("result", {})
        return f"{r.get('short', p['scale'])} {p['score']} — {r.get('meaning', '')}"
    if kind == "dissociation":
        return f"CADSS-6 total {p['total']} (items " + ", ".join(
            f"{k}:{v}" for k, v in p.get("items", {}).items()) + ")"
    if kind == "pain":
        return f"Pain NRS {p['nrs']}/10 ({p['phase']})"
    if kind in ("premedication", "rescue_medication"):
        return (f"{p['drug']} {_g(p['dose'])} {p['unit']} {p['route']}"
                + (f" for {p['indication']}" if p.get("indication") else ""))
    if kind == "adverse_event":
        return (f"{p['type'].replace('_', ' ')} ({p['severity']}) {p.get('description', '')}"
                f" — action: {p.get('action_taken') or '—'}; outcome: {p.get('outcome') or '—'}")
    if kind == "note":
        return str(p.get("text", ""))
    if kind == "pre_assessment":
        return (f"IV access {'documented' if p.get('iv_access_documented') else 'NOT documented'}"
                f"{' (' + p['iv_site'] + ')' if p.get('iv_site') else ''}; escort: "
                f"{p.get('escort_name') or '—'}; pregnancy: {p.get('pregnancy_status') or '—'}")
    if kind == "stop":
        t = p.get("totals", {})
        return (f"Total {t.get('total_mg', 0):g} mg = {t.get('total_mg_per_kg', 0):.3g} mg/kg, "
                f"{t.get('volume_ml', 0):g} mL" + (f" — {p['reason']}" if p.get("reason") else ""))
    if kind == "recovery_score":
        r = p.get("result", {})
        items = ", ".join(f"{i['label'].split(' (')[0]} {i['points']}"
                          for i in r.get("items", []))
        return f"{r.get('name', p['score_name'])}: {p['total']}/{r.get('maximum', 10)} ({items})"
    if kind == "discharge":
        over = "; ".join(f"override {o['item']}: {o['reason']}" for o in p.get("overrides", []))
        return f"Escort {p['escort_name']}; instructions given" + (f"; {over}" if over else "")
    if kind in ("transfer", "abandon", "pause"):
        return str(p.get("reason", "")) + (f" → {p['destination']}" if p.get("destination")
                                            else "")
    if kind == "check_in":
        return f"chair {p.get('chair') or '—'}"
    return ""


@register.filter
def minutes(span: timedelta | None) -> str:
    if span is None:
        return "—"
    total = int(span.total_seconds() // 60)
    return f"{total // 60} h {total % 60:02d} min" if total >= 60 else f"{total} min"


@register.filter
def num(value: Fraction | float | None, places: int = 1) -> str:
    if value is None:
        return "—"
    return f"{float(value):.{int(places)}f}"


@register.filter
def label(code: str) -> str:
    return str(code).replace("_", " ")


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """``mapping[key]`` for dicts and forms (a form's bound field by name)."""
    try:
        return mapping[key]
    except (KeyError, TypeError):
        return None


@register.filter
def limit_words(limit: Any) -> str:
    """A limit in words: ``"session total ≤ 400 mg (soft limit)"``."""
    return words(limit.quantity, limit.kind.value, limit.lower, limit.upper)
