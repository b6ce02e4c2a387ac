"""The accuracy-vs-FLOPs figure of ``gml nas search``: every scored candidate, the front, the pick, the limit."""

from __future__ import annotations

import io
import textwrap
from typing import Any, Optional, Sequence


def front_figure(front: Sequence[dict[str, Any]], candidates: Sequence[dict[str, Any]], title: str,
                 flops_limit: Optional[float] = None, chosen: Optional[dict[str, Any]] = None) -> Any:
    """A matplotlib Figure: the scored candidates (grey), the front as a staircase (each front point holds
    until a costlier one beats it), the chosen subnet (star) and the FLOPs limit (dashed)."""
    # a bare Figure, not pyplot: no global backend switch or figure registry in the caller's process
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.scatter([c["flops"] / 1e6 for c in candidates], [c["score"] for c in candidates], s=14, color="0.65",
               label=f"scored candidates ({len(candidates)})", zorder=1)
    xs, ys = [p["flops"] / 1e6 for p in front], [p["score"] for p in front]
    reach = max([flops_limit or 0.0] + [c["flops"] for c in candidates]) / 1e6  # the last step runs to here
    ax.step(xs + [max(reach, xs[-1])], ys + ys[-1:], where="post", color="tab:blue", zorder=2)
    ax.plot(xs, ys, "o", color="tab:blue", label=f"front ({len(front)})", zorder=3)
    if chosen is not None:
        ax.plot([chosen["flops"] / 1e6], [chosen["score"]], "*", color="tab:red", markersize=14,
                label="chosen (#1)", zorder=4)
    if flops_limit:
        ax.axvline(flops_limit / 1e6, color="tab:red", linestyle="--", linewidth=1, label="FLOPs limit", zorder=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # a few readable ticks, however narrow the range
    ax.set_xlabel("MFLOPs (a multiply-add = 2 FLOPs)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def front_png(*args: Any, **kwargs: Any) -> bytes:
    """:func:`front_figure` as PNG bytes."""
    buf = io.BytesIO()
    front_figure(*args, **kwargs).savefig(buf, format="png", dpi=110)
    return buf.getvalue()
