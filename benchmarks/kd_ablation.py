"""gml-kd: ablations behind the shipped distillation defaults (Fashion-MNIST, held-out split).

Hyper-parameters are chosen here on a split of the *training* set (the first
``--train-limit`` images train, the last 10,000 validate), never on the test split that
``kd_fashion_mnist.py`` reports. Each run builds the algorithm from a gml config table
exactly as ``gml run`` does (same losses, heads, connectors, pre-training and
initialisation stages, same ``train_step``) and trains it with the runner's schedule:
SGD (momentum 0.9, weight decay 5e-4), batch 128, cosine learning rate stepped per
epoch, the data order of seed ``s`` in epoch ``e`` a ``randperm`` seeded with ``s + e``
(like mmengine's ``DefaultSampler``), the student initialised by ``torch.manual_seed(s)``.
The loop is a plain one over tensors already on the device, so a grid fits in minutes on
a GPU; ``--workers`` processes run the jobs in parallel and append one JSON line per run.

    python benchmarks/kd_ablation.py --device cuda --workers 14 --out-dir work_dirs/bench/kd_ablation
    python benchmarks/kd_ablation.py --grid smoke --train-limit 512 --workers 1     # a quick self-check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "kd"
STUDENT = {"type": "gml.SmallCNN", "width": 4}
TEACHER = {"type": "gml.SmallCNN", "width": 16}
AT_POSITIONS = {"layer2": 14 * 14, "layer3": 7 * 7}


# -- config tables ---------------------------------------------------------------------------
def head(name: str, s: str, t: str, loss: dict, **conn: Any) -> dict:
    return {"student_module": s, "teacher_module": t, "head": {"type": "BaseDistillationHead", "name": name,
                                                               "loss": loss, **conn}}


def kd_head(tau: float, weight: float) -> dict:
    return head("kd", "head.fc", "head.fc", {"type": "DistillKLDivLoss", "tau": tau, "loss_weight": weight})


def at_heads(beta: float) -> list[dict]:
    return [head(f"at{i}", f"backbone.layer{i}", f"backbone.layer{i}",
                 {"type": "ATLoss", "p": 2.0, "loss_weight": beta * AT_POSITIONS[f"layer{i}"] / 1024})
            for i in (2, 3)]


def ab_heads(scale: float) -> list[dict]:
    # the AB paper's per-layer weights 2^(i-n+1), times scale / 1000 (the loss sums over neurons)
    return [head(f"ab{i}", f"backbone.layer{i}.0.bn", f"backbone.layer{i}.0.bn",
                 {"type": "ABLoss", "margin": 1.0, "loss_weight": scale / 1000 * 2.0 ** (i - 4)},
                 stu_connector={"type": "ConvBNConnector"}) for i in (2, 3, 4)]


def fitnet_head(weight: float) -> dict:
    return head("hint3", "backbone.layer3", "backbone.layer3", {"type": "MSELoss", "loss_weight": weight},
                stu_connector={"type": "ConvBNConnector"})


def ft_head(beta: float, pretrain_epochs: int) -> dict:
    return head("ft", "backbone.layer4", "backbone.layer4", {"type": "FTLoss", "p": 1.0, "loss_weight": beta},
                tea_connector={"type": "Paraphraser", "rate": 0.5, "pretrain_criterion": {"type": "MSELoss"},
                               "pretrain_epochs": pretrain_epochs},
                stu_connector={"type": "Translator"})


def distill(heads: list[dict], teachers: int = 1, **algorithm: Any) -> dict:
    ts = [{"ckpt_path": f"@teacher{i}", "model": TEACHER, "distill_head_cfg": heads if i == 0 else []}
          for i in range(teachers)]
    return {"type": algorithm.pop("type", "TeacherStudentDistillation"), "model": STUDENT,
            "distiller": {"type": "TeacherDistiller", "distill_cfg": {"teacher": ts}}, "eval_teachers": False,
            **algorithm}


def meal(tau: float, adv: float, kd_weight: float = 1.0) -> dict:
    return distill([], teachers=2, use_meal=True,
                   meal={"temperature": tau, "kd_weight": kd_weight, "adversarial_weight": adv})


# -- grids -------------------------------------------------------------------------------------
T = "algorithm.distiller.distill_cfg.teacher[0].distill_head_cfg"


def ship(method: str, *overrides: str) -> dict:
    """A variant of the shipped ``configs/kd/<method>_digits.toml``: exactly these overrides."""
    return {"ship": method, "overrides": list(overrides)}


def grid(name: str, epochs: int, seeds: list[int]) -> list[dict]:
    """Jobs: {name, source, epochs, seed, [inside]} (``inside``: the init stage takes main epochs).

    ``source`` is either a shipped config plus overrides (``ship``; such a variant can be
    chosen by ``kd_fashion_mnist.py --choose-from``) or a plain algorithm ``table``.
    """
    e = epochs
    alone = {"table": {"type": "Supervised", "model": STUDENT}}
    rows: list[tuple[str, dict, int, dict]] = []
    if name == "smoke":
        rows = [("alone", alone, e, {}),
                ("kd t4 w1", ship("kd"), e, {}),
                ("fitnet extra1", ship("fitnet", "algorithm.init_epochs=1"), e, {}),
                ("ab extra1", ship("ab", "algorithm.init_epochs=1"), e, {}),
                ("ft b1 p1", ship("ft", f"{T}[0].head.tea_connector.pretrain_epochs=1"), e, {}),
                ("at b1000 +kd", {"table": distill(at_heads(1000) + [kd_head(4, 1)])}, e, {}),
                ("meal t1 a0.01", ship("meal"), e, {})]
    elif name == "main":
        for ep in (5, 2 * e, 4 * e):
            rows.append((f"alone e{ep}", alone, ep, {}))
        rows.append(("alone", alone, e, {}))
        for tau in (1, 2, 4, 8):
            for w in (1, 4):
                rows.append((f"kd t{tau} w{w}", ship("kd", f"{T}[0].head.loss.tau={tau}",
                                                     f"{T}[0].head.loss.loss_weight={w}"), e, {}))
        rows.append(("kd t4 w1 nolabel", ship("kd", f"{T}[0].head.loss.tau=4", f"{T}[0].head.loss.loss_weight=1",
                                              "algorithm.student_loss_weight=0.0"), e, {}))
        rows.append(("kd t4 w1 e2x", {"table": distill([kd_head(4, 1)])}, 2 * e, {}))
        rows.append(("kd t4 w1 e4x", {"table": distill([kd_head(4, 1)])}, 4 * e, {}))
        for tau in (1, 4):
            for adv in (0.0, 0.01):
                rows.append((f"meal t{tau} a{adv}", ship("meal", f"algorithm.meal.temperature={tau}",
                                                         f"algorithm.meal.adversarial_weight={adv}"), e, {}))
        rows.append(("meal t1 a0.01 e2x", {"table": meal(1, 0.01)}, 2 * e, {}))
        for beta in (250, 1000, 4000):
            rows.append((f"at b{beta}", ship("at", *(f"{T}[{i}].head.loss.loss_weight={beta * n / 1024:g}"
                                                     for i, n in enumerate(AT_POSITIONS.values()))), e, {}))
        rows.append(("at b1000 +kd t4", {"table": distill(at_heads(1000) + [kd_head(4, 1)])}, e, {}))
        rows.append(("fitnet w1 inside1", ship("fitnet", f"{T}[0].head.loss.loss_weight=1", "algorithm.init_epochs=1"),
                     e, {"inside": True}))
        for w, k in ((1, 1), (1, 2), (10, 1)):
            rows.append((f"fitnet w{w} extra{k}", ship("fitnet", f"{T}[0].head.loss.loss_weight={w}",
                                                       f"algorithm.init_epochs={k}"), e, {}))
        rows.append(("fitnet w1 extra1 nokd", {"table": distill([fitnet_head(1)], init_epochs=1,
                                                                 init_heads=["hint3"])}, e, {}))
        rows.append(("ab s3 inside1", ship("ab", "algorithm.init_epochs=1"), e, {"inside": True}))
        for k in (1, 2):
            rows.append((f"ab s3 extra{k}", ship("ab", f"algorithm.init_epochs={k}"), e, {}))
        rows.append(("ab s3 extra1 +kd t4", {"table": distill(ab_heads(3) + [kd_head(4, 1)],
                                                               type="ABTeacherStudentDistillation", init_epochs=1,
                                                               init_heads=["ab2", "ab3", "ab4"])}, e, {}))
        for beta, pe in ((1, 1), (4, 1), (0.25, 1), (1, 3)):
            rows.append((f"ft b{beta} p{pe}", ship("ft", f"{T}[0].head.loss.loss_weight={beta}",
                                                   f"{T}[0].head.tea_connector.pretrain_epochs={pe}"), e, {}))
        rows.append(("ft b1 p1 +kd t4", {"table": distill([ft_head(1, 1), kd_head(4, 1)])}, e, {}))
    elif name == "tau":  # the KD temperature in the benchmark's regime (10,000 images, 8 epochs)
        kd = lambda tau: ship("kd", f"{T}[0].head.loss.tau={tau}", f"{T}[0].head.loss.loss_weight=1")  # noqa: E731
        rows = [("alone", alone, e, {}), ("kd t1 w1", kd(1), e, {}), ("kd t2 w1", kd(2), e, {}),
                ("kd t4 w1", kd(4), e, {})]
    elif name == "cpu":  # the part of "main" that a shared 2-core CPU affords, most telling first
        kd = lambda tau, w: ship("kd", f"{T}[0].head.loss.tau={tau}", f"{T}[0].head.loss.loss_weight={w}")  # noqa: E731
        rows = [("alone", alone, e, {}), ("alone e2x", alone, 2 * e, {}),
                ("kd t4 w1", kd(4, 1), e, {}), ("kd t1 w1", kd(1, 1), e, {}), ("kd t4 w4", kd(4, 4), e, {}),
                ("kd t1 w4", kd(1, 4), e, {}), ("kd t2 w2", kd(2, 2), e, {}),
                ("meal t1 a0.01", ship("meal", "algorithm.meal.temperature=1",
                                       "algorithm.meal.adversarial_weight=0.01"), e, {}),
                ("meal t4 a0.01", ship("meal", "algorithm.meal.temperature=4",
                                       "algorithm.meal.adversarial_weight=0.01"), e, {}),
                ("fitnet w1 inside1", ship("fitnet", f"{T}[0].head.loss.loss_weight=1", "algorithm.init_epochs=1"),
                 e, {"inside": True}),
                ("fitnet w1 extra1", ship("fitnet", f"{T}[0].head.loss.loss_weight=1", "algorithm.init_epochs=1"),
                 e, {}),
                ("ab s3 inside1", ship("ab", "algorithm.init_epochs=1"), e, {"inside": True}),
                ("ab s3 extra1", ship("ab", "algorithm.init_epochs=1"), e, {}),
                ("ab s3 extra1 +kd t4", {"table": distill(ab_heads(3) + [kd_head(4, 1)],
                                                           type="ABTeacherStudentDistillation", init_epochs=1,
                                                           init_heads=["ab2", "ab3", "ab4"])}, e, {})]
        for beta in (1000, 4000):
            rows.append((f"at b{beta}", ship("at", *(f"{T}[{i}].head.loss.loss_weight={beta * n / 1024:g}"
                                                     for i, n in enumerate(AT_POSITIONS.values()))), e, {}))
        rows.append(("at b1000 +kd t4", {"table": distill(at_heads(1000) + [kd_head(4, 1)])}, e, {}))
        for beta in (1, 4):
            rows.append((f"ft b{beta} p1", ship("ft", f"{T}[0].head.loss.loss_weight={beta}",
                                                f"{T}[0].head.tea_connector.pretrain_epochs=1"), e, {}))
        rows.append(("ft b1 p1 +kd t4", {"table": distill([ft_head(1, 1), kd_head(4, 1)])}, e, {}))
    else:
        raise SystemExit(f"--grid: unknown grid {name!r}; accepted: smoke, tau, cpu, main")
    return [{"name": n, "source": src, "epochs": ep, "seed": s, **x} for n, src, ep, x in rows for s in seeds]


# -- one run --------------------------------------------------------------------------------------
class Loader:
    """Batches of on-device tensors in mmengine's ``DefaultSampler`` order (``randperm``, seed + epoch)."""

    def __init__(self, x: Any, y: Any, batch: int, seed: int):
        self.x, self.y, self.batch, self.seed, self.epoch = x, y, batch, seed, 0
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch)

    def __iter__(self):
        import torch

        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.x), generator=g).to(self.x.device)
        for i in range(0, len(order), self.batch):
            idx = order[i:i + self.batch]
            yield self.x[idx], self.y[idx]


