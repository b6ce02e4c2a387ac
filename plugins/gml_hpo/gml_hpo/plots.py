"""``search-ctl report``: PNG plots of a task (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path

from .records import TrialState
from .store import TaskStore
from .tasks import flatten_params, reward_settings

_COLORS = {"SUCCEEDED": "tab:blue", "EARLY_STOPPED": "tab:orange", "TIMEOUT": "tab:purple",
           "FAILED": "tab:red", "NO_REWARD": "tab:brown", "CANCELLED": "tab:gray"}


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
    return _save(plt, fig, ax, path, "finished trials", attr,
                 f"{store.meta('name')}: {attr} ({'maximize' if maximize else 'minimize'})")


def plot_curves(store: TaskStore, path: Path) -> Path | None:
    """Intermediate values of the reward attribute per trial; early-stopped trials marked."""
    attr, maximize = reward_settings(store)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn, present = False, set()
    for t in store.trials():
        hist = store.history(t.trial_id, attr)
        if not hist:
            continue
        drawn = True
        present.add(t.state.value)
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
        if state in present:
            ax.plot([], [], color=color, ls="--" if state in ("EARLY_STOPPED", "TIMEOUT") else "-",
                    marker="x" if state in ("EARLY_STOPPED", "TIMEOUT") else None, label=state.lower())
    return _save(plt, fig, ax, path, "step", attr, f"{store.meta('name')}: intermediate {attr} (x = early stopped)")


def _save(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Integer x ticks, labels, grid and legend, then write ``path`` and free the figure."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _axis(values: list, log: bool, choices: list | None):
    """Map one parameter's values to [0, 1]; returns (positions, tick labels or None, log)."""
    nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if nums and choices is None:
        lo, hi = min(values), max(values)
        log = log and lo > 0
        f = (lambda v: math.log10(v)) if log else (lambda v: float(v))
        a, b = f(lo), f(hi)
        return [0.5 if b == a else (f(v) - a) / (b - a) for v in values], None, log
    cats = [str(c) for c in choices] if choices else list(dict.fromkeys(str(v) for v in values))
    for v in values:
        if str(v) not in cats:
            cats.append(str(v))
    pos = {c: (0.5 if len(cats) == 1 else i / (len(cats) - 1)) for i, c in enumerate(cats)}
    return [pos[str(v)] for v in values], [(pos[c], c) for c in cats], False


def _arg_info(store: TaskStore) -> tuple[set[str], dict[str, list]]:
    """Placeholders on a log scale, and declared choices of Categorical/File/Nested values."""
    args = ((store.meta("config", {}) or {}).get("task") or {}).get("search_args") or {}
    logs, choices = set(), {}
    for name, spec in args.items():
        if not isinstance(spec, dict):
            continue
        if spec.get("log"):
            logs.add(name)
        if spec.get("type") == "Categorical" and isinstance(spec.get("data"), list):
            choices[name] = spec["data"]
        if spec.get("type") == "Nested" and isinstance(spec.get("data"), list):
            for item in spec["data"]:
                for key, value in (item.items() if isinstance(item, dict) else ()):
                    choices.setdefault(key, [])
                    if value not in choices[key]:
                        choices[key].append(value)
    return logs, choices


def plot_parallel(store: TaskStore, path: Path) -> Path | None:
    """Parallel coordinates of the parameters and the reward, coloured by reward."""
    attr, maximize = reward_settings(store)
    trials = [t for t in store.trials() if t.reward is not None]
    if not trials:
        return None
    logs, choices = _arg_info(store)
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
        name = labels[j]
        ys, ticks, log = _axis(col, name in logs, choices.get(name) if j < len(names) else None)
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
                labels[j] = f"{name} (log)"
    order = sorted(range(len(trials)), key=lambda i: rewards[i] if maximize else -rewards[i])
    for i in order:  # best drawn last, on top
        ax.plot(range(len(columns)), [s[i] for s in scaled], color=cmap(norm(rewards[i])), alpha=0.8, lw=1.2)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(labels)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(columns) - 0.6)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=attr)
    ax.set_title(f"{store.meta('name')}: parameters vs {attr} ({len(trials)} trials)")
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
