"""What ``gml nas search`` and ``gml nas export`` do, callable from Python."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gml_core.api import atomic_write_text

from .evaluation import calibrate_bn, evaluate_accuracy, preserved_bn_state
from .export import export_subnet
from .search import EvolutionSearch
from .search_config import SearchConfig
from .session import Session
from .subnet_io import read_subnet, write_results


def subnet_costs(session: Session) -> dict[str, Callable[[dict], float]]:
    """FLOPs (torch's counter on the active subnet) and parameters (of its static export)."""
    from gml_core.api import count_flops, count_params
    model, shape = session.model, session.input_shape

    def flops(subnet: dict) -> float:
        session.algorithm.activate(subnet)
        return float(count_flops(model, shape))

    def params(subnet: dict) -> float:
        session.algorithm.activate(subnet)
        return float(count_params(model.export()))

    return {"flops": flops, "params": params}


def subnet_scorer(session: Session, search: SearchConfig) -> Callable[[dict], float]:
    """Top-1 accuracy on the search split after BN re-calibration on fixed training batches."""
    calib = session.calib_batches(search.calib_batches, search.seed)
    val = session.search_loader()
    num_classes = session.bundle.info.num_classes
    model = session.model

    def score(subnet: dict) -> float:
        with preserved_bn_state(model):
            session.algorithm.activate(subnet)
            calibrate_bn(model, calib, -1)
            return evaluate_accuracy(model, val, num_classes, search.val_batches)["accuracy/top1"]

    return score


def run_search(session: Session, search: SearchConfig, out_dir: Path, resume: bool = False,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evolution search; writes ``best_subnets.toml|json`` and ``search_state.json`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    evo = EvolutionSearch(session.model.space, subnet_scorer(session, search), subnet_costs(session),
                          {"flops": search.flops_limit, "params": search.params_limit}, search,
                          out_dir / "search_state.json", log)
    with torch.no_grad():
        results = evo.run(resume=resume)
    space = session.model.space
    entries = [{"rank": i + 1, "score": round(r["score"], 4), "flops": int(r["flops"]), "params": int(r["params"]),
                "arch": space.nest(r["subnet"])} for i, r in enumerate(results)]
    limits = ", ".join(f"{k} <= {v}" for k, v in (("flops", search.flops), ("params", search.params)) if v) or "none"
    header = (f"gml nas search: the {len(entries)} best subnets, best first\nconfig: {session.config.source}\n"
              f"supernet: {session.checkpoint}\nlimits: {limits}; score: top-1 % on the {session.search_split_name} after BN "
              f"re-calibration ({search.calib_batches} batches); FLOPs count a multiply-add as 2")
    toml_path, json_path = write_results(entries, out_dir, header=header)
    front = [{"score": round(r["score"], 4), "flops": int(r["flops"]), "params": int(r["params"]),
              "arch": space.nest(r["subnet"])} for r in evo.front("flops")]
    scored = [{"score": evo.scores[k], **evo.costs[k]} for k in evo.scores]
    front_files = write_front(front, out_dir, f"accuracy-vs-FLOPs front of the {len(evo.scores)} scored candidates "
                              f"(top-1 % on the {session.search_split_name})", scored, search.flops_limit,
                              entries[0] if entries else None)
    return {"entries": entries, "toml": toml_path, "json": json_path, "evaluated": len(evo.scores),
            "front": front, "front_files": front_files, "split": session.search_split_name}


def write_front(front: list[dict[str, Any]], out_dir: Path, title: str, candidates: Sequence[dict[str, Any]] = (),
                flops_limit: Optional[float] = None, chosen: Optional[dict[str, Any]] = None) -> list[Path]:
    """``front.json``, ``front.md`` (a table) and, with matplotlib installed, ``front.png`` (the front among
    all scored ``candidates``, the ``chosen`` subnet and the limit)."""
    rows = [f"| {i + 1} | {p['flops'] / 1e6:.3f} | {p['params'] / 1e3:.1f} | {p['score']:.2f} |"
            for i, p in enumerate(front)]
    table = "\n".join([f"{title}\n", "| # | MFLOPs | K params | top-1 % |", "|---:|---:|---:|---:|", *rows]) + "\n"
    paths = [atomic_write_text(out_dir / "front.json", json.dumps({"title": title, "front": front}, indent=2)),
             atomic_write_text(out_dir / "front.md", table)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return paths
    from gml_core.api import atomic_write_bytes

    from .front_plot import front_png

    png = front_png(front, list(candidates) or front, title, flops_limit, chosen)
    paths.append(atomic_write_bytes(out_dir / "front.png", png))
    return paths


def resolve_subnet(session: Session, subnet: str, rank: int = 1) -> dict[str, Any]:
    """``max``, ``min``, ``default`` or a subnet file."""
    space = session.model.space
    named = {"max": space.max, "min": space.min, "default": space.default}
    return named[subnet]() if subnet in named else read_subnet(subnet, space, rank)


def run_export(session: Session, subnet: dict[str, Any], out_dir: Path, name: str = "subnet",
               calib_batches: int = 10, evaluate: bool = True, seed: int = 0) -> dict[str, Any]:
    """Export ``subnet``; reload the checkpoint the way ``init_from`` does and evaluate it standalone."""
    from gml_core.api import BuildContext, ComponentSpec, count_flops, count_params
    info = session.bundle.info
    calib = session.calib_batches(calib_batches, seed)
    out = export_subnet(session.model, subnet, session.config.algorithm.model, info.num_classes, info.in_channels,
                        out_dir, session.input_shape, name, calib, -1)
    context = BuildContext(info, session.config.train, session.work_dir, False)
    reloaded = context.build_model(ComponentSpec("gml.StaticSubnet", {"init_from": str(out["checkpoint"])}))
    summary: dict[str, Any] = {
        "checkpoint": str(out["checkpoint"]), "torchscript": str(out["torchscript"]),
        "flops": count_flops(reloaded, session.input_shape), "params": count_params(reloaded),
        "arch": session.model.space.nest(subnet), "split": session.report_split_name,
    }
    if evaluate:
        summary.update(evaluate_accuracy(reloaded, session.val_loader(), info.num_classes))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = torch.jit.load(str(out["torchscript"]))
        summary["torchscript_top1"] = evaluate_accuracy(ts, session.val_loader(), info.num_classes)["accuracy/top1"]
    atomic_write_text(Path(out_dir) / f"{name}.json", json.dumps(summary, indent=2))
    return summary


def calibrated_accuracy(session: Session, subnet: dict[str, Any], calib_batches: int = 10,
                        seed: int = 0) -> Optional[float]:
    """Top-1 of ``subnet`` inside the supernet after BN re-calibration (for comparisons)."""
    model = session.model
    with preserved_bn_state(model), torch.no_grad():
        session.algorithm.activate(subnet)
        calibrate_bn(model, session.calib_batches(calib_batches, seed), -1)
        return evaluate_accuracy(model, session.val_loader(), session.bundle.info.num_classes)["accuracy/top1"]
