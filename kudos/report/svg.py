"""Inline SVG charts for the report: plain values in, SVG text out (standard library only).

Every element that draws a series carries ``data-series`` (one of ``SERIES_COLORS``' keys), so the
rendered page can be checked, and restyled, by series. Each chart is ``role="img"`` with a <title>
and a <desc> it is labelled by; every point and bar has a <title> of its own, which browsers show
as a tooltip without any script. Text is escaped here: callers pass plain strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"

# One colour per series, shared by the charts and the page's legends.
SERIES_COLORS: Mapping[str, str] = {
    "dau": "#1f77b4",
    "wau": "#ff7f0e",
    "mau": "#2ca02c",
    "members": "#5b5f97",
    "size": "#264653",
    "entered": "#2a9d8f",
    "exited": "#e76f51",
    "triggers": "#8ecae6",
    "sent": "#219ebc",
    "delivered": "#1b6f8c",
    "opens": "#023047",
    "conversions": "#2b9348",
    "held_out": "#adb5bd",
    "control_conversions": "#6c757d",
    "lift": "#c1121f",
    "lift-ci95": "#c1121f",
    "mde": "#6c757d",
}

AXIS = "#888888"
GRID = "#e4e4e4"
INK = "#222222"
MUTED = "#555555"
FONT_SIZE = 11


def element(tag: str, attributes: Mapping[str, object] | None = None, content: str = "") -> str:
    """``<tag a="v">content</tag>``: attribute values are escaped (None leaves one out); ``content``
    is markup already (pass text through ``text``)."""
    rendered = "".join(
        f' {name}="{escape(str(value), quote=True)}"'
        for name, value in (attributes or {}).items()
        if value is not None
    )
    return f"<{tag}{rendered}>{content}</{tag}>"


def text(value: str) -> str:
    return escape(value, quote=True)


def number(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros (``12``, ``12.5``)."""
    rounded = round(value, 1)
    return f"{rounded:.1f}".rstrip("0").rstrip(".") if rounded != int(rounded) else str(int(rounded))


def count(value: int) -> str:
    return f"{value:,}"


def nice_step(raw: float, *, whole: bool) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at least ``raw`` (at least 1 when ``whole``)."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * magnitude
        if step >= raw * (1 - 1e-9) and not (whole and step != int(step)):
            break
    return max(step, 1.0) if whole else step


def count_ticks(maximum: float, wanted: int = 5) -> list[int]:
    """Whole-number ticks from 0 to at least ``maximum`` (at least 0 and 1)."""
    step = int(nice_step(maximum / wanted, whole=True))
    top = max(step, math.ceil(maximum / step) * step)
    return list(range(0, top + 1, step))


