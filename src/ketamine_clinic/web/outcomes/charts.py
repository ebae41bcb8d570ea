"""Plots of the outcome report: plotly for the page, matplotlib PNGs for the PDF.

Both draw from the report's JSON form (``ReportData.to_dict()``), so the page, the PDF and
``ketamine-clinic report outcomes`` show the same numbers.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from ketamine_clinic.web.lib.charts import chart_html
from ketamine_clinic.web.outcomes.policy import points

GROUP_LABELS = {"crps": "CRPS", "other": "Other diagnoses", "all": "All"}
COLORS = ["#1f5f8b", "#c2571a", "#2e8540", "#7b3294", "#8c6d1f", "#5b6b7c"]


def point_label(key: str) -> str:
    if key == "baseline":
        return "Baseline"
    day = float(key)
    if day == 0:
        return "End"
    for p in points():
        if p.outcome_day == day:
            return p.label
    return f"Day {key}"


def _steps(curve: dict[str, Any]) -> tuple[list[float], list[float], list[float], list[float]]:
    """The KM step function from day 0 (survival 1) through each event/censoring time."""
    xs, ys, lo, hi = [0.0], [1.0], [1.0], [1.0]
    for row in curve["table"]:
        xs.append(row["day"])
        ys.append(row["survival"])
        lo.append(row["ci_low"])
        hi.append(row["ci_high"])
    return xs, ys, lo, hi


# --------------------------------------------------------------------------- plotly


def _html(fig: Any) -> str:
    fig.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 40}, height=340,
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})

    return str(chart_html(fig))


def responder_bars(data: dict[str, Any]) -> str:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

    fig = go.Figure()
    imm = data["immediate_response"]["at_least_percent"]
    resp = data["responders"]["responders"]
    for i, (name, block) in enumerate((("Immediate (per infusion)", imm),
                                       ("Series (first assessment)", resp))):
        keys = list(block)
        vals = [100 * (block[k]["proportion"] or 0) for k in keys]
        err_hi = [100 * ((block[k]["ci_high"] or 0) - (block[k]["proportion"] or 0))
                  for k in keys]
        err_lo = [100 * ((block[k]["proportion"] or 0) - (block[k]["ci_low"] or 0))
                  for k in keys]
        fig.add_bar(x=[f"≥{k}% reduction" for k in keys], y=vals, name=name,
                    marker_color=COLORS[i],
                    text=[f"{v:.0f}% ({block[k]['k']}/{block[k]['n']})"
                          for v, k in zip(vals, keys, strict=True)],
                    textposition="outside",
                    error_y={"type": "data", "array": err_hi, "arrayminus": err_lo})
    fig.update_layout(title="Responders", barmode="group",
                      yaxis={"title": "% of infusions / series", "range": [0, 110]})
    return _html(fig)


def km_curves(relief: dict[str, Any], title: str) -> str:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (group, curve) in enumerate(relief["curves"].items()):
        xs, ys, lo, hi = _steps(curve)
        color = COLORS[i % len(COLORS)]
        label = GROUP_LABELS.get(group, group)
        fig.add_scatter(x=xs, y=hi, mode="lines", line={"shape": "hv", "width": 0},
                        showlegend=False,
                        hoverinfo="skip", legendgroup=group)
        fig.add_scatter(x=xs, y=lo, mode="lines", line={"shape": "hv", "width": 0},
                        fill="tonexty",
                        fillcolor=_alpha(color), showlegend=False, hoverinfo="skip",
                        legendgroup=group)
        median = curve["median_days"]
        fig.add_scatter(x=xs, y=ys, mode="lines", line={"shape": "hv", "color": color},
                        legendgroup=group,
                        name=f"{label} (n={curve['n']}, median "
                             f"{'not reached' if median is None else f'{median:g} d'})")
    fig.update_layout(title=title, xaxis={"title": "days after the series"},
                      yaxis={"title": "share still in relief", "range": [0, 1.05]})
    return _html(fig)


def _alpha(hex_color: str, a: float = 0.18) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def trajectories(data: dict[str, Any]) -> str:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

    traj = data["pain_trajectories"]
    labels = [point_label(k) for k in traj["points"]]
    fig = go.Figure()
    for i, (group, rows) in enumerate(traj["groups"].items()):
        keep = [(lab, r) for lab, r in zip(labels, rows, strict=True) if r["n"]]
        if not keep:
            continue
        fig.add_scatter(
            x=[lab for lab, _ in keep], y=[r["mean"] for _, r in keep],
            mode="lines+markers", name=GROUP_LABELS.get(group, group),
            marker_color=COLORS[i],
            error_y={"type": "data",
                     "array": [(r["ci_high"] - r["mean"]) if r["ci_high"] is not None else 0
                               for _, r in keep],
                     "arrayminus": [(r["mean"] - r["ci_low"]) if r["ci_low"] is not None
                                    else 0 for _, r in keep]},
            text=[f"n={r['n']}" for _, r in keep])
    fig.update_layout(title="Mean pain (0–10 NRS), baseline to week 12",
                      yaxis={"title": "NRS", "range": [0, 10]},
                      xaxis={"type": "category", "categoryorder": "array",
                             "categoryarray": labels})
    return _html(fig)


def patient_trajectory(traj: dict[str, Any]) -> str:
    # plotly loads only when a chart is drawn (a fifth of a second at start-up).
    import plotly.graph_objects as go

    fig = go.Figure()
    for phase, color in (("pre", COLORS[1]), ("end", COLORS[0])):
        pts = [p for p in traj["session_pain"] if p["phase"] == phase]
        if pts:
            fig.add_scatter(x=[p["at"] for p in pts], y=[p["nrs"] for p in pts],
                            mode="markers", marker={"color": color, "size": 8},
                            name="before infusion" if phase == "pre" else "end of infusion")
    fus = traj["follow_up_pain"]
    if fus:
        fig.add_scatter(x=[p["at"] for p in fus], y=[p["average"] for p in fus],
                        mode="lines+markers", line={"color": COLORS[2]},
                        name="follow-up (average pain)",
                        text=[p["point"] for p in fus])
    # One dotted line per infusion, given to the layout at once: add_vline re-validates every
    # shape already on the figure, so a patient with 25 sessions took seconds.
    lines = []
    for s in traj["sessions"]:
        x = s["at"].timestamp() * 1000 if hasattr(s["at"], "timestamp") else s["at"]
        lines.append({"type": "line", "xref": "x", "yref": "y domain", "x0": x, "x1": x,
                      "y0": 0, "y1": 1, "line": {"color": "#b8c2cc", "dash": "dot", "width": 1}})
    fig.update_layout(title="Pain over time (dotted lines: infusions)",
                      yaxis={"title": "NRS", "range": [-0.2, 10.2]}, shapes=lines)
    return _html(fig)


# --------------------------------------------------------------------------- matplotlib


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    # matplotlib loads only when a static image is drawn.
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def static_images(data: dict[str, Any]) -> dict[str, str]:
    """PNG data URIs of the report's plots (for the PDF)."""
    # matplotlib loads only when a static image is drawn.
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only when a static image is drawn.
    import matplotlib.pyplot as plt

    out = {}
    fig, ax = plt.subplots(figsize=(6.5, 3))
    blocks = (("Immediate (per infusion)", data["immediate_response"]["at_least_percent"]),
              ("Series (first assessment)", data["responders"]["responders"]))
    width = 0.38
    for i, (name, block) in enumerate(blocks):
        keys = list(block)
        vals: list[float] = [100 * (block[k]["proportion"] or 0) for k in keys]
        lo = [v - 100 * (block[k]["ci_low"] or 0) for v, k in zip(vals, keys, strict=True)]
        hi = [100 * (block[k]["ci_high"] or 0) - v for v, k in zip(vals, keys, strict=True)]
        xs = [j + (i - 0.5) * width for j in range(len(keys))]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=3, label=name, color=COLORS[i])
        ax.set_xticks(range(len(keys)), [f"≥{k}% reduction" for k in keys])
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.set_title("Responders")
    ax.legend(fontsize=8)
    out["responders"] = _png(fig)

    for key, title in (("relief_by_diagnosis", "Duration of relief by diagnosis"),
                       ("relief_by_protocol", "Duration of relief by protocol")):
        fig, ax = plt.subplots(figsize=(6.5, 3))
        for i, (group, curve) in enumerate(data[key]["curves"].items()):
            xs, ys, lo, hi = _steps(curve)
            color = COLORS[i % len(COLORS)]
            ax.step(xs, ys, where="post", color=color,
                    label=f"{GROUP_LABELS.get(group, group)} (n={curve['n']})")
            ax.fill_between(xs, lo, hi, step="post", color=color, alpha=0.15)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("days after the series")
        ax.set_ylabel("share still in relief")
        ax.set_title(title)
        if data[key]["curves"]:
            ax.legend(fontsize=8)
        out[key] = _png(fig)

    traj = data["pain_trajectories"]
    labels = [point_label(k) for k in traj["points"]]
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for i, (group, rows) in enumerate(traj["groups"].items()):
        pts = [(j, r) for j, r in enumerate(rows) if r["n"]]
        if pts:
            ax.errorbar([j for j, _ in pts], [r["mean"] for _, r in pts],
                        yerr=[[r["mean"] - (r["ci_low"] if r["ci_low"] is not None
                                            else r["mean"]) for _, r in pts],
                              [(r["ci_high"] if r["ci_high"] is not None else r["mean"])
                               - r["mean"] for _, r in pts]],
                        marker="o", capsize=3, color=COLORS[i],
                        label=GROUP_LABELS.get(group, group))
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(0, 10)
    ax.set_ylabel("NRS")
    ax.set_title("Mean pain over the series and after")
    ax.legend(fontsize=8)
    out["trajectories"] = _png(fig)
    return out
