"""A self-contained HTML report of one publication, for finance and the senior team. Plain Python, no Dagster.

:func:`write_report` reads a published DuckDB file (schema ``marts``, opened read-only) and writes
``index.html``: a header with the as-of month and the publication's run, the customer scorecard with
incentive attainment, the whale curve, the profitability matrix, the satisfaction drivers, the CLV
distribution and a costing-comparison callout. Charts are inline SVG drawn here; the page loads nothing from
anywhere (no fonts, no scripts, no stylesheets) and prints cleanly. A section whose mart is missing or empty
says so instead of failing. One small inline script records, on ``<body data-charts-drawn>``, how many data
marks each chart drew, so that a browser test can tell drawn charts from empty ones.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

REPORT = "index.html"
NBSP = "\u00a0"
MINUS = "\u2212"
MAX_CURVE_POINTS = 500
MAX_SCATTER_POINTS = 3000

METRIC_LABELS = {
    "customer_profit_t12m": "Customer profit (12 months)",
    "pct_unprofitable_customers": "Unprofitable customers",
    "unprofitable_revenue_share": "Revenue from unprofitable customers",
    "retention_rate": "Retention rate",
    "new_customers": "New customers",
    "nps": "NPS",
    "satisfaction_index": "Satisfaction index",
    "mean_profit_clv": "Mean profit CLV",
}
MONEY_METRICS = ("profit", "revenue", "clv")
STATUS_LABELS = {"green": "Green", "amber": "Amber", "red": "Red"}
TREND_ARROWS = {"up": ("\u2191", "up"), "down": ("\u2193", "down"), "flat": ("\u2192", "flat")}
ACRONYMS = {"ceo", "cfo", "coo", "cto", "cmo", "vp", "nps", "clv"}

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale print.
QUADRANTS = {
    "passive": ("Passive", "#009E73"),
    "carriage_trade": ("Carriage trade", "#0072B2"),
    "bargain_basement": ("Bargain basement", "#E69F00"),
    "aggressive": ("Aggressive", "#D55E00"),
}
IPA = {
    "concentrate_here": ("Concentrate here", "#D55E00"),
    "keep_up_the_good_work": ("Keep up the good work", "#009E73"),
    "low_priority": ("Low priority", "#7f7f7f"),
    "possible_overkill": ("Possible overkill", "#0072B2"),
}
POSITIVE, NEGATIVE = "#0072B2", "#D55E00"

CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --rule: #d9dde5; --panel: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 32px 48px; }
header { border-bottom: 2px solid var(--ink); padding-bottom: 14px; margin-bottom: 8px; }
header + section h2 { border-top: 0; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
.as-of { font-size: 18px; margin: 0 0 10px; color: var(--muted); }
.as-of strong { color: var(--ink); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-size: 13px;
          color: var(--muted); }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
nav { font-size: 13px; margin: 10px 0 0; }
nav a { color: var(--muted); margin-right: 14px; text-decoration: none; border-bottom: 1px dotted; }
section { margin-top: 30px; }
h2 { font-size: 21px; margin: 0 0 6px; padding-top: 6px; border-top: 1px solid var(--rule); }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase;
     letter-spacing: 0.04em; }
p { margin: 6px 0 10px; max-width: 72ch; }
.lead { font-size: 16px; }
.note { color: var(--muted); font-size: 13px; }
.unavailable { color: var(--muted); font-style: italic; background: var(--panel); padding: 10px 14px;
               border-radius: 4px; max-width: none; }
.callout { background: var(--panel); border-left: 4px solid #D55E00; padding: 10px 16px;
           border-radius: 0 4px 4px 0;
           max-width: 80ch; }
table.scorecard { width: 100%; table-layout: fixed; }
table.scorecard th:nth-child(1) { width: 32%; }
table.scorecard th:nth-child(5) { width: 11%; text-align: center; }
table.scorecard td:nth-child(5), table.scorecard td:nth-child(6),
table.scorecard th:nth-child(6) { text-align: center; }
table.scorecard th:nth-child(6) { width: 7%; }
table.scorecard th:nth-child(7) { width: 22%; padding-left: 16px; }
table.scorecard td:nth-child(7) { padding-left: 16px; }
.id { color: var(--muted); font-size: 12px; margin-left: 6px; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 14px; min-width: 50%; }
th, td { padding: 5px 12px 5px 0; text-align: left; border-bottom: 1px solid var(--rule);
         vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase;
     letter-spacing: 0.03em;
     border-bottom: 1px solid var(--ink); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
                 padding-left: 12px; }
.badge { display: inline-block; min-width: 64px; text-align: center; padding: 1px 8px; border-radius: 10px;
         font-size: 12px; font-weight: 600; color: #fff; }
.badge.green { background: #1b7f3b; }
.badge.amber { background: #c77700; }
.badge.red { background: #c0281c; }
.badge.grey { background: #e4e7ec; color: #5b6475; }
.trend { font-weight: 700; }
svg.chart { display: block; width: 100%; max-width: 820px; height: auto; margin: 8px 0 4px; }
svg.chart text { font-size: 12px; fill: var(--muted); }
svg.chart .grid { stroke: #eceef2; }
svg.chart .axis { stroke: var(--ink); }
svg.chart .axis-title { font-size: 13px; fill: var(--ink); font-weight: 600; }
svg.chart .reference { stroke: #8a93a3; stroke-dasharray: 5 4; }
svg.chart .median { stroke: #5b6475; stroke-dasharray: 3 3; }
svg.chart .corner { font-size: 14px; font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
svg.chart .label { fill: var(--ink); paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.chart .peak { fill: var(--ink); font-weight: 700; }
footer { margin-top: 36px; font-size: 12px; color: var(--muted); border-top: 1px solid var(--rule);
         padding-top: 8px; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  section, table, svg.chart { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""

# Counts each chart's visible data marks (class "mark" with a non-empty box) into <body data-charts-drawn>.
CHARTS_DRAWN_SCRIPT = """
(function () {
  var drawn = {};
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var marks = 0;
    svg.querySelectorAll("path.mark, circle.mark, rect.mark, polyline.mark").forEach(function (el) {
      var box = el.getBBox();
      if (box.width > 0 || box.height > 0) { marks += 1; }
    });
    drawn[svg.id] = marks;
  });
  document.body.setAttribute("data-charts-drawn", JSON.stringify(drawn));
})();
"""


class Html(str):
    """Markup that is already safe: table cells and page parts pass it through without escaping."""


def _esc(value: object) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


# --- formatting for people ----------------------------------------------------------------------------


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _signed(text: str, value: float, signed: bool) -> str:
    """``text`` (an absolute value) with a true minus when ``value`` is negative, and a plus if ``signed``."""
    if value < 0:
        return MINUS + text
    return ("+" + text) if signed and value > 0 else text


def money(value: float | None, signed: bool = False) -> str:
    """Money with thousands separators, rounded half up: no decimals from 10 up, cents below."""
    if _missing(value):
        return "\u2013"
    unit = Decimal(1) if abs(value) >= 10 else Decimal("0.01")
    text = f"{Decimal(str(abs(value))).quantize(unit, ROUND_HALF_UP):,}"  # half up, as people round money
    return _signed(text, value, signed)


def number(value: float | None, signed: bool = False) -> str:
    """A count or score: thousands separators, one decimal unless it is a whole number."""
    if _missing(value):
        return "\u2013"
    text = f"{abs(value):,.0f}" if float(value).is_integer() else f"{abs(value):,.1f}"
    return _signed(text, value, signed)


def percent(fraction: float | None) -> str:
    """A fraction (0-1) as a percentage with one decimal."""
    if _missing(fraction):
        return "\u2013"
    return _signed(f"{abs(fraction) * 100:.1f}{NBSP}%", fraction, False)


def _count(n: int, noun: str) -> str:
    """A count with its noun, plural unless one: "1 customer", "1,204 customers"."""
    return f"{number(n)} {noun}{'' if n == 1 else 's'}"


def _window(months: int, last: str) -> str:
    """The opening of a sentence about a window of months: Over the 12 months to Dec 2025 (or In Dec 2025)."""
    return f"In {last}" if months == 1 else f"Over the {months} months to {last}"


def month(value: object) -> str:
    """A period as a month, e.g. "Dec 2025"."""
    return pd.Timestamp(value).strftime("%b %Y")


def _timestamp(value: object) -> str:
    return pd.Timestamp(value).strftime("%-d %b %Y %H:%M UTC")


def _words(name: str) -> str:
    """snake_case as words, sentence case, known acronyms in capitals: head_of_sales -> Head of sales."""
    words = [w.upper() if w in ACRONYMS else w for w in str(name).replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def metric_label(metric: str) -> str:
    """The scorecard metric's name for people; unknown metrics as they are."""
    return METRIC_LABELS.get(metric, metric)


