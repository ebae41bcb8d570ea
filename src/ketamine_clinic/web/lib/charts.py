"""Charts on pages: a plotly figure as data, drawn by the page script once plotly is loaded.

Pages put each figure in with :func:`chart_html`: a ``<div data-chart>`` that names the
plotly script (``data-chart-script``) and the figure as JSON in a
``<script type="application/json">`` (data, not code, so no inline script runs). The page
script (``static/js/app.js``) fetches plotly only on a page that has such a div, and only
after the page's load event: 4.8 MB of JavaScript to parse would otherwise hold up the load
of every page with a chart by seconds on a tablet (``benchmarks/bench_browser_load.py``).
It then draws every chart, and again after each htmx swap.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

CONFIG = {"displaylogo": False, "responsive": True}
_ids = itertools.count(1)


def figure_json(fig: Any) -> str:
    """The figure's JSON, safe inside a script element."""
    text: str = fig.to_json()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def chart_html(fig: Any, *, config: dict[str, Any] | None = None) -> SafeString:
    """The figure as a chart placeholder plus its data (see the module docstring)."""
    data_id = f"chart-data-{next(_ids)}"
    conf = json.dumps({**CONFIG, **(config or {})})
    return format_html(
        '<div class="chart" data-chart="{}" data-chart-config="{}" data-chart-script="{}">'
        '</div><script type="application/json" id="{}">{}</script>',
        data_id, conf, reverse("plotly_js"), data_id,
        mark_safe(figure_json(fig)))  # <, > and & escaped above