@dataclass(frozen=True, slots=True)
class Plot:
    """The plotting area of a chart, in SVG units; days sit at the centres of equal slots."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def x_at(self, index: int, slots: int) -> float:
        return self.left + (index + 0.5) * self.width / max(slots, 1)

    def y_at(self, value: float, low: float, high: float) -> float:
        return self.top + self.height * (high - value) / (high - low)


def chart(
    chart_id: str,
    width: float,
    height: float,
    title: str,
    description: str,
    body: str,
    data: Mapping[str, str] | None = None,
) -> str:
    """An accessible <svg>: labelled by its <title> and <desc>, sized by its viewBox."""
    attributes: dict[str, object] = {
        "xmlns": SVG_NS,
        "id": chart_id,
        "class": "chart",
        "viewBox": f"0 0 {number(width)} {number(height)}",
        "width": number(width),
        "height": number(height),
        "role": "img",
        "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
        "font-size": FONT_SIZE,
        "font-family": "system-ui, sans-serif",
    }
    attributes.update(data or {})
    head = element("title", {"id": f"{chart_id}-title"}, text(title))
    head += element("desc", {"id": f"{chart_id}-desc"}, text(description))
    return element("svg", attributes, head + body)


def _y_grid(plot: Plot, ticks: Sequence[float], low: float, high: float, label: str = "{:,}") -> str:
    parts = []
    for tick in ticks:
        y = number(plot.y_at(tick, low, high))
        parts.append(
            element(
                "line", {"x1": number(plot.left), "x2": number(plot.right), "y1": y, "y2": y, "stroke": GRID}
            )
        )
        parts.append(
            element(
                "text",
                {
                    "x": number(plot.left - 6),
                    "y": y,
                    "text-anchor": "end",
                    "dominant-baseline": "middle",
                    "fill": MUTED,
                },
                text(label.format(abs(tick))),
            )
        )
    return element("g", {"class": "grid", "aria-hidden": "true"}, "".join(parts))


def _x_labels(plot: Plot, dates: Sequence[str]) -> str:
    """At most about ten day labels (MM-DD), evenly spaced, under the plot."""
    slots = len(dates)
    step = max(1, math.ceil(slots / 10))
    parts = [
        element(
            "line",
            {
                "x1": number(plot.left),
                "x2": number(plot.right),
                "y1": number(plot.bottom),
                "y2": number(plot.bottom),
                "stroke": AXIS,
            },
        )
    ]
    for index in range(0, slots, step):
        x = number(plot.x_at(index, slots))
        parts.append(
            element(
                "line",
                {"x1": x, "x2": x, "y1": number(plot.bottom), "y2": number(plot.bottom + 4), "stroke": AXIS},
            )
        )
        parts.append(
            element(
                "text",
                {"x": x, "y": number(plot.bottom + 16), "text-anchor": "middle", "fill": MUTED},
                text(dates[index][5:]),
            )
        )
    return element("g", {"class": "x-axis", "aria-hidden": "true"}, "".join(parts))


@dataclass(frozen=True, slots=True)
class Line:
    key: str  # data-series and colour
    label: str
    values: Sequence[int | None]  # one per day; None: unknown (the line breaks)


def _runs(values: Sequence[int | None]) -> list[list[int]]:
    """The indexes of each unbroken run of known values."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return runs


def _line_panel(plot: Plot, dates: Sequence[str], lines: Sequence[Line], *, x_labels: bool = True) -> str:
    known = [value for line in lines for value in line.values if value is not None]
    ticks = count_ticks(max(known, default=0))
    low, high = 0, ticks[-1]
    slots = len(dates)
    parts = [_y_grid(plot, ticks, low, high)]
    if x_labels:
        parts.append(_x_labels(plot, dates))
    for line in lines:
        color = SERIES_COLORS[line.key]
        for run in _runs(line.values):
            points = " ".join(
                f"{number(plot.x_at(i, slots))},{number(plot.y_at(line.values[i] or 0, low, high))}"
                for i in run
            )
            parts.append(
                element(
                    "polyline",
                    {
                        "data-series": line.key,
                        "points": points,
                        "fill": "none",
                        "stroke": color,
                        "stroke-width": 2,
                        "stroke-linejoin": "round",
                    },
                )
            )
        for index, value in enumerate(line.values):
            if value is None:
                continue
            parts.append(
                element(
                    "circle",
                    {
                        "data-series": line.key,
                        "cx": number(plot.x_at(index, slots)),
                        "cy": number(plot.y_at(value, low, high)),
                        "r": 2.5,
                        "fill": color,
                    },
                    element("title", None, text(f"{dates[index]}: {line.label} {value:,}")),
                )
            )
    return "".join(parts)


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    dates: Sequence[str],
    lines: Sequence[Line],
    *,
    width: float = 960,
    height: float = 300,
) -> str:
    """Lines over days (one polyline per unbroken run of a series, one dot per known value)."""
    plot = Plot(left=56, top=12, width=width - 56 - 16, height=height - 12 - 28)
    return chart(chart_id, width, height, title, description, _line_panel(plot, dates, lines))