def _is_rate(metric: str) -> bool:
    return any(part in metric for part in ("pct_", "share", "rate"))


def metric_value(metric: str, value: float | None, signed: bool = False) -> str:
    """A scorecard value in its unit: rates as percentages (variances in points), money, or numbers."""
    if _is_rate(metric):
        if signed and not _missing(value):
            return _signed(f"{abs(value) * 100:.1f}{NBSP}pts", value, signed)
        return percent(value)
    if any(part in metric for part in MONEY_METRICS):
        return money(value, signed)
    return number(value, signed)


# --- HTML building blocks -----------------------------------------------------------------------------


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = (), css: str = ""
) -> Html:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned."""

    def cell(tag: str, index: int, value: object) -> str:
        align = ' class="num"' if index in numeric else ""
        return f"<{tag}{align}>{_esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    attributes = f' class="{css}"' if css else ""
    return Html(f"<table{attributes}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


Column = tuple[str, Callable[[Any], object], bool]  # header, the cell of a row, whether it is numeric


def _columns_table(columns: Sequence[Column], frame: pd.DataFrame) -> Html:
    """A table of ``frame``'s rows with one column per (header, cell, numeric) entry."""
    return _table(
        [header for header, _, _ in columns],
        [[cell(row) for _, cell, _ in columns] for row in frame.itertuples(index=False)],
        numeric=[i for i, (_, _, numeric) in enumerate(columns) if numeric],
    )


def _customer(customer_id: str, names: dict[str, str]) -> Html:
    """A customer's name with their id beside it, or the id alone when the name is not known."""
    name = names.get(customer_id)
    if not name:
        return Html(_esc(customer_id))
    return Html(f'{_esc(name)}<span class="id">{_esc(customer_id)}</span>')


def _section(section_id: str, heading: str, content: str) -> Html:
    return Html(f'<section id="{section_id}"><h2>{_esc(heading)}</h2>{content}</section>')


def _unavailable(table: str) -> Html:
    return Html(
        f'<p class="unavailable">Not available yet: this publication has no rows in marts.{table}.</p>'
    )


