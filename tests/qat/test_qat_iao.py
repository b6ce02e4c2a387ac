"""``IAO`` through gml's runner: QAT, schedules, int8 accuracy, export and weights_only round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from qat_helpers import REPO, accuracy

from gml_core._internal.config.loader import load_config
from gml_core._internal.training.runner import build_runner

#: the int8 model must stay this close to the fp32 model it was fine-tuned from (top-1 points, digits val)
INT8_MARGIN = 2.0
#: relative L2 error allowed between int8 logits and fake-quantized logits on the validation set
REL_ERROR = 0.05


def train(config_name: str, work_dir: Path, *overrides: str, resume: bool = False):
    cfg = load_config(REPO / "configs" / "qat" / config_name,
                      ["algorithm.latency_runs=5", "runtime.progress=false", *overrides],
                      work_dir=str(work_dir), resume=resume or None)
    runner, algorithm, hook = build_runner(cfg, work_dir)
    runner.train()
    return algorithm, hook.summary_rows


def test_eager_qat_from_fp32_checkpoint(tmp_path, fp32_checkpoint, digits16):
    from gml_qat.export import load_int8, load_torchscript

    algorithm, rows = train("iao_digits.toml", tmp_path, f'algorithm.model.init_from="{fp32_checkpoint}"',
                            "train.epochs=2")
    report = json.loads((tmp_path / "qat_report.json").read_text())
    fp32_top1, int8_top1 = report["fp32"]["top1"], report["int8"]["top1"]
    assert report["fp32"]["weights"] == "init_from"
    assert fp32_top1 > 90.0
    assert int8_top1 >= fp32_top1 - INT8_MARGIN, report
    assert rows["int8 top1"].startswith(f"{int8_top1:.2f}")
    assert report["int8"]["torchscript_bytes"] * 2.5 < report["fp32"]["torchscript_bytes"]  # ~4x in theory
    assert report["int8"]["flops"] == report["fp32"]["flops"] > 0  # BN folding adds no multiply-adds
    assert report["tie_rule"].startswith("argmax") and "fp32 / int8 FLOPs, params (batch 1)" in rows
    lat = report["latency"]
    assert lat["batch_size"] == 1 and lat["threads"] == torch.get_num_threads() and lat["passes"] == 5
    assert lat["executed"].startswith("TorchScript") and lat["paired_quartiles"][1] == lat["speedup"]

    # the int8 model computes what the fake-quantized model simulated
    x, y = digits16.val.tensors
    algorithm.model.eval()
    with torch.no_grad():
        fake = algorithm.model(x)
    int8 = load_int8(tmp_path / "model_int8.pth")
    with torch.no_grad():
        real = int8(x)
    rel = float((real - fake).norm() / fake.norm())
    assert rel < REL_ERROR, rel
    assert float((real.argmax(1) == fake.argmax(1)).float().mean()) >= 0.98
    assert accuracy(int8, digits16.val) == pytest.approx(int8_top1, abs=1e-3)

    # round trip: weights_only loading, same outputs as the TorchScript artifact and a fresh conversion
    raw = torch.load(tmp_path / "model_int8.pth", weights_only=True)
    assert raw["format"] == "gml-qat-int8" and raw["backend"] == "fbgemm"
    scripted = load_torchscript(tmp_path / "model_int8.ts")
    fresh = algorithm.quantizer.convert(algorithm.model)
    with torch.no_grad():
        assert torch.equal(real, fresh(x))
        torch.testing.assert_close(scripted(x), real, rtol=0, atol=1e-5)
    # the training checkpoints (fake-quant buffers included) load under weights_only too
    torch.load(tmp_path / "epoch_2.pth", weights_only=True)


def test_fx_qat_from_scratch_then_resume(tmp_path):
    from gml_qat.export import load_int8

    overrides = ['algorithm.model.init_from=""', "train.epochs=1", "train.lr=0.05", "algorithm.freeze_bn_after=1",
                 "algorithm.freeze_observer_after=1"]
    _, rows = train("iao_digits_fx.toml", tmp_path, *overrides)
    assert "fp32 top1 (QAT weights, fake quant off)" in rows
    first = json.loads((tmp_path / "qat_report.json").read_text())
    algorithm, rows = train("iao_digits_fx.toml", tmp_path, *overrides[:-3], "train.epochs=2",
                            "algorithm.freeze_bn_after=1", "algorithm.freeze_observer_after=1", resume=True)
    assert algorithm.bn_frozen and algorithm.observers_frozen
    report = json.loads((tmp_path / "qat_report.json").read_text())
    assert report["int8"]["top1"] > 80.0 and first["latency"]["passes"] == 5
    int8 = load_int8(tmp_path / "model_int8.pth")
    x = torch.randn(5, 1, 16, 16)
    fresh = algorithm.quantizer.convert(algorithm.model)
    with torch.no_grad():
        assert torch.equal(int8(x), fresh(x))
    from torch.ao.nn.quantized import Linear

    assert isinstance(dict(int8.named_modules())["head.fc"], Linear)  # FX: the classifier is int8 too


def _context(tmp_path, epochs=2):
    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config.schema import TrainConfig

    return BuildContext(DataInfo(10, 1, (16, 16)), TrainConfig(epochs=epochs), tmp_path)


def _iao_config(**changes):
    from gml_core._internal.config.loader import structure_algorithm

    table = {"type": "IAO", "model": {"type": "gml.SmallCNN", "width": 4},
             "quantizer": {"type": "FxQuantizer", "backend": "x86"}, **changes}
    return structure_algorithm(table)


def test_freeze_schedule_in_epochs_and_iterations(tmp_path):
    from types import SimpleNamespace

    from gml_qat.algorithm import IAO

    algo = IAO(_iao_config(freeze_bn_after=1, freeze_observer_after="25 iters"), _context(tmp_path))
    algo.before_train(SimpleNamespace(iters_per_epoch=10))
    fqs = [m for m in algo.model.modules() if isinstance(m, torch.ao.quantization.FakeQuantizeBase)]
    convbn = [m for m in algo.model.modules() if hasattr(m, "freeze_bn")]
    assert convbn and fqs
    for it in range(10):
        algo.before_train_iter(it, it // 10, 30)
    assert not algo.bn_frozen and not any(m.freeze_bn for m in convbn)
    algo.before_train_iter(10, 1, 30)
    assert algo.bn_frozen and all(m.freeze_bn for m in convbn)
    algo.before_train_iter(24, 2, 30)
    assert all(int(f.observer_enabled) == 1 for f in fqs)
    algo.before_train_iter(25, 2, 30)
    assert algo.observers_frozen and all(int(f.observer_enabled) == 0 for f in fqs)
    never = IAO(_iao_config(freeze_bn_after="never", freeze_observer_after=-1), _context(tmp_path))
    never.before_train(SimpleNamespace(iters_per_epoch=10))
    never.before_train_iter(10 ** 6, 10 ** 5, 10 ** 6)
    assert not never.bn_frozen and not never.observers_frozen


def test_observers_cannot_freeze_before_seeing_data(tmp_path):
    from gml_core._internal.errors import GmlUserError
    from gml_qat.algorithm import IAO

    with pytest.raises(GmlUserError, match="algorithm.freeze_observer_after: observers must see data"):
        IAO(_iao_config(freeze_observer_after=0), _context(tmp_path))


def test_init_from_an_exported_model_rebuilds_its_architecture(tmp_path):
    """A pruned/NAS export carries ``model_spec``: QAT starts from that architecture and exports it."""
    from gml_core._internal.models.small_cnn import SmallCNN
    from gml_qat.algorithm import IAO

    exported = SmallCNN(width=8)
    path = tmp_path / "pruned.pth"
    torch.save({"model_spec": {"type": "gml.SmallCNN", "width": 8}, "state_dict": exported.state_dict()}, path)
    config = _iao_config(model={"type": "gml.SmallCNN", "width": 16, "init_from": str(path)})
    algo = IAO(config, _context(tmp_path))
    assert algo.float_spec == {"type": "gml.SmallCNN", "width": 8, "num_classes": 10, "in_channels": 1}
    assert algo.from_checkpoint
    assert torch.equal(algo.float_start.head.fc.weight, exported.head.fc.weight)
    assert algo.model.backbone.conv1.weight.shape[0] == 8


def test_predict_does_not_calibrate_on_validation_data(tmp_path):
    from gml_qat.algorithm import IAO

    algo = IAO(_iao_config(), _context(tmp_path))
    algo.model(torch.randn(8, 1, 16, 16))
    scales = [m.scale.clone() for m in algo.model.modules() if isinstance(m, torch.ao.quantization.FakeQuantizeBase)]
    algo.eval()
    algo.predict(torch.randn(8, 1, 16, 16) * 100)
    after = [m.scale for m in algo.model.modules() if isinstance(m, torch.ao.quantization.FakeQuantizeBase)]
    assert all(torch.equal(a, b) for a, b in zip(scales, after))


def test_distributed_qat_ranks_share_quantization_state(tmp_path):
    """Two gloo processes: after the observers freeze both ranks fake-quantize with rank 0's scales."""
    import os
    import subprocess
    import sys

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from gml_core._internal.hookspecs import hookimpl\n"
        "class P:\n"
        "    @hookimpl\n"
        "    def gml_on_evaluate(self, algorithm, iteration, epoch, metrics):\n"
        "        state = {k: v for k, v in algorithm.model.state_dict().items()\n"
        "                 if k.endswith(('scale', 'zero_point'))}\n"
        f"        torch.save(state, r'{tmp_path}/rank%d.pth' % dist.get_rank())\n"
        "from gml_core._internal import plugins\n"
        "plugins.get_host().pm.register(P(), name='probe')\n"
        "from gml_core._internal.cli import main\n"
        "main(sys.argv[1:])\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GML_LOAD_PLUGINS": "qat"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           str(probe), "run", str(REPO / "configs/qat/iao_digits_fx.toml"), "--launcher", "pytorch",
           "--work-dir", str(tmp_path / "wd"), "--cfg-options", 'algorithm.model.init_from=""', "train.epochs=1",
           "data.val_ratio=0.5", 'algorithm.freeze_observer_after="4 iters"', "algorithm.latency_runs=3",
           "runtime.progress=false"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    a = torch.load(tmp_path / "rank0.pth", weights_only=True)
    b = torch.load(tmp_path / "rank1.pth", weights_only=True)
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "wd" / "model_int8.pth").is_file()