def _diverging_panel(plot: Plot, dates: Sequence[str], up: Line, down: Line, *, x_labels: bool = True) -> str:
    """``up`` as bars above the zero line, ``down`` below it, one slot per day."""
    slots = len(dates)
    most_up = max((v for v in up.values if v is not None), default=0)
    most_down = max((v for v in down.values if v is not None), default=0)
    # A side with nothing to show takes no room (both empty: a 0..1 axis above the line).
    up_ticks = count_ticks(most_up, 3) if most_up or not most_down else [0]
    down_ticks = count_ticks(most_down, 3) if most_down else [0]
    high, low = up_ticks[-1], -down_ticks[-1]
    ticks = [-tick for tick in reversed(down_ticks[1:])] + up_ticks
    parts = [_y_grid(plot, ticks, low, high)]
    if x_labels:
        parts.append(_x_labels(plot, dates))
    zero = plot.y_at(0, low, high)
    parts.append(
        element(
            "line",
            {
                "x1": number(plot.left),
                "x2": number(plot.right),
                "y1": number(zero),
                "y2": number(zero),
                "stroke": AXIS,
            },
        )
    )
    bar = max(1.0, plot.width / max(slots, 1) * 0.7)
    for line, sign, verb in ((up, 1, "+"), (down, -1, "-")):
        for index, value in enumerate(line.values):
            if value is None:
                continue
            end = plot.y_at(sign * value, low, high)
            parts.append(
                element(
                    "rect",
                    {
                        "data-series": line.key,
                        "x": number(plot.x_at(index, slots) - bar / 2),
                        "y": number(min(zero, end)),
                        "width": number(bar),
                        "height": number(abs(end - zero)),
                        "fill": SERIES_COLORS[line.key],
                    },
                    element("title", None, text(f"{dates[index]}: {verb}{value:,} {line.label}")),
                )
            )
    return "".join(parts)


def size_and_changes_chart(
    chart_id: str,
    title: str,
    description: str,
    dates: Sequence[str],
    size: Line,
    entered: Line,
    exited: Line,
    *,
    width: float = 960,
    data: Mapping[str, str] | None = None,
) -> str:
    """Two panels over the same days: the size as a line, entries (up) and exits (down) as bars."""
    top = Plot(left=56, top=12, width=width - 56 - 16, height=110)
    bottom = Plot(left=56, top=top.bottom + 22, width=top.width, height=120)
    caption = element(
        "text",
        {"x": number(top.left), "y": number(top.bottom + 14), "fill": MUTED, "aria-hidden": "true"},
        text(f"per day: {entered.label} (up), {exited.label} (down)"),
    )
    body = _line_panel(top, dates, [size], x_labels=False) + caption
    body += _diverging_panel(bottom, dates, entered, exited)
    return chart(chart_id, width, bottom.bottom + 28, title, description, body, data)


