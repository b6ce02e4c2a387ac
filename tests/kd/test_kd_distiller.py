"""Feature capture, frozen teachers, checkpoints, connector pre-training and bad input."""

import warnings

import pytest
import torch
from kd_helpers import FakeRun, batch, build, head, save_teacher, table

from gml_core._internal.errors import GmlUserError
from gml_core._internal.models.small_cnn import SmallCNN
from gml_kd.features import FeatureRecorder, resolve_module
from gml_kd.teachers import TeacherWarning

KD = {"type": "DistillKLDivLoss", "tau": 4.0}
HINT = head("backbone.layer3", "backbone.layer3", "hint", {"type": "MSELoss"},
            stu_connector={"type": "ConvBNConnector"})
LOGITS = head("head.fc", "head.fc", "kd", KD)


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_recorder_captures_the_right_tensors_and_leaves_no_hooks():
    torch.manual_seed(0)
    model = SmallCNN(width=4).train()
    rec = FeatureRecorder(model, {"backbone.layer3": "a", "backbone.layer3.0.bn": "b", "": "c"}, "student")
    x = torch.randn(2, 1, 16, 16)
    with rec.recording() as out:
        logits = model(x)
        feats = dict(out)
    assert _hooks(model) == 0 and rec.outputs == {}
    with torch.no_grad():
        b = model.backbone
        h2 = b.layer2(b.layer1(b.relu(b.bn1(b.conv1(x)))))
        block = b.layer3[0]
        pre_relu = block.bn(block.conv(h2))
    assert torch.allclose(feats["backbone.layer3"], torch.relu(pre_relu), atol=1e-6)
    # the BN output is captured before the in-place ReLU that follows it overwrites it
    assert torch.allclose(feats["backbone.layer3.0.bn"], pre_relu, atol=1e-6)
    assert (feats["backbone.layer3.0.bn"] < 0).any()
    assert torch.equal(feats[""], logits)
    # gradients flow from captured features into the model
    feats["backbone.layer3"].sum().backward()
    assert model.backbone.layer3[0].conv.weight.grad is not None


def test_only_outputs_changed_in_place_are_cloned():
    model = SmallCNN(width=4).train()
    rec = FeatureRecorder(model, {"backbone.layer3": "a", "backbone.layer3.0.bn": "b", "": "c"}, "student")
    with torch.no_grad(), rec.calibrate():
        model(torch.zeros(2, 1, 16, 16))
    assert rec.clone_paths == {"backbone.layer3.0.bn"}  # the BN output is overwritten by the in-place ReLU
    # an in-place op that only runs in training mode is caught, never silently read
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5, inplace=True), torch.nn.Linear(4, 2))
    rec = FeatureRecorder(net, {"0": "k"}, "student")
    net.eval()
    with torch.no_grad(), rec.calibrate():
        net(torch.ones(2, 4))
    assert rec.clone_paths == set()
    net.train()
    with torch.no_grad(), rec.recording():
        net(torch.ones(2, 4))
        with pytest.raises(GmlUserError, match="changed in place after capture"):
            rec.take("0")
    assert rec.clone_paths == {"0"}
    with torch.no_grad(), rec.recording():
        net(torch.ones(2, 4))
        assert torch.allclose(rec.take("0"), net[0](torch.ones(2, 4)))


def test_unknown_module_is_one_line_with_did_you_mean():
    with pytest.raises(GmlUserError) as err:
        resolve_module(SmallCNN(), "backbone.layr3", "algorithm.x.student_module", "student")
    msg = str(err.value)
    assert "algorithm.x.student_module" in msg and "'backbone.layr3'" in msg
    assert "did you mean 'backbone.layer3'" in msg and "\n" not in msg


def test_unknown_module_in_config(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    bad = head("backbone.layer9", "backbone.layer3", "h", {"type": "ATLoss"})
    with pytest.raises(GmlUserError, match=r"distill_head_cfg\[0\]\.student_module: the student \(SmallCNN\) "
                                           r"has no module 'backbone.layer9' \(did you mean 'backbone.layer\d'"):
        build(table(str(ckpt), [bad]))


def test_teacher_is_frozen_out_of_optimizer_and_checkpoint(tmp_path):
    ckpt = tmp_path / "teacher.pth"
    saved = save_teacher(ckpt)
    algo = build(table(str(ckpt), [HINT, LOGITS]))
    teacher = algo.distiller.teachers[0]
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, saved[k]), k  # loaded from the gml-style checkpoint
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in algo.parameters()}
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any("teacher" in k for k in algo.state_dict())
    wrapper = algo.build_optim_wrapper(algo.context.train)
    opt_ids = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert not opt_ids & teacher_ids
    assert any(k.startswith("distiller.heads.hint.stu_connector") for k in algo.state_dict())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = algo.model.backbone.conv1.weight.clone()
    algo.train()
    assert not teacher.training
    for step in range(3):
        log = algo.train_step(batch(seed=step), wrapper)
        assert {"loss", "loss_hint", "loss_kd", "loss_cls"} <= set(log)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BN statistics untouched
    assert all(p.grad is None for p in teacher.parameters())
    assert not torch.equal(algo.model.backbone.conv1.weight, student_before)


