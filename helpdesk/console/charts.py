"""Geometry for the dashboard's server-rendered SVG charts: plain numbers the template draws,
so the charts need no script (and pass the page's Content-Security-Policy)."""

from dataclasses import dataclass
from datetime import date

CHART_WIDTH = 720
CHART_HEIGHT = 180
BAR_GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class DayChart:
    opened: list[Bar]
    solved: list[Bar]
    ticks: list[tuple[float, str]]  # x, label under the axis
    top: int  # the value the chart's full height stands for


def nice_top(values: list[int]) -> int:
    """The axis top: the smallest 1, 2 or 5 times a power of ten that holds every value."""
    top = max(values, default=0)
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= top:
                return step * magnitude
        magnitude *= 10


def day_chart(days: list[date], opened: list[int], solved: list[int]) -> DayChart:
    top = nice_top(opened + solved)
    slot = CHART_WIDTH / max(len(days), 1)
    bar = (slot - 3 * BAR_GAP) / 2
    opened_bars: list[Bar] = []
    solved_bars: list[Bar] = []
    ticks: list[tuple[float, str]] = []
    for index, day in enumerate(days):
        left = index * slot + BAR_GAP
        for value, bars, offset in (
            (opened[index], opened_bars, 0.0),
            (solved[index], solved_bars, bar + BAR_GAP),
        ):
            height = CHART_HEIGHT * value / top
            bars.append(
                Bar(left + offset, CHART_HEIGHT - height, bar, height, value, day.isoformat())
            )
        if index % 5 == 0 or index == len(days) - 1:
            ticks.append((left, day.strftime("%d %b")))
    return DayChart(opened_bars, solved_bars, ticks, top)


def share_bars(items: list[tuple[str, int, int | None]], width: float = 480) -> list[Bar]:
    """Horizontal bars of a percentage each (None: nothing to measure yet, drawn empty)."""
    return [
        Bar(0, index * 34, width * (percent or 0) / 100, 24, total, label)
        for index, (label, total, percent) in enumerate(items)
    ]


def count_bars(items: list[tuple[str, int]], width: float = 480) -> list[Bar]:
    top = max((count for _, count in items), default=0) or 1
    return [
        Bar(0, index * 34, width * count / top, 24, count, label)
        for index, (label, count) in enumerate(items)
    ]