def _p(text: str, css: str = "") -> Html:
    attributes = f' class="{css}"' if css else ""
    return Html(f"<p{attributes}>{_esc(text)}</p>")


# --- SVG charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A chart's canvas: the data domain mapped onto the plot area inside margins left for axes and legend."""

    x_domain: tuple[float, float]
    y_domain: tuple[float, float]
    width: int = 820
    height: int = 420
    top: int = 36
    right: int = 24
    bottom: int = 58
    left: int = 78
    x_log: bool = False

    def x(self, value: float) -> float:
        lo, hi = self.x_domain
        if self.x_log:
            value, lo, hi = math.log10(value), math.log10(lo), math.log10(hi)
        return self.left + (value - lo) / (hi - lo) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        lo, hi = self.y_domain
        return self.height - self.bottom - (value - lo) / (hi - lo) * (self.height - self.top - self.bottom)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering ``lo``..``hi``."""
    if not hi > lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude * (1 + 1e-9))
    start, stop = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 10) for i in range(start, stop + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log axis covering ``lo``..``hi`` (both > 0): 1, 2 and 5 times powers of ten, or only the
    powers of ten when that would be more than ten ticks."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), (1,)):
        candidates = [round(m * 10.0**k, 12) for k in range(first, last + 1) for m in mantissas]
        start = max(c for c in candidates if c <= lo * (1 + 1e-9))
        stop = min(c for c in candidates if c >= hi * (1 - 1e-9))
        ticks = [c for c in candidates if start <= c <= stop]
        if len(ticks) <= 10:
            break
    return ticks


def _decimals(step: float) -> int:
    return next((d for d in range(7) if abs(round(step, d) - step) < 1e-9 * max(1.0, abs(step))), 6)


def _tick_formatter(ticks: Sequence[float], kind: str) -> Callable[[float], str]:
    """Tick labels for an axis of ``kind``: "fraction" (shown as %), "log-fraction" (the same on a log axis),
    "percent" (already 0-100) or "amount"."""
    if kind == "log-fraction":
        return lambda v: f"{v * 100:,.{_decimals(round(v * 100, 9))}f}{NBSP}%"
    step = ticks[1] - ticks[0]
    if kind == "fraction":
        d = _decimals(step * 100)
        return lambda v: _signed(f"{abs(v) * 100:.{d}f}{NBSP}%", v, False)
    if kind == "percent":
        d = _decimals(step)
        return lambda v: _signed(f"{abs(v):.{d}f}{NBSP}%", v, False)
    size, suffix = next(
        ((s, x) for s, x in ((1e9, "bn"), (1e6, "M"), (1e3, "k"), (1, "")) if step >= s), (1, "")
    )
    d = _decimals(step / size)
    return lambda v: "0" if v == 0 else _signed(f"{abs(v) / size:,.{d}f}{suffix}", v, False)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line class="{css}" x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"/>'


def _text(x: float, y: float, text: str, css: str = "", anchor: str = "start", fill: str = "") -> str:
    attributes = f' class="{css}"' if css else ""
    attributes += f' style="fill: {fill}"' if fill else ""  # a style: the page's CSS would beat an attribute
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{attributes}>{_esc(text)}</text>'


def _axes(
    frame: Frame,
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_kind: str,
    y_kind: str,
    x_title: str,
    y_title: str,
) -> str:
    """Grid lines, tick labels, the two axis lines and the axis titles."""
    x_label, y_label = _tick_formatter(x_ticks, x_kind), _tick_formatter(y_ticks, y_kind)
    left, right = frame.left, frame.width - frame.right
    top, bottom = frame.top, frame.height - frame.bottom
    parts = []
    for tick in y_ticks:
        parts.append(_line(left, frame.y(tick), right, frame.y(tick), "grid"))
        parts.append(_text(left - 8, frame.y(tick) + 4, y_label(tick), anchor="end"))
    for tick in x_ticks:
        parts.append(_line(frame.x(tick), top, frame.x(tick), bottom, "grid"))
        parts.append(_text(frame.x(tick), bottom + 18, x_label(tick), anchor="middle"))
    parts.append(_line(left, bottom, right, bottom, "axis"))
    parts.append(_line(left, top, left, bottom, "axis"))
    parts.append(_text((left + right) / 2, frame.height - 12, x_title, "axis-title", "middle"))
    middle = (top + bottom) / 2
    parts.append(
        f'<text class="axis-title" text-anchor="middle" transform="translate(18 {_f(middle)}) rotate(-90)">'
        f"{_esc(y_title)}</text>"
    )
    return "".join(parts)


def _svg(chart_id: str, title: str, frame: Frame, body: str) -> Html:
    return Html(
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-labelledby="{chart_id}-title"><title id="{chart_id}-title">{_esc(title)}</title>{body}</svg>'
    )


def _legend(frame: Frame, entries: Sequence[tuple[str, str]]) -> str:
    """A row of coloured dots and names above the plot area."""
    parts, x = [], float(frame.left)
    for name, colour in entries:
        parts.append(f'<circle cx="{_f(x + 5)}" cy="{frame.top - 17}" r="5" fill="{colour}"/>')
        parts.append(_text(x + 14, frame.top - 13, name, "label"))
        x += 24 + 7.2 * len(name)
    return "".join(parts)


def downsample(count: int, keep: Iterable[int], limit: int = MAX_CURVE_POINTS) -> list[int]:
    """About ``limit`` evenly spread positions of ``count``, always with the first, the last and ``keep``."""
    if count <= limit:
        return list(range(count))
    spread = np.linspace(0, count - 1, limit).round().astype(int)
    return sorted({*spread.tolist(), 0, count - 1, *keep})


def whale_curve_svg(curve: pd.DataFrame, as_of: str) -> Html:
    """Cumulative profit % against cumulative customer %, most profitable first; 100 % line and peak."""
    x = curve["cumulative_customer_pct"].astype(float).to_numpy()
    y = curve["cumulative_profit_pct"].astype(float).to_numpy()
    peak = int(np.argmax(y))
    kept = downsample(len(x), [peak])
    xs, ys = np.concatenate([[0.0], x[kept]]), np.concatenate([[0.0], y[kept]])
    y_ticks = nice_ticks(min(0.0, float(ys.min())), max(100.0, float(ys.max()) * 1.05))
    x_ticks = nice_ticks(0, 100, 5)
    frame = Frame((0, 100), (y_ticks[0], y_ticks[-1]))
    points = " ".join(f"{_f(frame.x(a))},{_f(frame.y(b))}" for a, b in zip(xs, ys, strict=True))
    px, py = frame.x(x[peak]), frame.y(y[peak])
    label = f"peak {y[peak]:.0f}{NBSP}% at {x[peak]:.0f}{NBSP}% of customers"
    right_side = px > frame.width * 0.6
    body = [
        _axes(
            frame,
            x_ticks,
            y_ticks,
            "percent",
            "percent",
            "Customers, most profitable first",
            "Cumulative profit",
        ),
        _line(frame.left, frame.y(100), frame.width - frame.right, frame.y(100), "reference"),
        # the curve ends at 100 % from above (loss-makers) or from below (none): label the other side
        _text(
            frame.width - frame.right - 6,
            frame.y(100) + (16 if y[peak] > 100.5 else -6),
            f"100{NBSP}% of total profit",
            "label",
            "end",
        ),
        f'<polyline class="mark" points="{points}" fill="none" stroke="{POSITIVE}" stroke-width="2.5"/>',
        f'<circle class="mark" cx="{_f(px)}" cy="{_f(py)}" r="5" fill="{NEGATIVE}"/>',
        _text(
            px + (-10 if right_side else 10), py - 10, label, "peak label", "end" if right_side else "start"
        ),
    ]
    if y_ticks[0] < 0:
        body.append(_line(frame.left, frame.y(0), frame.width - frame.right, frame.y(0), "axis"))
    return _svg("whale-curve-chart", f"Whale curve, {as_of}", frame, "".join(body))


def matrix_x_range(cost_per_revenue: np.ndarray) -> tuple[float, float]:
    """The cost-to-serve range the matrix shows on its log axis: the 1st to the 99th percentile (observed
    values, never pulled towards an outlier), above zero and at least a factor of ten wide."""
    positive = cost_per_revenue[cost_per_revenue > 0]
    floor = float(np.percentile(positive, 1, method="higher")) if len(positive) else 1e-3
    cap = float(np.percentile(cost_per_revenue, 99, method="lower"))
    return floor, max(cap, floor * 10)


def matrix_svg(
    points: pd.DataFrame, x_range: tuple[float, float], medians: tuple[float, float], as_of: str
) -> Html:
    """Customers by cost to serve per revenue (x, log, clipped to ``x_range``) and net price realisation."""
    raw = points["cost_to_serve_per_revenue"].astype(float).to_numpy()
    x, clipped = np.clip(raw, *x_range), (raw < x_range[0]) | (raw > x_range[1])
    y = points["net_price_realisation"].astype(float).to_numpy()
    x_ticks = log_ticks(*x_range)
    y_ticks = nice_ticks(float(y.min()), float(y.max()))
    frame = Frame((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]), height=480, x_log=True)
    dots = "".join(
        f'<circle class="mark" cx="{_f(frame.x(a))}" cy="{_f(frame.y(b))}" r="3.2" '
        + (  # a customer outside the range is a hollow dot at its edge
            f'fill="none" stroke="{QUADRANTS[q][1]}" stroke-width="1.5"/>'
            if beyond
            else f'fill="{QUADRANTS[q][1]}" fill-opacity="0.6"/>'
        )
        for a, b, q, beyond in zip(x, y, points["matrix_quadrant"], clipped, strict=True)
    )
    mx, my = medians
    left, right = frame.left + 8, frame.width - frame.right - 8
    top, bottom = frame.top + 18, frame.height - frame.bottom - 10
    corners = [
        _text(left, top, QUADRANTS["passive"][0], "corner", "start", QUADRANTS["passive"][1]),
        _text(right, top, QUADRANTS["carriage_trade"][0], "corner", "end", QUADRANTS["carriage_trade"][1]),
        _text(
            left,
            bottom,
            QUADRANTS["bargain_basement"][0],
            "corner",
            "start",
            QUADRANTS["bargain_basement"][1],
        ),
        _text(right, bottom, QUADRANTS["aggressive"][0], "corner", "end", QUADRANTS["aggressive"][1]),
    ]
    body = [
        _axes(
            frame,
            x_ticks,
            y_ticks,
            "log-fraction",
            "fraction",
            "Cost to serve per unit of net revenue (log scale)",
            "Net price realisation (net / list)",
        ),
        dots,
        _line(frame.x(mx), frame.top, frame.x(mx), frame.height - frame.bottom, "median"),
        _line(frame.left, frame.y(my), frame.width - frame.right, frame.y(my), "median"),
        *corners,
        _legend(frame, list(QUADRANTS.values())),
    ]
    return _svg("matrix-chart", f"Customer profitability matrix, {as_of}", frame, "".join(body))


def drivers_svg(drivers: pd.DataFrame, as_of: str) -> Html:
    """The importance-performance grid: importance weight (x) against mean score (y), lines at the means."""
    x = drivers["importance_weight"].astype(float).to_numpy()
    y = drivers["mean_score"].astype(float).to_numpy()
    mx, my = float(x.mean()), float(y.mean())
    x_pad, y_pad = max(np.ptp(x) * 0.15, 0.02), max(np.ptp(y) * 0.25, 0.2)
    x_ticks = nice_ticks(max(0.0, float(x.min()) - x_pad), float(x.max()) + x_pad, 5)
    y_ticks = nice_ticks(float(y.min()) - y_pad, float(y.max()) + y_pad, 5)
    frame = Frame((x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1]), height=440, top=24)
    body = [
        _axes(
            frame,
            x_ticks,
            y_ticks,
            "fraction",
            "amount",
            "Importance (share of explained satisfaction)",
            "Mean score",
        ),
        _line(frame.x(mx), frame.top, frame.x(mx), frame.height - frame.bottom, "median"),
        _line(frame.left, frame.y(my), frame.width - frame.right, frame.y(my), "median"),
    ]
    left, right = frame.left + 8, frame.width - frame.right - 8
    top, bottom = frame.top + 18, frame.height - frame.bottom - 10
    for key, x_pos, y_pos, anchor in (
        ("possible_overkill", left, top, "start"),
        ("keep_up_the_good_work", right, top, "end"),
        ("low_priority", left, bottom, "start"),
        ("concentrate_here", right, bottom, "end"),
    ):
        body.append(_text(x_pos, y_pos, IPA[key][0], "corner", anchor, IPA[key][1]))
    for a, b, name, quadrant in zip(x, y, drivers["name"], drivers["ipa_quadrant"], strict=True):
        colour = IPA.get(quadrant, ("", "#5b6475"))[1]
        cx, cy = frame.x(a), frame.y(b)
        on_right = cx > frame.width * 0.7
        body.append(f'<circle class="mark" cx="{_f(cx)}" cy="{_f(cy)}" r="7" fill="{colour}"/>')
        body.append(
            _text(cx + (-12 if on_right else 12), cy + 4, name, "label", "end" if on_right else "start")
        )
    return _svg("drivers-chart", f"Satisfaction drivers, {as_of}", frame, "".join(body))


def histogram_bins(values: np.ndarray, target_bins: int = 24) -> np.ndarray:
    """Round-width bin edges over the bulk of ``values``; the far tails are left to the outer bins.

    The bulk is the 1st..99th percentiles, narrowed to Tukey's far-out fences (3 interquartile ranges beyond
    the quartiles) so that a handful of extreme customers cannot squash everyone else into one bar.
    """
    p1, q1, q3, p99 = np.percentile(values, [1, 25, 75, 99])
    spread = 3 * (q3 - q1)
    lo, hi = max(p1, q1 - spread), min(p99, q3 + spread)
    return np.array(nice_ticks(float(lo), float(hi), target_bins))


def clv_histogram_svg(values: np.ndarray, as_of: str) -> Html:
    """A histogram of profit CLV; bars below zero in the loss colour."""
    edges = histogram_bins(values)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    y_ticks = nice_ticks(0, max(1, int(counts.max())), 5)
    x_ticks = [t for t in nice_ticks(float(edges[0]), float(edges[-1]), 6) if edges[0] <= t <= edges[-1]]
    frame = Frame((float(edges[0]), float(edges[-1])), (0, y_ticks[-1]), height=380, top=20)
    bars = []
    for count, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        if count:
            x0, x1, top = frame.x(lo), frame.x(hi), frame.y(count)
            bars.append(
                f'<rect class="mark" x="{_f(x0 + 0.5)}" y="{_f(top)}" width="{_f(max(x1 - x0 - 1, 1))}" '
                f'height="{_f(frame.y(0) - top)}" fill="{NEGATIVE if hi <= 0 else POSITIVE}"/>'
            )
    body = [
        _axes(
            frame, x_ticks, y_ticks, "amount", "amount", "Expected profit over the CLV horizon", "Customers"
        ),
        *bars,
    ]
    if edges[0] < 0 < edges[-1]:
        body.append(_line(frame.x(0), frame.top, frame.x(0), frame.height - frame.bottom, "reference"))
    return _svg("clv-chart", f"Distribution of profit CLV, {as_of}", frame, "".join(body))


# --- reading the publication --------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).fetchall()
    return {name for (name,) in rows}


def _latest(con: duckdb.DuckDBPyConnection, tables: set[str], table: str) -> pd.DataFrame | None:
    """The rows of the table's latest period, or None when the table is missing or empty."""
    if table not in tables:
        return None
    frame = con.execute(
        f"select * from marts.{table} where period = (select max(period) from marts.{table})"
    ).df()
    return frame if len(frame) else None