def test_teacher_moves_with_the_algorithm(tmp_path):
    ckpt = tmp_path / "teacher.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [LOGITS]))
    algo.to(torch.float64)
    assert next(algo.distiller.teachers[0].parameters()).dtype == torch.float64


def test_save_teacher_on_request_and_load_back(tmp_path):
    ckpt = tmp_path / "teacher.pth"
    saved = save_teacher(ckpt, seed=5)
    tab = table(str(ckpt), [LOGITS])
    tab["distiller"]["save_teacher"] = True
    algo = build(tab)
    state = algo.state_dict()
    assert torch.equal(state["distiller.teachers.0.head.fc.weight"], saved["head.fc.weight"])
    fresh_tab = table("", [LOGITS])
    fresh_tab["distiller"]["save_teacher"] = True
    with pytest.warns(TeacherWarning, match=r"teacher\[0\]\.ckpt_path is empty"):
        fresh = build(fresh_tab)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.distiller.teachers[0].head.fc.weight, saved["head.fc.weight"])


def test_teacher_from_a_plain_torchvision_style_state_dict(tmp_path):
    ckpt = tmp_path / "plain.pth"
    saved = save_teacher(ckpt, seed=3, layout="plain")
    algo = build(table(str(ckpt), [LOGITS]))
    assert torch.equal(algo.distiller.teachers[0].backbone.conv1.weight, saved["backbone.conv1.weight"])


def test_missing_teacher_checkpoint_is_an_error_and_empty_is_a_warning(tmp_path):
    with pytest.raises(GmlUserError, match=r"teacher\[0\]\.ckpt_path: teacher checkpoint not found: .*nope\.pth"):
        build(table(str(tmp_path / "nope.pth"), [LOGITS]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(table("", [LOGITS]))
    assert any(issubclass(w.category, TeacherWarning) for w in caught)


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt, width=16)
    with pytest.raises(GmlUserError, match=r"teacher\[0\]\.ckpt_path: checkpoint .* does not fit the model: "
                                           r"size mismatch for backbone.conv1.weight.*set .*model to the architecture"):
        build(table(str(ckpt), [LOGITS], teacher_width=8))


def test_shape_mismatch_names_both_shapes_and_suggests_a_connector(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    bare = head("backbone.layer3", "backbone.layer3", "hint", {"type": "MSELoss"})
    with pytest.raises(GmlUserError) as err:
        build(table(str(ckpt), [bare]))
    msg = str(err.value)
    assert "student feature 'backbone.layer3' (N, 16, 4, 4)" in msg
    assert "teacher feature 'backbone.layer3' (N, 32, 4, 4)" in msg
    assert 'stu_connector = { type = "ConvBNConnector" }' in msg and "16 to 32 channels" in msg
    # attention transfer compares maps: different channel counts are fine, resolutions are not
    build(table(str(ckpt), [head("backbone.layer3", "backbone.layer3", "at", {"type": "ATLoss"})]))
    with pytest.raises(GmlUserError, match=r"ATLoss fails on them .*spatial sizes differ"):
        build(table(str(ckpt), [head("backbone.layer2", "backbone.layer3", "at", {"type": "ATLoss"})]))


def test_connector_channels_are_inferred_and_explicit_ones_checked(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [HINT]))
    conv = algo.distiller.heads["hint"].stu_connector.layers[0]
    assert (conv.in_channels, conv.out_channels) == (16, 32)
    wrong = head("backbone.layer3", "backbone.layer3", "hint", {"type": "MSELoss"},
                 stu_connector={"type": "ConvBNConnector", "in_channels": 16, "out_channels": 12})
    with pytest.raises(GmlUserError, match=r"after stu_connector: \(N, 12, 4, 4\)"):
        build(table(str(ckpt), [wrong]))


FT = head("backbone.layer4", "backbone.layer4", "ft", {"type": "FTLoss"},
          tea_connector={"type": "Paraphraser", "rate": 0.5, "pretrain_criterion": {"type": "MSELoss"},
                         "pretrain_epochs": 3},
          stu_connector={"type": "Translator"})


def test_paraphraser_pretrains_then_freezes(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [FT]), lr=0.05)
    ft = algo.distiller.heads["ft"]
    para, trans = ft.tea_connector, ft.stu_connector
    assert para.factor_channels == 32 and trans.encoder[-3].out_channels == 32  # 64 teacher channels * 0.5
    wrapper = algo.build_optim_wrapper(algo.context.train)
    opt_ids = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert not opt_ids & {id(p) for p in para.parameters()}  # trained by its own stage only
    assert opt_ids >= {id(p) for p in trans.parameters()}
    batches = [batch(16, seed=s) for s in range(4)]
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, out, target):
            value = self.inner(out, target)
            seen.append(float(value.detach()))
            return value

    para.pretrain_criterion = Spy(para.pretrain_criterion)
    algo.before_train(FakeRun(tmp_path, batches))
    assert len(seen) == 3 * len(batches)  # pretrain_epochs passes over the loader
    assert sum(seen[-4:]) < 0.7 * sum(seen[:4])  # the reconstruction improves
    assert bool(para.pretrained) and para.frozen and not para.training
    assert all(not p.requires_grad for p in para.parameters())
    frozen = {k: v.clone() for k, v in para.state_dict().items()}
    trans_before = [p.clone() for p in trans.parameters()]
    algo.train()
    assert not para.training
    for data in batches[:2]:
        algo.train_step(data, wrapper)
    assert all(torch.equal(v, para.state_dict()[k]) for k, v in frozen.items())
    assert any(not torch.equal(a, b) for a, b in zip(trans_before, trans.parameters()))
    # a resumed run (flag restored from the checkpoint) does not pre-train again
    again = build(table(str(ckpt), [FT]))
    again.load_state_dict(algo.state_dict())
    again.before_train(FakeRun(tmp_path, batches))
    assert all(torch.equal(v, again.distiller.heads["ft"].tea_connector.state_dict()[k]) for k, v in frozen.items())


