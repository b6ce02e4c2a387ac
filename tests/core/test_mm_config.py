"""The OpenMMLab config helpers that gml-mmpretrain and gml-mmdet share."""

import pytest

from gml_core.api import GmlUserError, check_offline_weights, merge_dicts


def test_merge_dicts_is_recursive_and_leaves_inputs_alone():
    base = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    extra = {"a": {"c": {"x": 3}, "b": 5}, "e": [2], "f": None}
    assert merge_dicts(base, extra) == {"a": {"b": 5, "c": {"d": 2, "x": 3}}, "e": [2], "f": None}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}


def test_remote_pretrained_checkpoint_is_refused_with_its_path():
    cfg = {"backbone": {"init_cfg": [{"type": "Kaiming"},
                                     {"type": "Pretrained", "checkpoint": "open-mmlab://resnet18"}]}}
    with pytest.raises(GmlUserError, match=r"^model\.backbone\.init_cfg\[1\]: checkpoint 'open-mmlab://resnet18'"):
        check_offline_weights(cfg, "model")
    check_offline_weights({"init_cfg": {"type": "Pretrained", "checkpoint": "weights/r18.pth"}}, "model")


def test_init_weights_quietly_restores_the_log_level_even_on_failure():
    import logging

    from mmengine.logging import MMLogger

    from gml_core.api import init_weights_quietly

    logger = MMLogger.get_current_instance()
    logger.setLevel(logging.INFO)
    seen = []

    class Model:
        def init_weights(self):
            seen.append(logger.level)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        init_weights_quietly(Model())
    assert seen == [logging.WARNING] and logger.level == logging.INFO