@dataclass(frozen=True, slots=True)
class Bar:
    key: str  # data-series and colour
    label: str
    value: int | None  # None: not measured (no bar, the note says why)
    note: str = ""
    data: Mapping[str, str] = field(default_factory=dict)  # more data-* attributes for the bar


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    maximum: int | None = None,
    width: float = 450,
    label_width: float = 130,
    value_width: float = 150,
    data: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, one row each, on a common scale from 0 to ``maximum`` (default: the largest)."""
    row, thickness, top = 28, 16, 6
    scale = max(maximum or 0, *(bar.value or 0 for bar in bars), 1)
    plot = Plot(left=label_width, top=top, width=width - label_width - value_width, height=row * len(bars))
    parts = [
        element(
            "line",
            {
                "x1": number(plot.left),
                "x2": number(plot.left),
                "y1": number(plot.top),
                "y2": number(plot.bottom),
                "stroke": AXIS,
                "aria-hidden": "true",
            },
        )
    ]
    for index, bar in enumerate(bars):
        middle = plot.top + index * row + row / 2
        parts.append(
            element(
                "text",
                {
                    "x": number(plot.left - 8),
                    "y": number(middle),
                    "text-anchor": "end",
                    "dominant-baseline": "middle",
                    "fill": INK,
                },
                text(bar.label),
            )
        )
        length = 0.0
        if bar.value is not None:
            length = plot.width * bar.value / scale
            parts.append(
                element(
                    "rect",
                    {
                        "data-series": bar.key,
                        **bar.data,
                        "x": number(plot.left),
                        "y": number(middle - thickness / 2),
                        "width": number(length),
                        "height": thickness,
                        "fill": SERIES_COLORS[bar.key],
                    },
                    element(
                        "title", None, text(f"{bar.label}: {bar.value:,}{' ' + bar.note if bar.note else ''}")
                    ),
                )
            )
        shown = f"{bar.value:,}" if bar.value is not None else "not measured"
        parts.append(
            element(
                "text",
                {
                    "x": number(plot.left + length + 6),
                    "y": number(middle),
                    "dominant-baseline": "middle",
                    "fill": INK,
                },
                text(shown) + (element("tspan", {"fill": MUTED}, text(f"  {bar.note}")) if bar.note else ""),
            )
        )
    return chart(chart_id, width, plot.bottom + top, title, description, "".join(parts), data)


def _signed_points(value: float) -> str:
    """A difference of rates in percentage points: ``+2.4 pp``, ``-0.5 pp``, ``0 pp``."""
    points = round(value * 100, 1)
    if points == 0:
        return "0 pp"
    return f"{points:+.1f} pp".replace(".0 pp", " pp")


def lift_chart(
    chart_id: str,
    title: str,
    description: str,
    absolute: float,
    ci95: tuple[float, float],
    minimum_detectable: float | None,
    *,
    width: float = 450,
    data: Mapping[str, str] | None = None,
) -> str:
    """The difference of conversion rates (sent minus held out) as a dot, its 95 % interval as a
    whisker, the minimum detectable difference as a dashed mark and 0 as the reference line."""
    low, high = ci95
    extent = max(abs(low), abs(high), abs(absolute), abs(minimum_detectable or 0), 0.005) * 1.15
    step = nice_step(extent * 100 / 3, whole=False) / 100
    extent = math.ceil(extent / step - 1e-9) * step
    plot = Plot(left=30, top=26, width=width - 60, height=40)

    def x_of(value: float) -> float:
        return plot.left + plot.width * (value + extent) / (2 * extent)

    middle = plot.top + plot.height / 2
    parts = []
    ticks = round(extent / step)
    for index in range(-ticks, ticks + 1):
        x = number(x_of(index * step))
        parts.append(
            element(
                "line", {"x1": x, "x2": x, "y1": number(plot.top), "y2": number(plot.bottom), "stroke": GRID}
            )
        )
        parts.append(
            element(
                "text",
                {"x": x, "y": number(plot.bottom + 14), "text-anchor": "middle", "fill": MUTED},
                text(_signed_points(index * step)),
            )
        )
    zero = number(x_of(0))
    parts.append(
        element(
            "line",
            {
                "x1": zero,
                "x2": zero,
                "y1": number(plot.top - 4),
                "y2": number(plot.bottom + 2),
                "stroke": AXIS,
            },
        )
    )
    grid = element("g", {"class": "grid", "aria-hidden": "true"}, "".join(parts))
    series = []
    if minimum_detectable is not None:
        sign = -1 if absolute < 0 else 1
        x = number(x_of(sign * minimum_detectable))
        series.append(
            element(
                "line",
                {
                    "data-series": "mde",
                    "x1": x,
                    "x2": x,
                    "y1": number(plot.top),
                    "y2": number(plot.bottom),
                    "stroke": SERIES_COLORS["mde"],
                    "stroke-dasharray": "4 3",
                },
                element(
                    "title",
                    None,
                    text(f"minimum detectable difference: {_signed_points(sign * minimum_detectable)}"),
                ),
            )
        )
    x_low, x_high, cap = x_of(low), x_of(high), 7
    whisker = (
        f"M{number(x_low)},{number(middle - cap)}V{number(middle + cap)}"
        f"M{number(x_low)},{number(middle)}H{number(x_high)}"
        f"M{number(x_high)},{number(middle - cap)}V{number(middle + cap)}"
    )
    series.append(
        element(
            "path",
            {
                "data-series": "lift-ci95",
                "d": whisker,
                "fill": "none",
                "stroke": SERIES_COLORS["lift-ci95"],
                "stroke-width": 2,
            },
            element("title", None, text(f"95 % interval: {_signed_points(low)} to {_signed_points(high)}")),
        )
    )
    series.append(
        element(
            "circle",
            {
                "data-series": "lift",
                "cx": number(x_of(absolute)),
                "cy": number(middle),
                "r": 5,
                "fill": SERIES_COLORS["lift"],
            },
            element("title", None, text(f"lift: {_signed_points(absolute)}")),
        )
    )
    series.append(
        element(
            "text",
            {"x": number(x_of(absolute)), "y": number(plot.top - 10), "text-anchor": "middle", "fill": INK},
            text(_signed_points(absolute)),
        )
    )
    return chart(chart_id, width, plot.bottom + 22, title, description, grid + "".join(series), data)