def _last_12_months(con: duckdb.DuckDBPyConnection, tables: set[str], table: str) -> pd.DataFrame | None:
    """The rows of the 12 periods ending with the table's latest, or None when it is missing or empty."""
    if table not in tables:
        return None
    frame = con.execute(
        f"select * from marts.{table} "
        f"where period > (select max(period) from marts.{table}) - interval 12 month"
    ).df()
    return frame if len(frame) else None


def _customer_names(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, str]:
    """Each customer's latest name from marts.customer_profitability, when it has names."""
    if "customer_profitability" not in tables:
        return {}
    columns = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'customer_profitability'"
    ).fetchall()
    if ("customer_name",) not in columns:
        return {}
    rows = con.execute(
        "select customer_id, arg_max(customer_name, period) from marts.customer_profitability "
        "where customer_name is not null group by customer_id"
    ).fetchall()
    return dict(rows)


# --- sections -----------------------------------------------------------------------------------------


def _header(con: duckdb.DuckDBPyConnection, tables: set[str], generated: datetime) -> Html:
    as_of = None
    if "customer_profitability" in tables:
        (as_of,) = con.execute("select max(period) from marts.customer_profitability").fetchone()
    run = None
    if "publish_log" in tables:
        run = con.execute(
            "select run_id, published_at from marts.publish_log order by published_at desc limit 1"
        ).fetchone()
    as_of_text = f"As of <strong>{month(as_of)}</strong>" if as_of is not None else "As of: not available yet"
    run_text = (
        f"run <code>{_esc(run[0])}</code>, published {_esc(_timestamp(run[1]))}"
        if run
        else "not available yet"
    )
    links = [
        ("scorecard", "Scorecard"),
        ("whale-curve", "Whale curve"),
        ("matrix", "Profitability matrix"),
        ("drivers", "Satisfaction drivers"),
        ("clv", "Customer lifetime value"),
        ("costing", "Costing comparison"),
    ]
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in links)
    return Html(
        f'<header><h1>Customer profitability</h1><p class="as-of">{as_of_text}</p>'
        f'<dl class="meta"><dt>Publication</dt><dd>{run_text}</dd>'
        f"<dt>Generated</dt><dd>{_esc(_timestamp(generated))}</dd></dl><nav>{nav}</nav></header>"
    )


