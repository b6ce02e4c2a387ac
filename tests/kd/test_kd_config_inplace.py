"""Config vocabulary and checks; the in-place distiller's sub-networks and sandwich step."""

import pytest
import torch
from kd_helpers import FakeRun, batch, build, head, save_teacher, table

from gml_core._internal.config.loader import structure_algorithm
from gml_core._internal.errors import ConfigError, GmlUserError
from gml_core._internal.models.small_cnn import SmallCNN
from gml_kd.config import InplaceDistillerConfig, TeacherDistillerConfig
from gml_kd.inplace import WidthMasker

KD = head("head.fc", "head.fc", "kd", {"type": "DistillKLDivLoss"})


def problems(tab) -> str:
    with pytest.raises(ConfigError) as err:
        structure_algorithm(tab)
    return str(err.value)


def test_seed_vocabulary_single_teacher_table_is_one_teacher():
    tab = table("t.pth", [KD])
    tab["distiller"]["distill_cfg"]["teacher"] = tab["distiller"]["distill_cfg"]["teacher"][0]  # a dict
    config = structure_algorithm(tab)
    assert isinstance(config.distiller, TeacherDistillerConfig)
    (teacher,) = config.distiller.distill_cfg.teacher
    assert teacher.ckpt_path == "t.pth" and teacher.distill_head_cfg[0].head.name == "kd"
    assert teacher.distill_head_cfg[0].head.type == "BaseDistillationHead"
    assert config.use_meal is False and config.pretrained == ""


def test_unknown_keys_types_and_distillers_are_reported_with_paths():
    tab = table("t.pth", [KD])
    tab["distiller"]["distill_cfg"]["teacher"][0]["ckpt_pth"] = "x"
    tab["init_epochs"] = 1.5
    msg = problems(tab)
    assert "algorithm.distiller.distill_cfg.teacher[0].ckpt_pth: unknown key (did you mean 'ckpt_path'?)" in msg
    assert "algorithm.init_epochs: expected an integer, got 1.5" in msg
    tab = table("t.pth", [KD])
    tab["distiller"]["type"] = "TeacherDistill"
    assert "algorithm.distiller: unknown distiller 'TeacherDistill' (did you mean 'TeacherDistiller'?)" \
        in problems(tab)


def test_cross_field_checks():
    twice = table("t.pth", [KD, head("head.fc", "head.fc", "kd", {"type": "MSELoss"})])
    assert "distill_head_cfg[1].head.name: duplicate head name 'kd'" in problems(twice)
    assert "algorithm.init_heads: no head named 'k' (did you mean 'kd'?)" in \
        problems(table("t.pth", [KD], init_epochs=1, init_heads=["k"]))
    assert "algorithm.init_heads: init_epochs > 0 needs the names" in problems(table("t.pth", [KD], init_epochs=1))
    assert "no distill_head_cfg" in problems(table("t.pth", []))
    ab = table("t.pth", [KD], init_epochs=0)
    ab["type"] = "ABTeacherStudentDistillation"
    assert "algorithm.init_epochs: ABTeacherStudentDistillation needs an initialisation stage" in problems(ab)
    inplace = {"type": "TeacherStudentDistillation", "model": {"type": "gml.SmallCNN"}, "use_meal": True,
               "distiller": {"type": "InplaceDistiller", "min_width": 1.5}}
    msg = problems(inplace)
    assert "algorithm.use_meal: MEAL v2 needs teachers" in msg and "algorithm.distiller.min_width" in msg


def test_ab_defaults_to_all_heads_in_its_initialisation_stage():
    tab = table("t.pth", [KD])
    tab["type"] = "ABTeacherStudentDistillation"
    config = structure_algorithm(tab)
    from gml_kd.config import init_head_set

    assert config.init_epochs == 1 and init_head_set(config) == {"kd"}


