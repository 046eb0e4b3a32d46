"""Inline SVG without scripts: latency charts, the 30-day uptime bar and the status badge.

Part of the site edge, stdlib only. Every function returns complete, escaped SVG markup built
from numbers and the site's own words (no endpoint text ever reaches these drawings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from monitor.models import Status
from monitor.site.views import as_utc, milliseconds, percent
from monitor.snapshot import DayFigures, LatencyPoint

CHART_WIDTH, CHART_HEIGHT = 600, 170
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 52, 592, 10, 140
BADGE_COLOURS = {
    Status.HEALTHY: "#2e7d32",
    Status.DEGRADED: "#8f5600",
    Status.DOWN: "#c62828",
    Status.UNKNOWN: "#5f6368",
}
"""White text on each of these has a contrast ratio of at least 4.5:1."""


def _nice_ceiling(value: float) -> float:
    """Return 1, 2 or 5 x 10^k at or above `value` (the chart's top gridline)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return 10.0 * power


def _num(value: float) -> str:
    """Return a compact coordinate (one decimal, no trailing zero)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def latency_chart(
    points: Sequence[LatencyPoint], now: datetime, span: timedelta, ident: str, label: str
) -> str:
    """Return a line chart of latencies over [now - span, now]; unanswered checks as red ticks."""
    end = as_utc(now)
    start = end - span
    inside = [p for p in points if start <= as_utc(p.at) <= end]
    answered = [p.latency_ms for p in inside if p.latency_ms is not None]
    top = _nice_ceiling(max(answered, default=0.0))
    width = PLOT_RIGHT - PLOT_LEFT
    height = PLOT_BOTTOM - PLOT_TOP
    seconds = span.total_seconds()

    def x_of(moment: datetime) -> float:
        return PLOT_LEFT + width * (as_utc(moment) - start).total_seconds() / seconds

    def y_of(latency: float) -> float:
        return PLOT_BOTTOM - height * min(latency, top) / top

    if answered:
        summary = (
            f"{len(answered)} answered of {len(inside)} points; "
            f"lowest {milliseconds(min(answered))}, highest {milliseconds(max(answered))}"
        )
    else:
        summary = "no answered checks in this period"
    parts = [
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-t">{escape(label)}</title>',
        f'<desc id="{ident}-d">{escape(summary)}</desc>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = _num(PLOT_BOTTOM - height * fraction)
        parts.append(f'<line class="grid" x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="axis" x="{PLOT_LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(milliseconds(top * fraction))}</text>'
        )
    for moment, anchor in ((start, "start"), (start + span / 2, "middle"), (end, "end")):
        text = moment.strftime("%m-%d %H:%M") if span > timedelta(days=1) else f"{moment:%H:%M}"
        parts.append(
            f'<text class="axis" x="{_num(x_of(moment))}" y="{CHART_HEIGHT - 8}" '
            f'text-anchor="{anchor}">{escape(text)} UTC</text>'
        )
    path: list[str] = []
    pen_down = False
    for point in inside:
        if point.latency_ms is None:
            pen_down = False
            x = _num(x_of(point.at))
            parts.append(
                f'<line class="miss" x1="{x}" x2="{x}" y1="{PLOT_BOTTOM}" y2="{PLOT_BOTTOM - 8}"/>'
            )
            continue
        command = "L" if pen_down else "M"
        path.append(f"{command}{_num(x_of(point.at))} {_num(y_of(point.latency_ms))}")
        pen_down = True
    if path:
        parts.append(f'<path class="line" d="{" ".join(path)}"/>')
    if len(answered) == 1:
        only = next(p for p in inside if p.latency_ms is not None)
        assert only.latency_ms is not None
        parts.append(
            f'<circle class="dot" cx="{_num(x_of(only.at))}" '
            f'cy="{_num(y_of(only.latency_ms))}" r="3"/>'
        )
    if not answered:
        parts.append(
            f'<text class="empty" x="{(PLOT_LEFT + PLOT_RIGHT) // 2}" '
            f'y="{(PLOT_TOP + PLOT_BOTTOM) // 2}" text-anchor="middle">No answered checks</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def uptime_class(uptime: float | None) -> str:
    """Return the CSS class of a day cell: colour by uptime, grey without conclusive checks."""
    if uptime is None:
        return "u-none"
    if uptime >= 0.995:
        return "u-good"
    if uptime >= 0.95:
        return "u-fair"
    if uptime >= 0.8:
        return "u-poor"
    return "u-bad"


def day_tooltip(day: DayFigures) -> str:
    """Return the tooltip text of one day's cell."""
    counts = (
        f"{day.passes} pass, {day.soft_fails} soft fail, {day.hard_fails} hard fail, "
        f"{day.inconclusive} inconclusive"
    )
    if day.uptime is None:
        head = f"{day.day.isoformat()}: no conclusive check"
    else:
        head = f"{day.day.isoformat()}: uptime {percent(day.uptime)}"
    tail = f"; p50 {milliseconds(day.p50_ms)}" if day.p50_ms is not None else ""
    return f"{head} ({counts}){tail}"


def uptime_bar(days: Sequence[DayFigures], ident: str) -> str:
    """Return one cell per UTC day, oldest on the left, each with its figures as a tooltip."""
    cell, gap, height = 18, 3, 28
    width = max(1, len(days)) * (cell + gap) - gap
    rated = [day for day in days if day.uptime is not None]
    summary = f"{len(rated)} of {len(days)} days with conclusive checks"
    if rated:
        worst = min(rated, key=lambda d: (d.uptime or 0.0, d.day))
        summary += f"; lowest {worst.day.isoformat()} at {percent(worst.uptime)}"
    parts = [
        f'<svg class="uptime" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" preserveAspectRatio="none">',
        f'<title id="{ident}-t">Uptime per day, last {len(days)} days</title>',
        f'<desc id="{ident}-d">{escape(summary)}</desc>',
    ]
    for index, day in enumerate(days):
        parts.append(
            f'<rect class="{uptime_class(day.uptime)}" x="{index * (cell + gap)}" y="0" '
            f'width="{cell}" height="{height}" rx="2"><title>{escape(day_tooltip(day))}</title>'
            "</rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _text_width(text: str) -> int:
    """Return an estimate of `text`'s width in 11 px Verdana (shields.io's font)."""
    wide = sum(1 for char in text if char in "mwMW%")
    narrow = sum(1 for char in text if char in "il.,:;!|' ")
    return round(7 * (len(text) - wide - narrow) + 10 * wide + 3.5 * narrow)


def badge(status: Status, uptime: float | None) -> str:
    """Return a shields-style badge: `x402 | healthy 99.9%` in the status colour."""
    label = "x402"
    message = status.value if uptime is None else f"{status.value} {percent(uptime)}"
    left = _text_width(label) + 12
    right = _text_width(message) + 12
    total = left + right
    colour = BADGE_COLOURS[status]
    title = f"{label}: {message}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" '
        f'role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{escape(message)}</text></g></svg>\n'
    )