def _status_badge(status: object) -> Html:
    if _missing(status) or status not in STATUS_LABELS:
        return Html('<span class="badge grey">no target</span>')
    return Html(f'<span class="badge {status}">{STATUS_LABELS[status]}</span>')


def _trend(trend: object) -> Html:
    if _missing(trend) or trend not in TREND_ARROWS:
        return Html("\u2013")
    arrow, word = TREND_ARROWS[trend]
    return Html(f'<span class="trend" title="{word}" aria-label="{word}">{arrow}</span>')


def _metric_order(metric: str) -> tuple[int, str]:
    order = list(METRIC_LABELS)
    return (order.index(metric) if metric in order else len(order), metric)


def _scorecard_table(rows: pd.DataFrame) -> Html:
    ordered = sorted(rows.itertuples(index=False), key=lambda r: _metric_order(r.metric))
    return _table(
        ["Metric", "Actual", "Target", "Variance", "Status", "Trend", "Owner"],
        [
            [
                metric_label(r.metric),
                metric_value(r.metric, r.actual),
                metric_value(r.metric, r.target),
                metric_value(r.metric, r.variance, signed=True),
                _status_badge(r.status),
                _trend(r.trend),
                _words(r.owner) if not _missing(r.owner) else "\u2013",
            ]
            for r in ordered
        ],
        numeric=(1, 2, 3),
        css="scorecard",
    )