def _narrow_copy(wide: SmallCNN, narrow: SmallCNN, width: float) -> None:
    """Copy the first channels of every layer of ``wide`` into ``narrow``."""
    keep = WidthMasker.kept
    with torch.no_grad():
        wide_mods, narrow_mods = dict(wide.named_modules()), dict(narrow.named_modules())
        for name, m in narrow_mods.items():
            w = wide_mods[name]
            if isinstance(m, torch.nn.Conv2d):
                cin = m.in_channels if w.in_channels == 1 else keep(w.in_channels, width)
                m.weight.copy_(w.weight[:keep(w.out_channels, width), :cin])
            elif isinstance(m, torch.nn.BatchNorm2d):
                k = keep(w.num_features, width)
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    getattr(m, attr).copy_(getattr(w, attr)[:k])
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(w.weight[:, :keep(w.in_features, width)])
                m.bias.copy_(w.bias)


def test_masked_width_is_the_narrower_network():
    torch.manual_seed(0)
    wide, narrow = SmallCNN(width=8).double(), SmallCNN(width=4).double()
    for bn in (m for m in wide.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    _narrow_copy(wide, narrow, 0.5)
    x = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    wide.eval(), narrow.eval()
    with WidthMasker(wide).width(0.5):
        masked = wide(x)
    assert (masked - narrow(x)).abs().max() < 1e-10
    assert not torch.allclose(wide(x), masked)  # hooks are gone after the block
    # training mode: batch statistics of the kept channels, running statistics untouched
    wide.train(), narrow.train()
    stats = {k: v.clone() for k, v in wide.state_dict().items() if "running" in k or "num_batches" in k}
    with WidthMasker(wide).width(0.5):
        masked = wide(x)
    assert (masked - narrow(x)).abs().max() < 1e-10
    assert all(torch.equal(v, wide.state_dict()[k]) for k, v in stats.items())


INPLACE = {"type": "TeacherStudentDistillation", "model": {"type": "gml.SmallCNN", "width": 8},
           "distiller": {"type": "InplaceDistiller", "min_width": 0.25, "num_random": 2,
                         "eval_widths": [0.25, 1.0], "calib_batches": 2}}


def test_inplace_step_accumulates_the_sandwich_into_one_update(tmp_path):
    torch.manual_seed(0)
    algo = build(INPLACE)
    assert isinstance(algo.config.distiller, InplaceDistillerConfig)
    wrapper = algo.build_optim_wrapper(algo.context.train)
    steps, backwards = [], []
    wrapper.optimizer.register_step_post_hook(lambda *a: steps.append(1))
    seen_widths = []
    original = algo.distiller.masker.width

    def spy(width, update_stats=False):
        seen_widths.append(width)
        return original(width, update_stats)

    algo.distiller.masker.width = spy
    real_backward = wrapper.backward
    wrapper.backward = lambda loss, **kw: (backwards.append(float(loss.detach())), real_backward(loss, **kw))[1]
    algo.train()
    log = algo.train_step(batch(16), wrapper)
    assert len(steps) == 1 and len(backwards) == 4  # full width + min + 2 random, one optimiser step
    assert seen_widths[0] == 0.25 and all(0.25 <= w < 1.0 for w in seen_widths)
    assert {"loss", "loss_cls", "loss_inplace"} <= set(log)
    assert float(log["loss_inplace"]) == pytest.approx(sum(backwards[1:]), rel=1e-5)
    rows = algo.after_train(FakeRun(tmp_path, [batch(16, seed=s) for s in range(3)]))
    assert "width 0.25 top1 (BN recalibrated)" in rows and "width 1 top1 (BN recalibrated)" in rows


def test_inplace_needs_batchnorm():
    from gml_kd.inplace import WidthMasker

    with pytest.raises(GmlUserError, match="no BatchNorm layers"):
        WidthMasker(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_pretrained_student_init(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    student = tmp_path / "student.pth"
    save_teacher(student, width=4, seed=9)
    algo = build(table(str(ckpt), [KD], pretrained=str(student)))
    assert torch.equal(algo.model.head.fc.weight, torch.load(student, weights_only=True)["state_dict"]
                       ["model.head.fc.weight"])
    with pytest.raises(GmlUserError, match=r"algorithm.pretrained: checkpoint .*missing\.pth not found"):
        build(table(str(ckpt), [KD], pretrained=str(tmp_path / "missing.pth")))


def test_distiller_api_for_other_algorithms(tmp_path):
    from kd_helpers import DATA

    from gml_core._internal.algorithms import BuildContext
    from gml_core._internal.config.schema import TrainConfig
    from gml_kd.api import build_distiller, distill_forward

    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    context = BuildContext(DATA, TrainConfig(), tmp_path)
    student = SmallCNN(width=4)
    teacher = {"ckpt_path": str(ckpt), "model": {"type": "gml.SmallCNN", "width": 8}, "distill_head_cfg": [KD]}
    distiller = build_distiller({"distill_cfg": {"teacher": teacher}}, student, context, key="algorithm.teacher")
    logits, losses = distill_forward(distiller, student, batch()[0])
    assert logits.shape == (8, 10) and set(losses) == {"loss_kd"} and losses["loss_kd"].requires_grad
    bad = {**teacher, "ckpt_path": str(tmp_path / "nope.pth")}
    with pytest.raises(GmlUserError, match=r"^algorithm\.teacher\.distill_cfg\.teacher\[0\]\.ckpt_path"):
        build_distiller({"distill_cfg": {"teacher": [bad]}}, student, context, key="algorithm.teacher")
    typo = {**teacher, "distill_head_cfg": [head("head.fc", "head.fc", "kd", {"type": "DistillKLDivLoss",
                                                                             "tua": 2.0})]}
    with pytest.raises(ConfigError, match=r"algorithm\.teacher\.distill_cfg\.teacher\[0\]\.distill_head_cfg\[0\]"
                                          r"\.head\.loss\.tua: unknown argument \(did you mean 'tau'\?\)"):
        build_distiller({"distill_cfg": {"teacher": [typo]}}, student, context, key="algorithm.teacher")


def test_third_party_loss_and_connector_through_the_registrars(tmp_path, monkeypatch):
    import types

    from gml_core._internal import plugins
    from gml_core._internal.hookspecs import hookimpl

    class HalfConnector(torch.nn.Module):
        def __init__(self, in_channels: int = 1):
            super().__init__()

        def forward(self, x):
            return x * 0.5

    class L1Feature(torch.nn.Module):
        def __init__(self, loss_weight: float = 1.0):
            super().__init__()
            self.loss_weight = loss_weight

        def forward(self, s, t):
            return self.loss_weight * (s - t).abs().mean()

    third = types.ModuleType("third_party_kd")
    third.gml_register_connector = hookimpl(lambda register: register("HalfConnector", HalfConnector))
    third.gml_register_loss = hookimpl(lambda register: register("L1Feature", L1Feature))
    monkeypatch.setenv("GML_LOAD_PLUGINS", "kd")
    plugins.set_host(plugins.PluginHost(extra_plugins={"third": third}))
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [head("head.fc", "head.fc", "l1", {"type": "L1Feature", "loss_weight": 2.0},
                                        tea_connector={"type": "HalfConnector"})]))
    x, y = batch()
    with torch.no_grad():
        expected = 2.0 * (algo.model(x) - 0.5 * algo.distiller.teachers[0](x)).abs().mean()
        assert algo.loss(x, y)["loss_l1"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_seed_name_image_classifier_distiller_is_the_teacher_student_distillation(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    tab = table(str(ckpt), [KD])
    tab["type"] = "ImageClassifierDistiller"   # the seed system's name for the same algorithm
    algo = build(tab)
    assert type(algo).__name__ == "TeacherStudentDistillation"
    assert set(algo.loss(*batch())) == {"loss_kd", "loss_cls"}