def test_pretrain_connector_on_the_student_side_learns_student_features(tmp_path):
    """The seed allows pretrain_criterion on either connector: a student-side one reconstructs the
    student's own feature (its weights and BatchNorm statistics untouched), then is frozen."""
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    both = head("backbone.layer4", "backbone.layer4", "ft", {"type": "FTLoss"},
                stu_connector={"type": "Paraphraser", "rate": 0.5, "pretrain_criterion": {"type": "MSELoss"},
                               "pretrain_epochs": 2},
                tea_connector={"type": "Paraphraser", "rate": 0.25})
    algo = build(table(str(ckpt), [both]), lr=0.05)
    stu = algo.distiller.heads["ft"].stu_connector
    assert stu.factor_channels == 16   # width-4 student: 32 channels at layer4, rate 0.5
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, out, target):
            assert target.shape[1] == 32   # the student's layer4 feature, not the teacher's (64 channels)
            value = self.inner(out, target)
            seen.append(float(value.detach()))
            return value

    stu.pretrain_criterion = Spy(stu.pretrain_criterion)
    student_before = {k: v.clone() for k, v in algo.model.state_dict().items()}
    batches = [batch(16, seed=s) for s in range(4)]
    algo.before_train(FakeRun(tmp_path, batches))
    assert len(seen) == 2 * len(batches)
    assert sum(seen[-4:]) < sum(seen[:4])
    assert bool(stu.pretrained) and stu.frozen
    assert all(torch.equal(v, algo.model.state_dict()[k]) for k, v in student_before.items())
    wrapper = algo.build_optim_wrapper(algo.context.train)
    opt_ids = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert not opt_ids & {id(p) for p in stu.parameters()}


def test_init_stage_runs_before_the_schedule_on_the_hint_heads_only(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [HINT, LOGITS], init_epochs=2, init_heads=["hint"]), epochs=3)
    hint = algo.distiller.heads["hint"]
    wrapper = algo.build_optim_wrapper(algo.context.train)
    opt_ids = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert not opt_ids & {id(p) for p in hint.parameters()}     # the regressor trains in the stage only
    assert opt_ids >= {id(p) for p in algo.model.parameters()}
    fc_before = algo.model.head.fc.weight.clone()
    conv_before = algo.model.backbone.conv1.weight.clone()
    conn_before = hint.stu_connector.layers[0].weight.clone()
    batches = [batch(16, seed=s) for s in range(3)]
    x, y = batches[0]
    first = _hint_loss(algo, x)
    algo.before_train(FakeRun(tmp_path, batches))
    assert bool(algo.init_done)
    assert torch.equal(algo.model.head.fc.weight, fc_before)            # layers after the hint: no gradient
    assert not torch.equal(algo.model.backbone.conv1.weight, conv_before)
    assert not torch.equal(hint.stu_connector.layers[0].weight, conn_before)
    assert _hint_loss(algo, x) < first                                 # 2 extra passes fitted the hint
    # the main schedule: the hint head is dropped, labels and KD train the whole student
    assert set(algo.loss(x, y)) == {"loss_kd", "loss_cls"}
    algo.train_step((x, y), wrapper)
    assert not torch.equal(algo.model.head.fc.weight, fc_before)
    # a resumed run (init_done restored from the checkpoint) does not run the stage again
    again = build(table(str(ckpt), [HINT, LOGITS], init_epochs=2, init_heads=["hint"]), epochs=3)
    again.load_state_dict(algo.state_dict())
    state = {k: v.clone() for k, v in again.state_dict().items()}
    again.before_train(FakeRun(tmp_path, batches))
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in state.items())


