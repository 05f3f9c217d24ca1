"""The console's charts drawn as inline SVG on the server: bars (stacked or side by side) and lines,
with axes, ticks, a legend and a native tooltip (``<title>``) on every data point; no script.

Why drawn here rather than with a charting library: the maintained SVG library for Python, pygal,
puts a ``<style>`` element and an inline ``<script>`` into every chart (18 KB for two bars, with a
random id per render), and the site's Content-Security-Policy (``style-src 'self'; script-src
'self'``, :mod:`digest.web.site`) refuses both: the chart would arrive unstyled (black shapes, its
look lives in that stylesheet) and log a violation per chart. Loosening the policy for the console
would weaken the one page that most needs it. What the console needs is two shapes over at most
60 points, about 200 lines; they use presentation attributes only (``fill``, ``font-size``: not
styles, which the policy allows), so a chart renders the same inline, on its own, and without
JavaScript.

Colours and font are the site's: read once from ``static/style.css`` (its light ``:root``
variables and the body's font stack), so a change of the palette there reaches the charts. The
charts keep dark text on a light ground in both colour schemes (a chart is read against its own
white card).

Each data row of a chart is one ``<g class="datum">`` (its bars or points, and its tooltip): the
figure's table and its drawing have the same rows (the tests count them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path

from markupsafe import Markup

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 34, 30  # the plot area's margins (y labels left, legend on top, x labels below)
MAX_X_LABELS = 8

STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "style.css"
# used when the stylesheet is not where it should be (a broken install): the same values
FALLBACK = {
    "surface": "#ffffff",
    "text": "#18181b",
    "muted": "#52525b",
    "border": "#d4d4d8",
    "accent": "#1d4ed8",
    "ok-text": "#065f46",
    "votes": "#b45309",
    "danger": "#b91c1c",
    "warn-text": "#92400e",
    "accent-hover": "#1e40af",
}
FALLBACK_FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
#: series colours by role, each a variable of the site's palette; ``extra`` ones for charts with
#: more series than the site has colours (unsubscribe methods)
ROLES = {
    "accent": "accent",
    "ok": "ok-text",
    "warn": "votes",
    "danger": "danger",
    "muted": "muted",
    "brown": "warn-text",
    "navy": "accent-hover",
    "light": "border",
}
EXTRA = {"teal": "#0f766e", "purple": "#7c3aed"}


@dataclass(frozen=True)
class Palette:
    colours: dict[str, str]
    font: str

    def __getitem__(self, role: str) -> str:
        if role in EXTRA:
            return EXTRA[role]
        if role.startswith("#"):
            return role
        return self.colours.get(ROLES.get(role, role), FALLBACK["text"])


@lru_cache(maxsize=1)
def palette() -> Palette:
    """The site's light palette and font, from its stylesheet."""
    try:
        css = STYLESHEET.read_text(encoding="utf-8")
    except OSError:
        return Palette(dict(FALLBACK), FALLBACK_FONT)
    root = re.search(r":root\s*{([^}]*)}", css)  # the first :root block: the light scheme
    colours = dict(FALLBACK)
    if root:
        colours.update({name: value.strip() for name, value in re.findall(r"--([\w-]+)\s*:\s*([^;]+);", root.group(1))})
    font = re.search(r"body\s*{[^}]*?font:\s*[^;]*?\d+px(?:/[\d.]+)?\s+([^;]+);", css)
    return Palette(colours, font.group(1).strip() if font else FALLBACK_FONT)


@dataclass(frozen=True)
class Series:
    """One series: its name in the legend, one value per label, its colour role (:data:`ROLES`)."""

    name: str
    values: Sequence[float]
    colour: str


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if step < 1 and top >= 1:
        step = 1
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _attrs(**values: object) -> str:
    return " ".join(f'{name.rstrip("_").replace("_", "-")}="{escape(str(v), quote=True)}"' for name, v in values.items() if v is not None)