def incentive_attainment(scorecard: pd.DataFrame) -> pd.DataFrame:
    """Per owner, over segment 'all': the incentive weight of metrics on green out of the owner's total."""
    rows = scorecard[scorecard["segment"] == "all"].assign(
        weight=lambda f: f["incentive_weight"].astype(float).fillna(0.0),
        earned=lambda f: np.where(f["status"] == "green", f["weight"], 0.0),
        on_green=lambda f: (f["status"] == "green").astype(int),
    )
    summary = rows.groupby("owner", as_index=False).agg(
        metrics=("metric", "size"),
        on_green=("on_green", "sum"),
        earned=("earned", "sum"),
        total=("weight", "sum"),
    )
    summary["attainment"] = (summary["earned"] / summary["total"]).where(summary["total"] > 0)
    return summary.sort_values(["total", "owner"], ascending=[False, True], ignore_index=True)


def _scorecard(scorecard: pd.DataFrame | None) -> Html:
    if scorecard is None:
        return _section("scorecard", "Scorecard", _unavailable("customer_scorecard"))
    segments = sorted(scorecard["segment"].unique(), key=lambda s: (s != "all", s))
    parts = [
        _p(
            f"Customer scorecard for {month(scorecard['period'].iloc[0])}: each metric against its target.",
            "lead",
        )
    ]
    for segment in segments:
        heading = "All customers" if segment == "all" else _words(segment)
        parts.append(f"<h3>{_esc(heading)}</h3>")
        parts.append(_scorecard_table(scorecard[scorecard["segment"] == segment]))
    attainment = incentive_attainment(scorecard)
    if len(attainment):
        parts.append("<h3>Incentive attainment</h3>")
        parts.append(
            _p(
                "Incentive weight of each owner's company-wide metrics that are on green, "
                "out of the weight they own.",
                "note",
            )
        )
        parts.append(
            _table(
                ["Owner", "Metrics", "On green", "Weight earned", "Weight owned", "Attainment"],
                [
                    [
                        _words(r.owner),
                        number(r.metrics),
                        number(r.on_green),
                        f"{r.earned:.2f}",
                        f"{r.total:.2f}",
                        percent(r.attainment),
                    ]
                    for r in attainment.itertuples(index=False)
                ],
                numeric=(1, 2, 3, 4, 5),
            )
        )
    return _section("scorecard", "Scorecard", "".join(parts))


