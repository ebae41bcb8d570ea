"""A drawn signature: strokes from the page's canvas, turned into a small SVG on the server.

The browser sends only numbers (a JSON list of strokes, each a list of ``[x, y]`` points
in the canvas's coordinate space). The SVG is built here from those numbers, so nothing the
browser sends is ever stored or shown as markup.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ketamine_clinic.errors import UsageError

FIELD = "signature"
MAX_STROKES = 300
MAX_POINTS = 20_000
# A signature must be more than a dot or a slip of the finger: it spans at least this many
# canvas pixels in one direction and has at least this many points (user-interface
# thresholds, not clinical numbers).
MIN_EXTENT_PX = 40
MIN_POINTS = 10


def _strokes(raw: str) -> list[list[tuple[float, float]]]:
    if not (raw or "").strip():
        raise UsageError(FIELD, "is empty; the patient must sign on the pad")
    try:
        data: Any = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise UsageError(FIELD, "is not readable; clear the pad and sign again") from exc
    if not isinstance(data, list) or not data:
        raise UsageError(FIELD, "is empty; the patient must sign on the pad")
    if len(data) > MAX_STROKES:
        raise UsageError(FIELD, f"has more than {MAX_STROKES} strokes")
    strokes = []
    count = 0
    for stroke in data:
        if not isinstance(stroke, list):
            raise UsageError(FIELD, "is not readable; clear the pad and sign again")
        points = []
        for point in stroke:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool)
                               for v in point)
                    or not all(math.isfinite(v) for v in point)):
                raise UsageError(FIELD, "is not readable; clear the pad and sign again")
            points.append((float(point[0]), float(point[1])))
        count += len(points)
        if points:
            strokes.append(points)
    if count > MAX_POINTS:
        raise UsageError(FIELD, f"has more than {MAX_POINTS} points")
    return strokes


def signature_svg(raw_strokes: str, *, width: int, height: int) -> str:
    """The SVG of a drawn signature; ``UsageError`` when it is empty or not a signature."""
    if not (0 < width <= 4000 and 0 < height <= 4000):
        raise UsageError(FIELD, "pad size is out of range")
    strokes = _strokes(raw_strokes)
    points = [p for s in strokes for p in s]
    if len(points) < MIN_POINTS:
        raise UsageError(FIELD, "is too short to be a signature; ask the patient to sign")
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    if max(max(xs) - min(xs), max(ys) - min(ys)) < MIN_EXTENT_PX:
        raise UsageError(FIELD, "is too small to be a signature; ask the patient to sign")

    def clamp(v: float, top: int) -> str:
        return f"{min(max(v, 0.0), float(top)):.1f}".rstrip("0").rstrip(".")

    paths = []
    for stroke in strokes:
        first, *rest = stroke
        d = f"M{clamp(first[0], width)} {clamp(first[1], height)}"
        if not rest:  # a dot (e.g. over an i) is drawn as a tiny line so it shows
            rest = [(first[0] + 0.5, first[1])]
        d += "".join(f" L{clamp(x, width)} {clamp(y, height)}" for x, y in rest)
        paths.append(f'<path d="{d}"/>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="signature">'
        '<g fill="none" stroke="#111" stroke-width="2.5" stroke-linecap="round" '
        f'stroke-linejoin="round">{"".join(paths)}</g></svg>'
    )