class _Canvas:
    def __init__(self, chart_id: str, title: str, description: str, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.id, self.width, self.height = chart_id, width, height
        self.colours = palette()
        self.parts: list[str] = []
        self.head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" {_attrs(viewBox=f"0 0 {width} {height}", width="100%", role="img")}'
            f" {_attrs(aria_labelledby=f'chart-{chart_id}-title chart-{chart_id}-desc', class_='chart')}"
            f" {_attrs(font_family=self.colours.font, font_size=12, fill=self.colours['text'])}>"
            f'<title id="chart-{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="chart-{escape(chart_id)}-desc">{escape(description)}</desc>'
        )
        self.add(f"<rect {_attrs(class_='chart-ground', width=width, height=height, rx=8, fill=self.colours['surface'])}/>")
        self.plot = (LEFT, TOP, width - LEFT - RIGHT, height - TOP - BOTTOM)  # x, y, w, h

    def add(self, part: str) -> None:
        self.parts.append(part)

    def markup(self) -> Markup:
        return Markup(self.head + "".join(self.parts) + "</svg>")  # every text above went through escape()

    def y_axis(self, top: float, unit: str = "") -> float:
        """Grid lines and labels; returns the scale's top value."""
        x, y, w, h = self.plot
        ticks = nice_ticks(top)
        high = ticks[-1]
        lines = []
        for tick in ticks:
            ty = y + h - h * tick / high
            lines.append(f"<line {_attrs(x1=x, x2=x + w, y1=f'{ty:.1f}', y2=f'{ty:.1f}', stroke=self.colours['border'])}/>")
            lines.append(
                f"<text {_attrs(x=x - 6, y=f'{ty + 4:.1f}', text_anchor='end', fill=self.colours['muted'])}>{escape(_number(tick))}</text>"
            )
        if unit:
            lines.append(f"<text {_attrs(x=4, y=y - 10, fill=self.colours['muted'])}>{escape(unit)}</text>")
        self.add(f'<g class="y-axis">{"".join(lines)}</g>')
        return high

    def x_axis(self, labels: Sequence[str], centres: Sequence[float]) -> None:
        x, y, w, h = self.plot
        every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
        shown = [
            f"<text {_attrs(x=f'{cx:.1f}', y=y + h + 18, text_anchor='middle', fill=self.colours['muted'])}>{escape(label)}</text>"
            for i, (label, cx) in enumerate(zip(labels, centres))
            if i % every == 0
        ]
        axis = f"<line {_attrs(x1=x, x2=x + w, y1=y + h, y2=y + h, stroke=self.colours['muted'])}/>"
        self.add(f'<g class="x-axis">{axis}{"".join(shown)}</g>')

    def legend(self, series: Sequence[Series]) -> None:
        """Swatches and names in a row at the top right (the y axis's unit is at the top left)."""
        widths = [14 + 6.5 * len(s.name) + 14 for s in series]
        items, cursor = [], float(max(LEFT, self.width - RIGHT - sum(widths) + 14))
        for s, width in zip(series, widths):
            colour = self.colours[s.colour]
            items.append(
                f"<rect {_attrs(x=f'{cursor:.1f}', y=10, width=10, height=10, rx=2, fill=colour)}/>"
                f"<text {_attrs(x=f'{cursor + 14:.1f}', y=19)}>{escape(s.name)}</text>"
            )
            cursor += width
        self.add(f'<g class="legend">{"".join(items)}</g>')

    def empty(self, message: str) -> None:
        x, y, w, h = self.plot
        self.add(f"<text {_attrs(x=x + w / 2, y=y + h / 2, text_anchor='middle', fill=self.colours['muted'])}>{escape(message)}</text>")


def _tooltip(label: str, series: Sequence[Series], i: int) -> str:
    return escape(f"{label}: " + ", ".join(f"{s.name} {_number(s.values[i])}" for s in series))


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = True,
    unit: str = "",
    empty: str = "Nothing yet",
) -> Markup:
    """One slot per label; its series stacked (``stacked``) or side by side. Each slot is one
    ``<g class="datum">`` with a tooltip, even when all its values are zero."""
    canvas = _Canvas(chart_id, title, description)
    canvas.legend(series)
    totals = [sum(s.values[i] for s in series) if stacked else max((s.values[i] for s in series), default=0) for i in range(len(labels))]
    high = canvas.y_axis(max(totals, default=0), unit)
    x, y, w, h = canvas.plot
    slot = w / max(len(labels), 1)
    bar = slot * 0.72 if stacked else slot * 0.8 / max(len(series), 1)
    centres = [x + slot * (i + 0.5) for i in range(len(labels))]
    data = []
    for i, label in enumerate(labels):
        rects, base = [], 0.0
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            height = h * value / high
            if stacked:
                left, top = centres[i] - bar / 2, y + h - h * (base + value) / high
                base += value
            else:
                left, top = centres[i] - slot * 0.4 + k * bar, y + h - height
            rects.append(
                f"<rect {_attrs(x=f'{left:.1f}', y=f'{top:.1f}', width=f'{max(bar - 0.5, 0.5):.1f}', height=f'{max(height, 0.5):.1f}', fill=canvas.colours[s.colour])}/>"
            )
        data.append(f'<g class="datum"><title>{_tooltip(label, series, i)}</title>{"".join(rects)}</g>')
    canvas.add(f'<g class="bars">{"".join(data)}</g>')
    canvas.x_axis(labels, centres)
    if not labels or not any(totals):
        canvas.empty(empty)
    return canvas.markup()


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    empty: str = "Nothing yet",
) -> Markup:
    """A line per series through one point per label; each label's points are one ``<g class="datum">``."""
    canvas = _Canvas(chart_id, title, description)
    canvas.legend(series)
    high = canvas.y_axis(max((v for s in series for v in s.values), default=0), unit)
    x, y, w, h = canvas.plot
    n = len(labels)
    inset = 16  # the first and last points (and their labels) clear the plot's edges
    centres = [x + (w / 2 if n == 1 else inset + (w - 2 * inset) * i / (n - 1)) for i in range(n)]

    def point(i: int, value: float) -> tuple[float, float]:
        return centres[i], y + h - h * value / high

    lines = []
    for s in series:
        if n > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in (point(i, v) for i, v in enumerate(s.values)))
            lines.append(
                f"<polyline {_attrs(points=path, fill='none', stroke=canvas.colours[s.colour], stroke_width=2, stroke_linejoin='round')}/>"
            )
    data = []
    for i, label in enumerate(labels):
        dots = "".join(
            f"<circle {_attrs(cx=f'{px:.1f}', cy=f'{py:.1f}', r=3, fill=canvas.colours[s.colour])}/>"
            for s in series
            for px, py in [point(i, s.values[i])]
        )
        data.append(f'<g class="datum"><title>{_tooltip(label, series, i)}</title>{dots}</g>')
    canvas.add(f'<g class="lines">{"".join(lines)}</g><g class="points">{"".join(data)}</g>')
    canvas.x_axis(labels, centres)
    if not labels:
        canvas.empty(empty)
    return canvas.markup()
