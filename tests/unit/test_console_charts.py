"""The dashboard's chart geometry, as tables."""

from datetime import date, timedelta

import pytest

from helpdesk.console.charts import CHART_HEIGHT, count_bars, day_chart, nice_top, share_bars

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("values", "top"),
    [([], 1), ([0, 0], 1), ([1], 1), ([3], 5), ([7], 10), ([10], 10), ([11], 20), ([180], 200),
     ([501], 1000)],
)  # fmt: skip
def test_the_axis_top_is_a_round_number_holding_every_value(values: list[int], top: int) -> None:
    assert nice_top(values) == top


def test_day_bars_stand_on_the_axis_with_heights_in_proportion() -> None:
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]
    chart = day_chart(days, opened=[10, 5, 0], solved=[0, 10, 2])
    assert chart.top == 10
    assert [b.height for b in chart.opened] == [CHART_HEIGHT, CHART_HEIGHT / 2, 0]
    assert all(b.y + b.height == CHART_HEIGHT for b in chart.opened + chart.solved)
    # Each day's solved bar sits right of its opened bar, inside the day's slot.
    assert all(s.x > o.x for o, s in zip(chart.opened, chart.solved, strict=True))
    assert chart.solved[0].x + chart.solved[0].width < chart.opened[1].x


def test_share_and_count_bars_scale_to_their_width() -> None:
    shares = share_bars([("high", 4, 75), ("low", 0, None)], width=400)
    assert [b.width for b in shares] == [300, 0]
    counts = count_bars([("open", 8), ("pending", 2)], width=400)
    assert [b.width for b in counts] == [400, 100]
