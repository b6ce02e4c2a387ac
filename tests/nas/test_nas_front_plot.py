"""The accuracy-vs-FLOPs figure of `gml nas search`: what a person reading it must be able to see."""

import pytest

pytest.importorskip("matplotlib")

from gml_nas.front_plot import front_figure, front_png  # noqa: E402
from gml_nas.search import pareto_front  # noqa: E402


def test_front_figure_shows_every_candidate_the_front_the_pick_and_the_limit():
    # a narrow FLOPs range (1.2750-1.2975 M), where default ticks used to run into each other
    cands = [{"flops": 1.2750e6 + 2500 * i, "score": s, "params": 1} for i, s in enumerate([87.5, 86.0, 94.1, 90.0,
                                                                                             94.1, 80.0, 93.0, 91.0])]
    front = pareto_front(cands, "flops")
    assert [p["score"] for p in front] == [87.5, 94.1]  # independent check: the front rises, cheapest first
    title = "accuracy-vs-FLOPs front of the 8 scored candidates (top-1 % on the search split (held out of training))"
    fig = front_figure(front, cands, title, flops_limit=1.3e6, chosen=cands[4])
    ax = fig.axes[0]
    scatter = ax.collections[0].get_offsets()
    assert len(scatter) == len(cands)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["scored candidates (8)", "front (2)", "chosen (#1)", "FLOPs limit"]
    staircase = ax.lines[0].get_xydata()
    assert staircase[-1][0] == pytest.approx(1.3) and staircase[-1][1] == 94.1  # the front holds to the limit
    assert len([t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]) <= 6
    assert max(len(line) for line in ax.get_title().splitlines()) <= 70
    assert front_png(front, cands, title).startswith(b"\x89PNG")
