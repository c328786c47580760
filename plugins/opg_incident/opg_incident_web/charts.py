"""Statistics for /stats as chart geometry: months, incidents per severity (stacked bars) and the
median time to resolve. Geometry only; the template draws the SVG (and escapes every label).
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 40


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # css modifier: red, orange, green, grey, blue
    title: str  # tooltip and accessible text


@dataclass
class Chart:
    title: str
    description: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, label)
    rows: list[list[str]] = field(default_factory=list)  # the data as a table, first row = headings

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @property
    def baseline(self) -> int:
        return self.height - BOTTOM


def month_starts(now: dt.datetime, zone, count: int) -> list[dt.datetime]:
    """The first instants of the last `count` months (this one included), in the zone, oldest first."""
    local = now.astimezone(zone)
    year, month = local.year, local.month
    starts = []
    for _ in range(count):
        starts.append(dt.datetime(year, month, 1, tzinfo=zone))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def nice_scale(top: float, ticks: int = 4) -> tuple[float, float]:
    """A round axis maximum ≥ top and its tick step (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0, 0.25 if ticks >= 4 else 0.5
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(top / step - 1e-9), step


def _month_index(starts: list[dt.datetime], when: dt.datetime, zone) -> int | None:
    local = when.astimezone(zone)
    for i, start in enumerate(starts):
        if (start.year, start.month) == (local.year, local.month):
            return i
    return None


def _frame(chart: Chart, starts: list[dt.datetime], top: float, step: float, fmt) -> float:
    """Axes and labels; returns the pixels per unit."""
    plot_h = chart.baseline - TOP
    scale = plot_h / top
    value = 0.0
    while value <= top + 1e-9:
        chart.y_ticks.append((chart.baseline - value * scale, fmt(value)))
        value += step
    slot = (chart.plot_right - chart.plot_left) / len(starts)
    every = max(1, math.ceil(len(starts) / 12))
    for i, start in enumerate(starts):
        if i % every == 0 or i == len(starts) - 1:
            label = f"{start:%b}" + (f" {start:%y}" if start.month == 1 or i == 0 else "")
            chart.x_labels.append((chart.plot_left + slot * (i + 0.5), label))
    return scale


def severity_chart(facts, settings, starts: list[dt.datetime]) -> Chart:
    zone = settings.zone
    series = [(s.key, s.name, ("red", "orange", "green")[min(i, 2)]) for i, s in enumerate(settings.severities)]
    series.append((None, "No severity", "grey"))
    known = {s.key for s in settings.severities}
    counts = [{key: 0 for key, _, _ in series} for _ in starts]
    for f in facts:
        i = _month_index(starts, f.declared_at, zone)
        if i is not None:
            counts[i][f.severity if f.severity in known else None] += 1
    chart = Chart("Incidents per severity", "Incidents declared each month, by severity; drills left out.",
                  "incidents")
    chart.legend = [(css, name) for _, name, css in series]
    top, step = nice_scale(max([sum(c.values()) for c in counts] + [4]))
    step = max(1.0, step)
    scale = _frame(chart, starts, top, step, lambda v: f"{v:g}")
    slot = (chart.plot_right - chart.plot_left) / len(starts)
    for i, (start, month) in enumerate(zip(starts, counts)):
        y = float(chart.baseline)
        for key, name, css in series:
            n = month[key]
            if n:
                h = n * scale
                y -= h
                chart.bars.append(Bar(chart.plot_left + slot * i + slot * 0.15, y, slot * 0.7, h, css,
                                      f"{start:%B %Y}: {n} {name}"))
    chart.rows = [["Month"] + [name for _, name, _ in series] + ["Total"]]
    chart.rows += [[f"{start:%B %Y}"] + [str(month[key]) for key, _, _ in series] + [str(sum(month.values()))]
                   for start, month in zip(starts, counts)]
    return chart


def resolve_chart(facts, settings, starts: list[dt.datetime]) -> Chart:
    """Median hours from declared to closed, by month declared; reports of past events left out
    (their declared time is when they were reported, not when the trouble started)."""
    zone = settings.zone
    hours: list[list[float]] = [[] for _ in starts]
    for f in facts:
        if f.report or f.closed_at is None:
            continue
        i = _month_index(starts, f.declared_at, zone)
        if i is not None:
            hours[i].append(f.time_to_resolve.total_seconds() / 3600)
    medians = [statistics.median(h) if h else None for h in hours]
    chart = Chart("Time to resolve", "Median hours from declared to resolved, by month declared; drills and "
                  "reports of past events left out.", "hours")
    top, step = nice_scale(max([m for m in medians if m is not None] + [1]))
    scale = _frame(chart, starts, top, step, lambda v: f"{v:g} h")
    slot = (chart.plot_right - chart.plot_left) / len(starts)
    for i, (start, median) in enumerate(zip(starts, medians)):
        if median is not None:
            h = max(1.0, median * scale)
            chart.bars.append(Bar(chart.plot_left + slot * i + slot * 0.15, chart.baseline - h, slot * 0.7, h,
                                  "blue", f"{start:%B %Y}: median {_hours(median)} over {len(hours[i])} resolved"))
    chart.legend = [("blue", "Median time to resolve")]
    chart.rows = [["Month", "Resolved", "Median", "Longest"]]
    chart.rows += [[f"{start:%B %Y}", str(len(h)), _hours(median) if h else "-", _hours(max(h)) if h else "-"]
                   for start, h, median in zip(starts, hours, medians)]
    return chart


def _hours(value: float) -> str:
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{value:.1f} h"
