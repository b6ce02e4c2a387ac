"""Export: a static model with inherited weights that ``init_from`` rebuilds, plus TorchScript."""

import warnings

import torch
from nas_helpers import batches, build_model, classifier_spec, has_slice_ops, mbv3_params

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.checkpoint import load_file
from gml_core._internal.config.spec import ComponentSpec
from gml_nas.evaluation import calibrate_bn
from gml_nas.export import export_subnet
from gml_nas.mutator import StatelessMutator


def test_exported_subnet_matches_the_calibrated_supernet(tmp_path):
    torch.manual_seed(0)
    spec = classifier_spec()
    model = build_model(spec)
    calib = batches(3)
    x = batches(1, seed=9)[0][0]
    subnet = StatelessMutator(5).prepare(model.space).random_subnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = export_subnet(model, subnet, spec, 10, 1, tmp_path, (1, 1, 12, 12), "sub", calib, -1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # supernet untouched
    assert model.subnet == model.space.max()

    ckpt = load_file(out["checkpoint"])  # weights_only=True
    assert ckpt["model_spec"]["type"] == "gml.StaticSubnet"
    assert ckpt["model_spec"]["subnet"] == model.space.nest(subnet)
    context = BuildContext(DataInfo(10, 1, (12, 12)))
    static = context.build_model(ComponentSpec("gml.SmallCNN", {"init_from": str(out["checkpoint"])}))
    assert not has_slice_ops(static)
    static.eval()

    model.set_subnet(subnet)
    calibrate_bn(model, calib, -1)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        assert (static(x) - expected).abs().max().item() < 1e-5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.load(str(out["torchscript"]))
        assert (scripted(x) - expected).abs().max().item() < 1e-5
    arch = model.space.resolve(subnet)["backbone"]
    assert sum(p.numel() for p in static.parameters()) == mbv3_params(arch, 1, 10, [False, True], [2, 3])


def test_static_subnet_rejects_a_mismatching_subnet():
    import pytest

    from gml_core._internal.errors import ConfigError

    spec = classifier_spec()
    with pytest.raises(ConfigError, match=r"subnet.backbone.MB_out_channels\[0\]: 12 is not one of 8, 16"):
        build_model({"type": "gml.StaticSubnet", "supernet": spec,
                     "subnet": {"resize_process": {"resolution": 12},
                                "backbone": {"MB_stage_blocks": [1, 1, 1, 1], "MB_kernel_size": [3, 3, 3, 1],
                                             "MB_expand_ratio": [1, 1, 2, 2], "MB_out_channels": [12, 8, 16, 32]}}})