def _whale_curve(curve: pd.DataFrame | None) -> Html:
    title = "Whale curve"
    if curve is not None:
        curve = curve.dropna(subset=["cumulative_profit_pct", "cumulative_customer_pct"]).sort_values(
            "customer_rank"
        )
    if curve is None or curve.empty:
        return _section("whale-curve", title, _unavailable("whale_curve"))
    as_of = month(curve["period"].iloc[0])
    total = float(curve["cumulative_profit"].astype(float).iloc[-1])
    peak = curve.loc[curve["cumulative_profit_pct"].astype(float).idxmax()]
    months = int(curve["months_in_window"].max()) if "months_in_window" in curve else 12
    lead = (
        f"{_window(months, as_of)}, {_count(len(curve), 'customer')} earned a total profit of {money(total)} "
        "(activity-based costing)."
    )
    if total > 0:
        peak_pct, share = float(peak["cumulative_profit_pct"]), float(peak["cumulative_customer_pct"])
        lead += (
            f" The most profitable {share:.0f}{NBSP}% of customers earned {peak_pct:.0f}{NBSP}% of it; "
            f"the other {100 - share:.0f}{NBSP}% gave away {peak_pct - 100:.0f}{NBSP}%."
        )
    return _section("whale-curve", title, _p(lead, "lead") + whale_curve_svg(curve, as_of))


def _matrix(profitability: pd.DataFrame | None) -> Html:
    title = "Profitability matrix"
    if profitability is None:
        return _section("matrix", title, _unavailable("customer_profitability"))
    as_of = month(profitability["period"].iloc[0])
    classified = profitability[profitability["matrix_quadrant"].isin(list(QUADRANTS))].dropna(
        subset=["cost_to_serve_per_revenue", "net_price_realisation"]
    )
    if classified.empty:
        return _section("matrix", title, _p(f"No customer could be classified in {as_of}.", "unavailable"))
    x = classified["cost_to_serve_per_revenue"].astype(float)
    x_range = matrix_x_range(x.to_numpy())
    medians = (float(x.median()), float(classified["net_price_realisation"].astype(float).median()))
    shown = (
        classified.sample(MAX_SCATTER_POINTS, random_state=0)
        if len(classified) > MAX_SCATTER_POINTS
        else classified
    )
    notes = [f"Each dot is a customer in {as_of}; dashed lines are the medians."]
    if len(classified) < len(profitability):
        unclassified = _count(len(profitability) - len(classified), "customer")
        notes.append(f"Not shown: {unclassified} without revenue or list price.")
    outside = int(((x < x_range[0]) | (x > x_range[1])).sum())
    if outside:
        notes.append(
            f"Drawn as hollow dots at the edge: {_count(outside, 'customer')} with cost to serve outside "
            f"{percent(x_range[0])} to {percent(x_range[1])} of revenue (the 1st to 99th percentile)."
        )
    if len(shown) < len(classified):
        notes.append(
            f"A fixed sample of {number(len(shown))} of {number(len(classified))} customers is drawn."
        )
    summary = classified.groupby("matrix_quadrant").agg(
        customers=("customer_id", "size"), revenue=("net_revenue", "sum"), profit=("abc_profit", "sum")
    )
    table = _table(
        ["Quadrant", "Customers", "Net revenue", "ABC profit"],
        [
            [
                name,
                number(summary.at[key, "customers"]),
                money(summary.at[key, "revenue"]),
                money(summary.at[key, "profit"]),
            ]
            for key, (name, _) in QUADRANTS.items()
            if key in summary.index
        ],
        numeric=(1, 2, 3),
    )
    lead = _p(
        "Where customers sit on price and cost to serve (Shapiro et al.): passive customers pay well and "
        "cost little; aggressive ones push price down and cost a lot to serve.",
        "lead",
    )
    chart = matrix_svg(shown, x_range, medians, as_of)
    return _section("matrix", title, lead + chart + _p(" ".join(notes), "note") + table)


def _driver_name(question_id: str) -> str:
    name = question_id[5:] if question_id.upper().startswith("ATTR_") else question_id
    return _words(name.lower())


def _drivers(drivers: pd.DataFrame | None) -> Html:
    title = "Satisfaction drivers"
    if drivers is None:
        return _section("drivers", title, _unavailable("satisfaction_drivers"))
    as_of = month(drivers["period"].iloc[0])
    drivers = drivers.assign(name=drivers["question_id"].map(_driver_name)).sort_values(
        "importance_weight", ascending=False
    )
    lead = _p(
        "Which survey attributes drive overall satisfaction (importance) and how customers rate them "
        f"(mean score), from the surveys to {as_of}. Lines mark the averages.",
        "lead",
    )
    table = _table(
        ["Attribute", "Importance", "Mean score", "Priority"],
        [
            [
                r.name,
                percent(r.importance_weight),
                f"{r.mean_score:.2f}",
                IPA.get(r.ipa_quadrant, (_words(r.ipa_quadrant),))[0],
            ]
            for r in drivers.itertuples(index=False)
        ],
        numeric=(1, 2),
    )
    return _section("drivers", title, lead + drivers_svg(drivers, as_of) + table)


