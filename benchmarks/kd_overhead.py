"""gml-kd: time of one distillation training step through gml against a hand-written PyTorch loop.

Both sides use the same models (the hand-written side gets copies of the algorithm's student,
teacher and connector), the same batch, the same optimiser settings and the same losses:

* ``kd``: teacher forward (no grad), student forward, cross-entropy + tau^2 KL on the logits.
* ``fitnet``: the same plus a hint: the student's ``backbone.layer3`` feature through a 1x1
  conv + BN regressor, MSE to the teacher's ``backbone.layer3`` (forward written out by hand).

The gml side is ``TeacherStudentDistillation.train_step`` with its mmengine ``OptimWrapper``, as
``gml run`` calls it (features captured with forward hooks, losses summed by mmengine). Steps
alternate between the two sides (``--block`` steps at a time, the order flipped every round). Each step
is timed twice: wall clock and this process's CPU time (``time.process_time``, one torch thread), which
leaves out the time the process waits for a core on a machine shared with other jobs. The ratio is
median(gml) / median(hand) of each clock. Goal: <= 1.05. Sizes (image side, batch): 8x8 batch 2, where compute
is negligible and the difference is gml's fixed per-step cost, then 16x16 batch 64 (the digits
configs) and 32x32 batch 128.

    OMP_NUM_THREADS=1 python benchmarks/kd_overhead.py --rounds 300 --block 1 --out work_dirs/bench/kd_overhead.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def build_algorithm(case: str, image: int, batch: int):
    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config.loader import check_components, structure_algorithm
    from gml_core._internal.config.schema import TrainConfig
    from gml_core._internal.plugins import get_host

    heads = [{"student_module": "head.fc", "teacher_module": "head.fc",
              "head": {"type": "BaseDistillationHead", "name": "kd",
                       "loss": {"type": "DistillKLDivLoss", "tau": 4.0}}}]
    if case == "fitnet":
        heads.insert(0, {"student_module": "backbone.layer3", "teacher_module": "backbone.layer3",
                         "head": {"type": "BaseDistillationHead", "name": "hint", "loss": {"type": "MSELoss"},
                                  "stu_connector": {"type": "ConvBNConnector"}}})
    table = {"type": "TeacherStudentDistillation", "model": {"type": "gml.SmallCNN", "width": 4},
             "eval_teachers": False,
             "distiller": {"type": "TeacherDistiller", "distill_cfg": {"teacher": [
                 {"ckpt_path": "", "model": {"type": "gml.SmallCNN", "width": 16}, "distill_head_cfg": heads}]}}}
    config = structure_algorithm(table)
    check_components(config)
    train = TrainConfig(batch_size=batch, lr=0.01)
    context = BuildContext(DataInfo(10, 1, (image, image)), train)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random teacher: timing only
        return get_host().hook.gml_build_algorithm(config=config, context=context), train


class HandLoop:
    """The same step written directly in PyTorch."""

    def __init__(self, algo, train, case: str):
        self.student = copy.deepcopy(algo.model).train()
        self.teacher = copy.deepcopy(algo.distiller.teachers[0]).eval()
        self.case = case
        params = list(self.student.parameters())
        if case == "fitnet":
            self.regressor = copy.deepcopy(algo.distiller.heads["hint"].stu_connector).train()
            params += list(self.regressor.parameters())
        self.opt = torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)

    @staticmethod
    def _layers(net, x):
        b = net.backbone
        h3 = b.layer3(b.layer2(b.layer1(b.relu(b.bn1(b.conv1(x))))))
        return h3, net.head(b.layer4(h3))

    def step(self, x, y) -> float:
        tau = 4.0
        with torch.no_grad():
            if self.case == "fitnet":
                t_feat, t_logits = self._layers(self.teacher, x)
            else:
                t_logits = self.teacher(x)
        if self.case == "fitnet":
            s_feat, s_logits = self._layers(self.student, x)
        else:
            s_logits = self.student(x)
        kl = F.kl_div(F.log_softmax(s_logits / tau, 1), F.log_softmax(t_logits / tau, 1), reduction="sum",
                      log_target=True) / x.shape[0] * tau ** 2
        loss = F.cross_entropy(s_logits, y) + kl
        if self.case == "fitnet":
            loss = loss + F.mse_loss(self.regressor(s_feat), t_feat)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def measure(case: str, image: int, batch: int, rounds: int, block: int) -> dict:
    torch.manual_seed(0)
    algo, train = build_algorithm(case, image, batch)
    hand = HandLoop(algo, train, case)
    wrapper = algo.build_optim_wrapper(train)
    algo.train()
    x = torch.randn(batch, 1, image, image)
    y = torch.randint(0, 10, (batch,))

    def gml_step():
        algo.train_step((x, y), wrapper)

    def hand_step():
        hand.step(x, y)

    for _ in range(max(block, 10)):  # warm-up
        gml_step()
        hand_step()
    wall = {"gml": [], "hand": []}
    cpu = {"gml": [], "hand": []}
    for r in range(rounds):
        order = [("gml", gml_step), ("hand", hand_step)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            for _ in range(block):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                cpu[name].append(time.process_time() - c0)
                wall[name].append(time.perf_counter() - t0)
    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    return {"case": case, "image": image, "batch": batch, "steps_each": len(wall["gml"]),
            "gml_cpu_ms": round(1000 * c["gml"], 3), "hand_cpu_ms": round(1000 * c["hand"], 3),
            "ratio_cpu": round(c["gml"] / c["hand"], 4), "overhead_cpu_ms": round(1000 * (c["gml"] - c["hand"]), 3),
            "gml_wall_ms": round(1000 * w["gml"], 3), "hand_wall_ms": round(1000 * w["hand"], 3),
            "ratio_wall": round(w["gml"] / w["hand"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--block", type=int, default=1)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for case in ("kd", "fitnet"):
        for image, batch in ((8, 2), (16, 64), (32, 128)):
            row = measure(case, image, batch, args.rounds, args.block)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {"rows": rows, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "machine": platform.processor() or platform.machine()}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
