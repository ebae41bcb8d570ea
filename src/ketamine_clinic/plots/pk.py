"""Concentration-time figures for PK simulations.

:func:`write_png` draws a matplotlib PNG (command line); :func:`plotly_figure` builds a plotly
figure (web pages). Both show plasma and effect-site ketamine, norketamine on a second panel,
the population band if given, the threshold and its crossing time, and an optional "what if"
simulation as dashed lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ketamine_clinic.pk.population import PopulationResult
from ketamine_clinic.pk.simulate import SimulationResult

if TYPE_CHECKING:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

_LABELS = {"plasma": "plasma", "effect_site": "effect site", "norketamine": "metabolite"}
_COLOURS = {"plasma": "#1f77b4", "effect_site": "#d62728", "norketamine": "#2ca02c"}


def _series(result: SimulationResult) -> dict[str, np.ndarray]:
    return result.series()


def _compound_label(result: SimulationResult, series: str) -> str:
    if series == "norketamine":
        return result.model.metabolite_compound or "norketamine"
    return result.model.compound


def _title(result: SimulationResult) -> str:
    p = result.patient
    return (f"{result.model.name} ({result.model.id}, v{result.model.version}), "
            f"{p.weight_kg:g} kg, {result.regimen.drug}; {result.model.sampling}")


def write_png(result: SimulationResult, path: str | Path, *,
              population: PopulationResult | None = None,
              what_if: SimulationResult | None = None) -> Path:
    """Draw the simulation (and band, what-if) to a PNG file; returns the path."""
    # matplotlib loads only when a static image is drawn.
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only when a static image is drawn.
    import matplotlib.pyplot as plt

    series = _series(result)
    has_met = "norketamine" in series
    fig, axes = plt.subplots(2 if has_met else 1, 1, figsize=(10, 7 if has_met else 4.5),
                             sharex=True, squeeze=False)
    hours = result.times_min / 60.0
    for name, y in series.items():
        ax = axes[1, 0] if name == "norketamine" else axes[0, 0]
        ax.plot(hours, y, color=_COLOURS[name],
                label=f"{_LABELS[name]} {_compound_label(result, name)}")
        if population is not None and name in population.bands:
            band = population.bands[name]
            ax.fill_between(population.times_min / 60.0, band[0], band[-1],
                            color=_COLOURS[name], alpha=0.18,
                            label=f"{population.percentiles[0]:g}-"
                                  f"{population.percentiles[-1]:g}th percentile "
                                  f"(n={population.n}, {population.iiv_label})")
        if what_if is not None:
            alt = _series(what_if).get(name)
            if alt is not None:
                ax.plot(what_if.times_min / 60.0, alt, color=_COLOURS[name], ls="--",
                        label=f"what if: {_LABELS[name]}")
        cross = result.threshold_crossing_min.get(name)
        if result.threshold_ng_per_ml is not None and cross is not None:
            ax.axhline(result.threshold_ng_per_ml, color="grey", lw=0.8, ls=":")
            ax.axvline(cross / 60.0, color=_COLOURS[name], lw=0.8, ls=":")
            ax.annotate(f"< {result.threshold_ng_per_ml:g} at {cross / 60:.1f} h",
                        (cross / 60.0, result.threshold_ng_per_ml), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    axes[0, 0].set_title(_title(result), fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("ng/mL")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time from start of infusion (h)")
    if result.warnings:
        fig.text(0.01, 0.005, "Warnings: " + "; ".join(result.warnings), fontsize=6,
                 wrap=True, va="bottom")
    fig.tight_layout(rect=(0, 0.04 if result.warnings else 0, 1, 1))
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plotly_figure(result: SimulationResult, *, population: PopulationResult | None = None,
                  what_if: SimulationResult | None = None) -> go.Figure:
    """The same picture as a plotly figure (for the order and session pages)."""
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series = _series(result)
    has_met = "norketamine" in series
    fig = make_subplots(rows=2 if has_met else 1, cols=1, shared_xaxes=True,
                        vertical_spacing=0.08)
    hours = result.times_min / 60.0
    for name, y in series.items():
        row = 2 if name == "norketamine" else 1
        colour = _COLOURS[name]
        if population is not None and name in population.bands:
            band = population.bands[name]
            t = population.times_min / 60.0
            label = (f"{population.percentiles[0]:g}-{population.percentiles[-1]:g}th "
                     f"percentile, {_LABELS[name]}")
            fig.add_trace(go.Scatter(x=t, y=band[-1], line={"width": 0}, showlegend=False,
                                     hoverinfo="skip"), row=row, col=1)
            fig.add_trace(go.Scatter(x=t, y=band[0], fill="tonexty", line={"width": 0},
                                     fillcolor=_rgba(colour, 0.2), name=label), row=row, col=1)
        fig.add_trace(go.Scatter(x=hours, y=y, name=f"{_LABELS[name]} "
                                 f"{_compound_label(result, name)}",
                                 line={"color": colour}), row=row, col=1)
        if what_if is not None and (alt := _series(what_if).get(name)) is not None:
            fig.add_trace(go.Scatter(x=what_if.times_min / 60.0, y=alt,
                                     name=f"what if: {_LABELS[name]}",
                                     line={"color": colour, "dash": "dash"}), row=row, col=1)
        cross = result.threshold_crossing_min.get(name)
        if result.threshold_ng_per_ml is not None and cross is not None:
            fig.add_vline(x=cross / 60.0, line={"color": colour, "dash": "dot", "width": 1},
                          row=row, col=1)
    if result.threshold_ng_per_ml is not None:
        fig.add_hline(y=result.threshold_ng_per_ml, line={"color": "grey", "dash": "dot"},
                      row=1, col=1)
    fig.update_yaxes(title_text="ng/mL")
    fig.update_xaxes(title_text="time from start of infusion (h)", row=2 if has_met else 1)
    fig.update_layout(title={"text": _title(result), "font": {"size": 12}},
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def figure_dict(result: SimulationResult, **kwargs: Any) -> dict[str, Any]:
    """The plotly figure as a JSON-ready dict."""
    out: dict[str, Any] = plotly_figure(result, **kwargs).to_plotly_json()
    return out
