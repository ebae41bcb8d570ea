"""The session's one combined chart: vital signs, rate steps, scores and the predicted
concentration against clock time (plotly; the page updates it in place with
``Plotly.react`` when the live region refreshes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from django.utils import timezone
from plotly.subplots import make_subplots

from ketamine_clinic.web.lib import charts
from ketamine_clinic.web.sessions.selectors import Snapshot

VITAL_TRACES = (  # (payload key, label, colour, marker)
    ("systolic_bp_mmhg", "Systolic BP (mmHg)", "#c0392b", "triangle-down"),
    ("diastolic_bp_mmhg", "Diastolic BP (mmHg)", "#e67e22", "triangle-up"),
    ("heart_rate_per_min", "Heart rate (/min)", "#8e44ad", "circle"),
    ("spo2_percent", "SpO2 (%)", "#2980b9", "square"),
    ("respiratory_rate_per_min", "Resp. rate (/min)", "#16a085", "diamond"),
)


def _local(at: datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S")


def rate_steps(snap: Snapshot) -> tuple[list[str], list[float]]:
    """The pump rate [mg/h] as a step function from the rate segments, zero between."""
    xs: list[str] = []
    ys: list[float] = []
    if snap.totals is None:
        return xs, ys
    segments = snap.totals.segments
    for i, seg in enumerate(segments):
        for at in (seg.start, seg.end):
            xs.append(_local(at))
            ys.append(float(seg.rate_mg_per_h))
        last = i + 1 == len(segments)
        if (last and snap.totals.status.value != "running") or (
                not last and segments[i + 1].start != seg.end):
            xs.append(_local(seg.end))  # paused or stopped: the rate drops to zero
            ys.append(0.0)
    return xs, ys


def session_figure(snap: Snapshot, prediction: Any = None) -> go.Figure:
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.45, 0.3, 0.25],
                        specs=[[{}], [{"secondary_y": True}], [{"secondary_y": True}]])
    vitals = snap.of_kind("vitals")
    for key, label, colour, symbol in VITAL_TRACES:
        pts = [(e.occurred_at, e.payload.get(key)) for e in vitals
               if e.payload.get(key) is not None]
        if pts:
            fig.add_trace(go.Scatter(x=[_local(t) for t, _ in pts], y=[v for _, v in pts],
                                     name=label, mode="lines+markers",
                                     line={"color": colour},
                                     marker={"symbol": symbol, "size": 8}), row=1, col=1)
    for th in snap.rules.vital_thresholds:
        if th.vital in ("systolic_bp_mmhg", "heart_rate_per_min", "spo2_percent"):
            for bound in (th.low, th.high):
                if bound is not None:
                    fig.add_hline(y=bound, line={"dash": "dot", "width": 1, "color": "#999"},
                                  row=1, col=1)
    xs, ys = rate_steps(snap)
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, name="Ketamine rate (mg/h)", mode="lines",
                                 line={"color": "#2c3e50", "width": 3}, fill="tozeroy",
                                 fillcolor="rgba(44,62,80,0.12)"), row=2, col=1)
    if prediction is not None and getattr(prediction, "times", None):
        fig.add_trace(go.Scatter(x=[_local(t) for t in prediction.times],
                                 y=list(prediction.values),
                                 name=f"Predicted plasma ketamine ({prediction.unit})",
                                 mode="lines", line={"color": "#d35400", "dash": "dash"}),
                      row=2, col=1, secondary_y=True)
    sedation = snap.of_kind("sedation")
    if sedation:
        fig.add_trace(go.Scatter(x=[_local(e.occurred_at) for e in sedation],
                                 y=[e.payload["score"] for e in sedation],
                                 name=f"Sedation ({snap.rules.sedation_scale.upper()})",
                                 mode="lines+markers", line={"shape": "hv", "color": "#27ae60"}),
                      row=3, col=1)
    pain = snap.of_kind("pain")
    if pain:
        fig.add_trace(go.Scatter(x=[_local(e.occurred_at) for e in pain],
                                 y=[e.payload["nrs"] for e in pain], name="Pain (NRS 0-10)",
                                 mode="markers", marker={"size": 10, "color": "#c0392b",
                                                         "symbol": "x"}), row=3, col=1)
    diss = snap.of_kind("dissociation")
    if diss:
        fig.add_trace(go.Scatter(x=[_local(e.occurred_at) for e in diss],
                                 y=[e.payload["total"] for e in diss], name="CADSS-6 total",
                                 mode="lines+markers", line={"color": "#7f8c8d"}),
                      row=3, col=1, secondary_y=True)
    start = snap.session.scheduled_for
    if snap.effective:
        start = min(start, snap.effective[0].occurred_at)
    end = max(snap.now, (snap.planned_end or snap.now)) + timedelta(minutes=10)
    fig.update_xaxes(range=[_local(start - timedelta(minutes=5)), _local(end)])
    fig.update_yaxes(title_text="vitals", row=1, col=1)
    fig.update_yaxes(title_text="mg/h", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="ng/mL", rangemode="tozero", row=2, col=1, secondary_y=True)
    fig.update_yaxes(title_text="score", row=3, col=1)
    fig.update_yaxes(title_text="CADSS-6", rangemode="tozero", row=3, col=1,
                     secondary_y=True)
    fig.add_vline(x=_local(snap.now), line={"color": "#555", "width": 1})
    fig.update_layout(height=620, margin={"l": 50, "r": 50, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.08}, template="plotly_white",
                      uirevision=f"session-{snap.session.pk}")
    return fig


def figure_json(snap: Snapshot, prediction: Any = None) -> str:
    """The figure as JSON for ``Plotly.react``, safe inside the page's data block."""
    return charts.figure_json(session_figure(snap, prediction))
