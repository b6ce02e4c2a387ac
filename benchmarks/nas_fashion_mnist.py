"""gml-nas on Fashion-MNIST: accuracy vs FLOPs of the largest, smallest and searched subnets of a
BigNAS supernet (each exported and evaluated standalone) against the same architectures trained
from scratch.

Small budget (CPU): configs/nas/bignas_fashion_mnist.toml, i.e. a 6,000-image training subset and
the first 2,000 test images, 16x16 inputs, 6 epochs of supernet training (sandwich rule, 4
subnets per step). Every from-scratch baseline gets the same data, optimiser and 6 epochs as one
plain network (``gml.StaticSubnet`` with ``reinit = true``, cross-entropy with label smoothing 0.1).

    OMP_NUM_THREADS=1 python benchmarks/nas_fashion_mnist.py --work-dir work_dirs/bench/nas_fmnist
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "nas" / "bignas_fashion_mnist.toml"
QUIET = ["runtime.progress=false", "runtime.log_interval=1000", "runtime.max_keep_ckpts=1"]


def gml(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "gml_core", *args]
    print("$ gml " + " ".join(args), flush=True)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"failed: gml {' '.join(args)}")


def scratch_config(path: Path, raw: dict, subnet: dict, epochs: int) -> Path:
    from gml_nas.subnet_io import _toml_value

    model = {"type": "gml.StaticSubnet", "reinit": True, "subnet": subnet,
             "supernet": {**raw["algorithm"]["model"], "num_classes": 10, "in_channels": 1}}
    lines = ["[data]", *(f"{k} = {_toml_value(v)}" for k, v in raw["data"].items()),
             "[train]", *(f"{k} = {_toml_value(v)}" for k, v in {**raw["train"], "epochs": epochs,
                                                                   "label_smoothing": 0.1}.items()),
             "[algorithm]", 'type = "Supervised"', f"model = {_toml_value(model)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default="work_dirs/bench/nas_fmnist")
    parser.add_argument("--flops", default="3M", help="search budget")
    args = parser.parse_args()
    wd = Path(args.work_dir).resolve()
    raw = tomllib.loads(CONFIG.read_text())
    epochs = raw["train"]["epochs"]
    t0 = time.time()
    gml("run", str(CONFIG), "--work-dir", str(wd / "supernet"), *QUIET)
    t_train = time.time() - t0
    gml("nas", "search", str(CONFIG), "--work-dir", str(wd / "supernet"), "--flops", args.flops,
        "--out", str(wd / "search"))
    rows = []
    for name, subnet in (("max", "max"), ("min", "min"), ("searched", str(wd / "search" / "best_subnets.toml"))):
        gml("nas", "export", str(CONFIG), "--work-dir", str(wd / "supernet"), "--subnet", subnet,
            "--out", str(wd / "export"), "--name", name)
        exported = json.loads((wd / "export" / f"{name}.json").read_text())
        cfg = scratch_config(wd / f"scratch_{name}.toml", raw, exported["arch"], epochs)
        gml("run", str(cfg), "--work-dir", str(wd / f"scratch_{name}"), *QUIET)
        scratch = json.loads((wd / f"scratch_{name}" / "summary.json").read_text())
        rows.append({"subnet": name, "flops": exported["flops"], "params": exported["params"],
                     "supernet_top1": exported["accuracy/top1"], "scratch_top1": scratch["metrics"]["accuracy/top1"],
                     "arch": exported["arch"]})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "arch"}), flush=True)
    result = {"config": str(CONFIG.relative_to(REPO)), "search_flops_limit": args.flops, "epochs": epochs,
              "supernet_training_s": round(t_train, 1), "rows": rows}
    (wd / "results.json").write_text(json.dumps(result, indent=2))
    plot(rows, wd / "nas_fashion_mnist.png")
    print(f"wrote {wd / 'results.json'} and {wd / 'nas_fashion_mnist.png'}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    flops = [r["flops"] / 1e6 for r in rows]
    ax.plot(flops, [r["supernet_top1"] for r in rows], "o", label="from the supernet (exported, BN re-calibrated)")
    ax.plot(flops, [r["scratch_top1"] for r in rows], "s", label="same architecture, trained from scratch")
    for r, f in zip(rows, flops):
        ax.annotate(r["subnet"], (f, r["supernet_top1"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("MFLOPs (16x16 input; a multiply-add = 2 FLOPs)")
    ax.set_ylabel("top-1 (%) on 2,000 test images")
    ax.set_title("BigNAS on Fashion-MNIST (6k images, 6 epochs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