def test_models_without_torchscript_still_get_a_report(tmp_path):
    """A model torch.jit can neither trace nor script: eager timing, state-dict sizes, a row saying why."""
    from gml_qat.quantizers.fx import FxQuantizer
    from gml_qat.report import _scripted, summary_rows

    class Untraceable(torch.nn.Module):
        def forward(self, x):
            return {"logits": x.numpy().sum()}  # numpy: neither traceable nor scriptable

    module, why = _scripted(Untraceable(), torch.randn(1, 2), "int8")
    assert module is None and why
    report = {"fp32": {"top1": 90.0, "weights": "init_from", "torchscript_bytes": None, "state_dict_bytes": 4000},
              "int8": {"top1": 89.5, "torchscript_bytes": None, "state_dict_bytes": 1000, "torchscript_error": why},
              "latency": {"batch_size": 1, "threads": 1, "fp32_ms": 2.0, "int8_ms": 1.0, "speedup": 2.0,
                          "paired_quartiles": [1.9, 2.0, 2.1], "stable": True}, "files": {}}
    rows = summary_rows(FxQuantizer("x86"), report)
    assert rows["fp32 / int8 CPU latency (batch 1, 1 thread, interleaved)"] == \
        "2.000 / 1.000 ms (2.00x; paired 1.90-2.10x)"
    assert rows["fp32 / int8 size (state dict)"].endswith("(4.0x)")
    assert rows["int8 TorchScript"].startswith("not exported (")