class Run:
    """What ``before_train`` reads (a ``RunInfo`` look-alike)."""

    def __init__(self, work_dir: Path, loader: Loader, evaluate: Any):
        self.work_dir, self.train_loader, self.val_loader, self.evaluate = work_dir, loader, None, evaluate


def load_data(train_limit: int, device: str):
    import torch

    from gml_core._internal.data.fashion_mnist import fashion_mnist

    bundle = fashion_mnist()
    x, y = bundle.train.tensors
    n_val = 10000
    x_tr, y_tr = x[:-n_val], y[:-n_val]
    if train_limit:  # the first train_limit images train, the last max(1000, train_limit / 2) validate
        x_tr, y_tr = x_tr[:train_limit], y_tr[:train_limit]
        n_val = min(n_val, max(1000, train_limit // 2))
    return (x_tr.to(device), y_tr.to(device), x[-n_val:].to(device), y[-n_val:].to(device),
            torch.device(device))


def train_one(job: dict, data: tuple, teachers: list[str], work: Path) -> dict:
    import torch

    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config.loader import check_components, structure_algorithm
    from gml_core._internal.config.schema import TrainConfig
    from gml_core._internal.plugins import get_host
    from gml_core._internal.training.optim import make_optim_wrapper

    x_tr, y_tr, x_va, y_va, device = data
    source = job["source"]
    if "ship" in source:
        from gml_core._internal.config.loader import load_config

        paths = [f'algorithm.distiller.distill_cfg.teacher[{i}].ckpt_path="{t}"' for i, t in enumerate(teachers)]
        paths = paths if source["ship"] == "meal" else paths[:1]
        config = load_config(CONFIGS / f"{source['ship']}_digits.toml", source["overrides"] + paths).algorithm
    else:
        table = json.loads(json.dumps(source["table"]).replace('"@teacher0"', json.dumps(teachers[0]))
                           .replace('"@teacher1"', json.dumps(teachers[1])))
        config = structure_algorithm(table)
    check_components(config)
    seed, epochs = job["seed"], job["epochs"]
    main_epochs = epochs - getattr(config, "init_epochs", 0) if job.get("inside") else epochs
    train = TrainConfig(epochs=main_epochs, batch_size=128, lr=job.get("lr", 0.1))
    torch.manual_seed(seed)
    context = BuildContext(DataInfo(10, 1, (28, 28)), train, work)
    algo = get_host().hook.gml_build_algorithm(config=config, context=context).to(device)
    wrapper = make_optim_wrapper(algo.optimizer_param_groups(), train)
    loader = Loader(x_tr, y_tr, 128, seed)

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> float:
        was = model.training
        model.eval()
        hits = sum(int((model(x_va[i:i + 1000]).argmax(1) == y_va[i:i + 1000]).sum())
                   for i in range(0, len(x_va), 1000))
        model.train(was)
        return 100.0 * hits / len(x_va)

    start = time.perf_counter()
    algo.train()
    algo.before_train(Run(work, loader, evaluate))
    last = {}
    for epoch in range(main_epochs):
        for group in wrapper.optimizer.param_groups:
            group["lr"] = train.lr * 0.5 * (1 + math.cos(math.pi * epoch / main_epochs))
        loader.set_epoch(epoch)
        for batch in loader:
            last = algo.train_step(batch, wrapper)
    top1 = evaluate(algo.model)
    out = {k: job[k] for k in ("name", "seed", "epochs")}
    if "ship" in source and not job.get("inside"):
        out.update(ship=source["ship"], overrides=source["overrides"])
    out.update(top1=round(top1, 2), seconds=round(time.perf_counter() - start, 1),
               last_losses={k: round(float(v), 4) for k, v in last.items()})
    if job.get("save"):
        state = {f"model.{k}": v.detach().cpu() for k, v in algo.model.state_dict().items()}
        tmp = job["save"] + ".tmp"
        torch.save({"state_dict": state}, tmp)
        os.replace(tmp, job["save"])
    return out


def worker(rank: int, jobs: list[dict], args: argparse.Namespace, queue: Any) -> None:
    import torch

    torch.set_num_threads(1)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    data = load_data(args.train_limit, args.device)
    out_dir = Path(args.out_dir)
    teachers = [str(out_dir / f"teacher{i}.pth") for i in range(2)]
    while True:
        job = queue.get()
        if job is None:
            return
        if time.time() > args.deadline:
            continue
        try:
            while job.get("needs_teachers") and not all(Path(t).is_file() for t in teachers):
                time.sleep(2)
            row = train_one(job, data, teachers, out_dir / f"w{rank}")
        except Exception as exc:  # record and go on: one broken variant must not stop the grid
            row = {k: job.get(k) for k in ("name", "seed", "epochs")}
            row["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        with open(args.jsonl or out_dir / "ablation.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default="main")
    parser.add_argument("--epochs", type=int, default=10, help="main budget of the grid (student epochs)")
    parser.add_argument("--teacher-epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--train-limit", type=int, default=0, help="0: 50,000 images (all but the held-out 10,000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=1e9, help="start no job after this many minutes")
    parser.add_argument("--out-dir", default="work_dirs/bench/kd_ablation")
    parser.add_argument("--jsonl", default="", help="results file (default: OUT_DIR/ablation.jsonl)")
    args = parser.parse_args()
    args.deadline = time.time() + 60 * args.minutes
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teachers = [{"name": f"teacher{i}", "source": {"table": {"type": "Supervised", "model": TEACHER}}, "seed": i,
                 "epochs": args.teacher_epochs, "save": str(out_dir / f"teacher{i}.pth")} for i in range(2)]
    jobs = grid(args.grid, args.epochs, args.seeds)
    for j in jobs:
        j["needs_teachers"] = "ship" in j["source"] or j["source"]["table"]["type"] != "Supervised"
    # teachers first, then the longest jobs (students alone need no teacher and fill the wait)
    jobs.sort(key=lambda j: (j["needs_teachers"], j["seed"] >= 2, -j["epochs"]))
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for j in teachers + jobs:
        queue.put(j)
    for _ in range(args.workers):
        queue.put(None)
    procs = [ctx.Process(target=worker, args=(r, [], args, queue)) for r in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    summarise(Path(args.jsonl or out_dir / "ablation.jsonl"))


def summarise(path: Path) -> None:
    import statistics

    rows: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows.setdefault(r["name"], []).append(r)
    print("\n| variant | epochs | top-1 mean | seeds |\n|---|---|---|---|")
    for name, rs in rows.items():
        ok = [r for r in rs if "top1" in r]
        if not ok:
            print(f"| {name} | | error | {rs[0].get('error', '')} |")
            continue
        accs = [r["top1"] for r in sorted(ok, key=lambda r: r["seed"])]
        print(f"| {name} | {ok[0]['epochs']} | {statistics.mean(accs):.2f} | {' / '.join(f'{a:.2f}' for a in accs)} |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
