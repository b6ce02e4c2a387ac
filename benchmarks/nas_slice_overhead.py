"""gml-nas: cost of slice ops. Forward+backward time of a supernet running a subnet against the same
subnet exported as plain torch modules (and the export against a freshly built equal static net).

Cases (each: one supernet, the largest subnet and a mid-size one):

* ``digits``: the supernet of configs/nas/bignas_digits.toml, batch 64, 1x12x12 inputs;
* ``cifar``: a wider MobileNetV3Slice (5 stages, kernels 3/5/7), batch 16, 3x32x32 inputs.

Steps alternate between the two sides; a ratio is median(side A) / median(side B).
Goals: supernet at its max config / static <= 1.15; exported subnet / equal static net ~ 1.0.

    OMP_NUM_THREADS=1 python benchmarks/nas_slice_overhead.py --out work_dirs/bench/nas_slice_overhead.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tomllib
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def digits_spec() -> dict:
    raw = tomllib.loads((REPO / "configs/nas/bignas_digits.toml").read_text())
    return {**raw["algorithm"]["model"], "num_classes": 10, "in_channels": 1}


def cifar_spec() -> dict:
    c = lambda *d: {"type": "Categorical", "data": list(d)}  # noqa: E731
    space = {"MB_stage_blocks": [1, c(1, 2), c(2, 3), c(2, 3), c(2, 3), c(2, 3), 1],
             "MB_kernel_size": [3, c(3, 5, 7), c(3, 5, 7), c(3, 5, 7), c(3, 5, 7), c(3, 5, 7), 1],
             "MB_expand_ratio": [1, c(1, 3), c(3, 4, 6), c(3, 4, 6), c(3, 4, 6), c(3, 4, 6), 6],
             "MB_out_channels": [c(16, 24), c(16, 24), c(24, 32), c(40, 48), c(80, 96), c(112, 128), c(640, 960)]}
    backbone = {"type": "gml.MobileNetV3Slice", "stem_stride": 1, "strides": [1, 2, 2, 2, 1],
                "use_se": [False, True, False, True, True], "acts": ["relu", "relu", "hswish", "hswish", "hswish"],
                "search_space": space}
    return {"type": "gml.ImageClassifierSearch", "backbone": backbone,
            "head": {"type": "gml.LinearClsHeadV2"}, "num_classes": 10, "in_channels": 3}


def build(spec: dict) -> nn.Module:
    from gml_core._internal.components import build as build_component
    from gml_core._internal.config.spec import ComponentSpec

    return build_component("model", ComponentSpec(spec["type"], {k: v for k, v in spec.items() if k != "type"}))


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    t = time.perf_counter()
    nn.functional.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def compare(a: nn.Module, b: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
    """Alternate one step of each side (robust to a shared machine's load drifting); medians."""
    a.train(), b.train()
    for _ in range(3):
        step_time(a, x, y), step_time(b, x, y)
    ta, tb = [], []
    for i in range(steps):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t1, t2 = step_time(first, x, y), step_time(second, x, y)
        ta.append(t1 if first is a else t2)
        tb.append(t2 if first is a else t1)
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {"a_ms": 1e3 * ma, "b_ms": 1e3 * mb, "ratio": ma / mb}


def run_case(name: str, spec: dict, shape: tuple, steps: int) -> list[dict]:
    from gml_nas.mutator import StatelessMutator

    torch.manual_seed(0)
    supernet = build(spec)
    x, y = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
    rows = []
    mutator = StatelessMutator(1).prepare(supernet.space)
    for label, subnet in (("max", supernet.space.max()), ("random", mutator.random_subnet())):
        supernet.set_subnet(subnet)
        exported = supernet.export()
        fresh = build({"type": "gml.StaticSubnet", "supernet": spec, "subnet": supernet.space.nest(subnet),
                       "reinit": True})
        slice_vs_static = compare(supernet, exported, x, y, steps)
        export_vs_fresh = compare(exported, fresh, x, y, steps)
        rows.append({"case": name, "subnet": label, "batch": list(shape),
                     "supernet_ms": slice_vs_static["a_ms"], "static_ms": slice_vs_static["b_ms"],
                     "slice_overhead_ratio": slice_vs_static["ratio"],
                     "exported_ms": export_vs_fresh["a_ms"], "fresh_static_ms": export_vs_fresh["b_ms"],
                     "export_vs_fresh_ratio": export_vs_fresh["ratio"]})
        print(json.dumps(rows[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="work_dirs/bench/nas_slice_overhead.json")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per side")
    args = parser.parse_args()
    rows = run_case("digits", digits_spec(), (64, 1, 12, 12), args.steps)
    rows += run_case("cifar", cifar_spec(), (16, 3, 32, 32), args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or
            platform.machine()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
