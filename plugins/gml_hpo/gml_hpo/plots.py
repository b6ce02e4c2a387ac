"""``search-ctl report``: PNG plots of a task (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path

from .records import TrialState
from .store import TaskStore
from .tasks import flatten_params, reward_settings

_COLORS = {"SUCCEEDED": "tab:blue", "EARLY_STOPPED": "tab:orange", "TIMEOUT": "tab:purple",
           "FAILED": "tab:red", "CANCELLED": "tab:gray"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_best_so_far(store: TaskStore, path: Path) -> Path | None:
    """Reward of each finished trial in completion order and the best so far."""
    attr, maximize = reward_settings(store)
    done = sorted((t for t in store.trials() if t.state.finished and t.finished_at), key=lambda t: t.finished_at)
    if not done:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    best, xs, ys = None, [], []
    for i, t in enumerate(done, start=1):
        if t.reward is not None:
            ax.scatter(i, t.reward, s=22, color=_COLORS.get(t.state.value, "k"), zorder=3)
            if t.state == TrialState.SUCCEEDED and (best is None or (t.reward > best if maximize else t.reward < best)):
                best = t.reward
        xs.append(i)
        ys.append(best if best is not None else math.nan)
    ax.step(xs, ys, where="post", color="k", lw=1.5, label="best so far")
    for state, color in _COLORS.items():
        if any(t.state.value == state and t.reward is not None for t in done):
            ax.scatter([], [], color=color, s=22, label=state.lower())
    ax.set_xlabel("finished trials")
    ax.set_ylabel(attr)
    ax.set_title(f"{store.meta('name')}: {attr} ({'maximize' if maximize else 'minimize'})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(store: TaskStore, path: Path) -> Path | None:
    """Intermediate values of the reward attribute per trial; early-stopped trials marked."""
    attr, maximize = reward_settings(store)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for t in store.trials():
        hist = store.history(t.trial_id, attr)
        if not hist:
            continue
        drawn = True
        steps, values = zip(*hist)
        color = _COLORS.get(t.state.value, "tab:cyan")
        stopped = t.state in (TrialState.EARLY_STOPPED, TrialState.TIMEOUT)
        ax.plot(steps, values, color=color, lw=1.0, alpha=0.8, ls="--" if stopped else "-")
        if stopped:
            ax.scatter(steps[-1], values[-1], marker="x", color=color, s=40, zorder=3)
    if not drawn:
        plt.close(fig)
        return None
    for state, color in _COLORS.items():
        ax.plot([], [], color=color, ls="--" if state in ("EARLY_STOPPED", "TIMEOUT") else "-",
                marker="x" if state in ("EARLY_STOPPED", "TIMEOUT") else None, label=state.lower())
    ax.set_xlabel("step")
    ax.set_ylabel(attr)
    ax.set_title(f"{store.meta('name')}: intermediate {attr} (x = early stopped)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _axis_values(values: list) -> tuple[list[float], list[tuple[float, str]] | None, bool]:
    """Map one parameter's values to [0, 1]; categorical values get tick labels."""
    nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if nums:
        lo, hi = min(values), max(values)
        log = lo > 0 and hi / lo >= 100
        f = (lambda v: math.log10(v)) if log else (lambda v: float(v))
        a, b = f(lo), f(hi)
        return [0.5 if b == a else (f(v) - a) / (b - a) for v in values], None, log
    cats = list(dict.fromkeys(str(v) for v in values))
    pos = {c: (0.5 if len(cats) == 1 else i / (len(cats) - 1)) for i, c in enumerate(cats)}
    return [pos[str(v)] for v in values], [(pos[c], c) for c in cats], False


def plot_parallel(store: TaskStore, path: Path) -> Path | None:
    """Parallel coordinates of the parameters and the reward, coloured by reward."""
    attr, maximize = reward_settings(store)
    trials = [t for t in store.trials() if t.reward is not None]
    if not trials:
        return None
    flat = [flatten_params(t.params) for t in trials]
    names = list(dict.fromkeys(k for f in flat for k in f))
    columns = [[f.get(n, "") for f in flat] for n in names] + [[t.reward for t in trials]]
    labels = names + [attr]
    plt = _plt()
    import matplotlib
    from matplotlib import cm, colors

    rewards = [t.reward for t in trials]
    norm = colors.Normalize(min(rewards), max(rewards) if max(rewards) > min(rewards) else min(rewards) + 1)
    cmap = matplotlib.colormaps["viridis" if maximize else "viridis_r"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4.5))
    scaled = []
    for j, col in enumerate(columns):
        ys, ticks, log = _axis_values(col)
        scaled.append(ys)
        ax.axvline(j, color="k", lw=0.8)
        if ticks:
            for y, text in ticks:
                ax.text(j + 0.03, y, text, fontsize=7, va="center")
        else:
            lo, hi = min(col), max(col)
            ax.text(j + 0.03, 0, f"{lo:.3g}", fontsize=7, va="bottom")
            ax.text(j + 0.03, 1, f"{hi:.3g}", fontsize=7, va="top")
            if log:
                labels[j] = f"{labels[j]} (log)"
    order = sorted(range(len(trials)), key=lambda i: rewards[i] if maximize else -rewards[i])
    for i in order:  # best drawn last, on top
        ax.plot(range(len(columns)), [s[i] for s in scaled], color=cmap(norm(rewards[i])), alpha=0.8, lw=1.2)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(labels)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.6)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=attr)
    ax.set_title(f"{store.meta('name')}: parameters vs {attr}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(store: TaskStore, out_dir: Path) -> list[Path]:
    """Write the three plots into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [plot_best_so_far(store, out_dir / "best_so_far.png"),
            plot_curves(store, out_dir / "curves.png"),
            plot_parallel(store, out_dir / "parallel_coordinates.png")]
    return [p for p in made if p is not None]