def _clv(clv: pd.DataFrame | None, names: dict[str, str]) -> Html:
    title = "Customer lifetime value"
    if clv is None:
        return _section("clv", title, _unavailable("customer_clv"))
    as_of = month(clv["period"].iloc[0])
    values = clv["clv_profit"].astype(float).to_numpy()
    negative = int((values < 0).sum())
    lead = _p(
        f"{_count(len(clv), 'customer')} scored as of {as_of}: expected profit over the horizon totals "
        f"{money(values.sum())}, {money(float(np.mean(values)))} per customer on average; "
        f"{number(negative)} ({percent(negative / len(values))}) are expected to lose money.",
        "lead",
    )
    parts = [lead, clv_histogram_svg(values, as_of)]
    edges = histogram_bins(values)
    outside = [
        f"{_count(int(n), 'customer')} {side} {money(edge)}"
        for n, side, edge in (
            ((values < edges[0]).sum(), "below", edges[0]),
            ((values > edges[-1]).sum(), "above", edges[-1]),
        )
        if n
    ]
    if outside:
        parts.append(_p(f"Counted in the outermost bars: {' and '.join(outside)}.", "note"))
    prone = clv[clv["defection_prone"].fillna(False).astype(bool)]
    by = "profit_t12m" if "profit_t12m" in clv else "clv_profit"
    top = prone.sort_values(by, ascending=False).head(10)
    parts.append("<h3>Most valuable customers at risk of defecting</h3>")
    if top.empty:
        parts.append(_p("No customer is flagged as defection-prone.", "note"))
        return _section("clv", title, "".join(parts))
    parts.append(
        _p(
            f"{_count(len(prone), 'customer')} of high past profit flagged as defection-prone (their "
            "probability of still being a customer, P(alive), has dropped); the most valuable:",
            "note",
        )
    )
    columns: list[Column] = [("Customer", lambda r: _customer(r.customer_id, names), False)]
    if by == "profit_t12m":
        columns.append(("Profit, last 12 months", lambda r: money(r.profit_t12m), True))
    columns += [
        ("Profit CLV", lambda r: money(r.clv_profit), True),
        ("P(alive)", lambda r: percent(r.p_alive), True),
    ]
    parts.append(_columns_table(columns, top))
    return _section("clv", title, "".join(parts))


def costing_flips(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per customer over the given periods: net revenue, ABC and traditional profit, whether the sign differs
    and whether it is a hidden loss (profitable under traditional costing, not under ABC); with the latest
    segment when the mart has one."""
    amounts = ["net_revenue", "abc_profit", "traditional_profit"]
    totals = comparison.groupby("customer_id")[amounts].sum().astype(float)
    if "segment" in comparison:
        totals["segment"] = comparison.sort_values("period").groupby("customer_id")["segment"].last()
    totals["flip"] = (totals["abc_profit"] > 0) != (totals["traditional_profit"] > 0)
    totals["hidden_loss"] = (totals["traditional_profit"] > 0) & (totals["abc_profit"] <= 0)
    return totals.reset_index()


def _costing(comparison: pd.DataFrame | None, names: dict[str, str]) -> Html:
    title = "Costing comparison"
    if comparison is None:
        return _section("costing", title, _unavailable("costing_comparison"))
    months = comparison["period"].nunique()
    to = month(comparison["period"].max())
    totals = costing_flips(comparison)
    flips, hidden = int(totals["flip"].sum()), int(totals["hidden_loss"].sum())
    sentence = (
        f"{_window(months, to)}, {number(flips)} of {_count(len(totals), 'customer')} "
        f"({percent(flips / len(totals))}) change sign between traditional (revenue-spread) and "
        f"activity-based costing: {number(hidden)} look profitable under traditional costing but lose money "
        f"once their cost to serve is traced (hidden losses), {number(flips - hidden)} the other way round."
    )
    parts = [f'<div class="callout">{_p(sentence)}</div>']
    losses = totals[totals["hidden_loss"]].sort_values("net_revenue", ascending=False).head(5)
    if len(losses):
        columns: list[Column] = [("Customer", lambda r: _customer(r.customer_id, names), False)]
        if "segment" in losses:
            columns.append(("Segment", lambda r: _words(r.segment), False))
        columns += [
            ("Net revenue", lambda r: money(r.net_revenue), True),
            ("Traditional profit", lambda r: money(r.traditional_profit), True),
            ("ABC profit", lambda r: money(r.abc_profit), True),
        ]
        parts += ["<h3>Largest hidden losses</h3>", _columns_table(columns, losses)]
    return _section("costing", title, "".join(parts))


# --- the page -----------------------------------------------------------------------------------------


def render_report(database: Path, generated: datetime | None = None) -> str:
    """The report of the publication in ``database`` as one HTML page."""
    generated = generated or datetime.now(UTC)
    with duckdb.connect(str(database), read_only=True) as con:
        tables = _tables(con)
        header = _header(con, tables, generated)
        names = _customer_names(con, tables)
        sections = [
            _scorecard(_latest(con, tables, "customer_scorecard")),
            _whale_curve(_latest(con, tables, "whale_curve")),
            _matrix(_latest(con, tables, "customer_profitability")),
            _drivers(_latest(con, tables, "satisfaction_drivers")),
            _clv(_latest(con, tables, "customer_clv"), names),
            _costing(_last_12_months(con, tables, "costing_comparison"), names),
        ]
    footer = (
        f"<footer>Generated from {_esc(database.name)} (schema marts). Money in the ledger's currency; "
        "profit is activity-based unless stated.</footer>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Customer profitability</title><style>{CSS}</style></head>"
        f"<body><main>{header}{''.join(sections)}{footer}</main>"
        f"<script>{CHARTS_DRAWN_SCRIPT}</script></body></html>"
    )


def write_report(database: Path, folder: Path) -> Path:
    """Write the report of ``database``'s publication to ``folder/index.html`` atomically; return its path."""
    page = render_report(Path(database))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / REPORT
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{REPORT}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target
