"""The prediction chart: the core's plotly figure plus the metabolite companion and 'now'."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.plots.pk import plotly_figure
from ketamine_clinic.web.lib.charts import chart_html
from ketamine_clinic.web.simulation.services import PredictionView


def prediction_figure_html(view: PredictionView, *, what_if: Any = None) -> str:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

    fig = plotly_figure(view.typical, population=view.population, what_if=what_if)
    met = view.metabolite
    if met is not None and met.norketamine_ng_per_ml is not None:
        fig.add_trace(go.Scatter(
            x=met.times_min / 60.0, y=met.norketamine_ng_per_ml,
            name=f"S-norketamine ({met.model.name}; S-half of the dose)",
            line={"color": "#8e44ad", "dash": "dashdot"}), row=1, col=1)
    if view.now_min is not None:
        fig.add_vline(x=view.now_min / 60.0, line={"color": "#b42318", "width": 2},
                      annotation_text="now", annotation_position="top")
    fig.update_layout(height=430, legend={"orientation": "h", "y": -0.25},
                      template="plotly_white")
    return str(chart_html(fig))