def _hint_loss(algo, x):
    """The hint loss on ``x`` in training mode, leaving every BatchNorm statistic as it was."""
    from gml_kd.pretrain import _buffers_kept

    with torch.no_grad(), _buffers_kept(algo), algo.distiller.recording():
        algo.distiller.teacher_forward(x)
        algo.model(x)
        return float(algo.distiller.head_losses({"hint"})["loss_hint"])


def test_init_stage_may_be_longer_than_the_schedule(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [HINT, LOGITS], init_epochs=2, init_heads=["hint"]), epochs=1)
    assert algo.config.init_epochs == 2   # extra passes: they take nothing from train.epochs


def test_ensemble_of_teachers_and_meal_without_labels(tmp_path):
    paths = []
    for seed in (1, 2):
        paths.append(str(tmp_path / f"t{seed}.pth"))
        save_teacher(tmp_path / f"t{seed}.pth", seed=seed)
    algo = build(table(paths, [], use_meal=True))
    assert len(algo.distiller.teachers) == 2
    x, y = batch()
    losses = algo.loss(x, y)
    assert set(losses) == {"loss_meal_kd", "loss_meal_gen", "loss_meal_disc"}
    # no hard labels: the losses do not depend on them
    assert all(torch.equal(losses[k], algo.loss(x, (y + 1) % 10)[k]) for k in losses)
    wrapper = algo.build_optim_wrapper(algo.context.train)
    opt_ids = {id(p) for g in wrapper.optimizer.param_groups for p in g["params"]}
    assert opt_ids >= {id(p) for p in algo.meal.discriminator.parameters()}
    algo.train_step((x, y), wrapper)


def test_after_train_reports_teacher_accuracy_and_exports_the_student(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [LOGITS]))
    rows = algo.after_train(FakeRun(tmp_path, [batch(16)]))
    assert "teacher[0] top1" in rows
    exported = torch.load(rows["student checkpoint"], weights_only=True)
    assert set(exported["state_dict"]) == set(algo.model.state_dict())
    fresh = SmallCNN(width=4)
    from gml_core._internal.checkpoint import load_weights

    load_weights(fresh, rows["student checkpoint"])
    assert torch.equal(fresh.head.fc.weight, algo.model.head.fc.weight)


def test_restore_norms_keeps_the_function_and_the_recorded_norms():
    from gml_kd.pretrain import bn_conv_norms, restore_norms

    torch.manual_seed(0)
    model = SmallCNN(width=4)
    norms = bn_conv_norms(model)
    assert set(norms) == {"backbone.conv1"} | {f"backbone.layer{i}.0.conv" for i in range(1, 5)}
    x = torch.randn(8, 1, 12, 12)
    model.train()
    before = model(x).detach()
    with torch.no_grad():    # what the init stage did to them: grown by factors 2-10
        for i, name in enumerate(norms):
            model.get_submodule(name).weight.mul_(2.0 + 2 * i)
    restore_norms(model, norms)
    assert all(float(model.get_submodule(n).weight.detach().norm()) == pytest.approx(v, rel=1e-5) for n, v in norms.items())
    assert torch.allclose(model(x), before, atol=1e-4)   # each conv feeds a BatchNorm: same outputs


def test_init_stage_scales_grown_weights_back_when_asked(tmp_path):
    from gml_kd.pretrain import bn_conv_norms

    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    batches = [batch(16, seed=s) for s in range(3)]
    for keep in (False, True):
        torch.manual_seed(0)
        algo = build(table(str(ckpt), [HINT, LOGITS], init_epochs=2, init_heads=["hint"], init_keep_norms=keep),
                     epochs=3)
        conv_before = algo.model.backbone.conv1.weight.clone()
        norms = bn_conv_norms(algo.model)
        algo.before_train(FakeRun(tmp_path, batches))
        after = bn_conv_norms(algo.model)
        assert not torch.equal(algo.model.backbone.conv1.weight, conv_before)   # the stage trained them
        assert (after == pytest.approx(norms, rel=1e-5)) is keep
