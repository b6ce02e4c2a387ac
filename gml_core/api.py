"""The public API of gml-core: the one module a plugin imports.

Everything a plugin needs is re-exported here; every other module of ``gml_core`` is
private and may change between releases. Importing this module is cheap: names load
lazily on first access, so ``from gml_core.api import hookimpl`` in a ``plugin.py``
does not import torch or mmengine.

Groups (see docs/plugins.md for the contract they form):

- hooks: ``hookimpl``, ``hookspec`` (for the hookspecs a plugin adds), ``Register``,
  ``registry``, ``build_algorithm``, ``PluginHost``, ``get_host``
- errors: ``GmlUserError``, ``ConfigError``, ``did_you_mean``, ``one_of``, ``join_path``
- configs: ``AlgorithmConfig``, ``TrainConfig``, ``RuntimeConfig``, ``RunConfig``,
  ``ComponentSpec``, ``component_field``, ``structure``, ``converter``, ``at_least``,
  ``positive``, ``load_config``
- components: ``resolve_component``, ``build_component``, ``check_component``,
  ``check_components``, ``accepts``, ``explicit_model_spec``
- algorithms and data: ``GmlAlgorithm``, ``BuildContext``, ``DataInfo``, ``DataBundle``,
  ``RunInfo``, ``evaluate_model``, ``topk_correct``
- search spaces: ``Int``, ``Real``, ``Categorical``, ``SpaceItem``, ``space_item``
- checkpoints and files: ``load_checkpoint``, ``save_checkpoint``, ``extract_state_dict``,
  ``load_weights``, ``atomic_write``, ``atomic_write_bytes``, ``atomic_write_text``, ``ProcessLock``
- measurement and training: ``count_params``, ``count_flops``, ``format_count``,
  ``parse_count``, ``COUNT_UNITS``, ``make_optimizer``, ``make_optim_wrapper``
- OpenMMLab config adapters: ``merge_dicts``, ``check_offline_weights``, ``REMOTE_PREFIXES``,
  ``init_weights_quietly``
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> "private_module:attribute"
_EXPORTS: dict[str, str] = {
    # hooks and plugins
    "hookimpl": "gml_core._internal.hookspecs:hookimpl",
    "hookspec": "gml_core._internal.hookspecs:hookspec",
    "Register": "gml_core._internal.hookspecs:Register",
    "PluginHost": "gml_core._internal.plugins:PluginHost",
    "get_host": "gml_core._internal.plugins:get_host",
    "registry": "gml_core._internal.plugins:registry",
    "build_algorithm": "gml_core._internal.plugins:build_algorithm",
    # errors
    "GmlUserError": "gml_core._internal.errors:GmlUserError",
    "ConfigError": "gml_core._internal.errors:ConfigError",
    "did_you_mean": "gml_core._internal.errors:did_you_mean",
    "one_of": "gml_core._internal.errors:one_of",
    "join_path": "gml_core._internal.config.converter:join_path",
    # configs
    "AlgorithmConfig": "gml_core._internal.config.schema:AlgorithmConfig",
    "TrainConfig": "gml_core._internal.config.schema:TrainConfig",
    "RuntimeConfig": "gml_core._internal.config.schema:RuntimeConfig",
    "RunConfig": "gml_core._internal.config.schema:RunConfig",
    "at_least": "gml_core._internal.config.schema:at_least",
    "positive": "gml_core._internal.config.schema:positive",
    "ComponentSpec": "gml_core._internal.config.spec:ComponentSpec",
    "component_field": "gml_core._internal.config.converter:component_field",
    "structure": "gml_core._internal.config.converter:structure",
    "converter": "gml_core._internal.config.converter:converter",
    "load_config": "gml_core._internal.config.loader:load_config",
    # components
    "resolve_component": "gml_core._internal.components:resolve",
    "build_component": "gml_core._internal.components:build",
    "check_component": "gml_core._internal.components:check_component",
    "check_components": "gml_core._internal.components:check_components",
    "accepts": "gml_core._internal.components:accepts",
    "explicit_model_spec": "gml_core._internal.components:explicit_model_spec",
    # algorithms, data, evaluation
    "GmlAlgorithm": "gml_core._internal.algorithms.base:GmlAlgorithm",
    "BuildContext": "gml_core._internal.algorithms.base:BuildContext",
    "DataInfo": "gml_core._internal.algorithms.base:DataInfo",
    "DataBundle": "gml_core._internal.data:DataBundle",
    "RunInfo": "gml_core._internal.training.run_info:RunInfo",
    "evaluate_model": "gml_core._internal.training.metric:evaluate_model",
    "topk_correct": "gml_core._internal.training.metric:topk_correct",
    # search spaces
    "SpaceItem": "gml_core._internal.space:SpaceItem",
    "Int": "gml_core._internal.space:Int",
    "Real": "gml_core._internal.space:Real",
    "Categorical": "gml_core._internal.space:Categorical",
    "space_item": "gml_core._internal.space:space_item",
    # checkpoints and files
    "load_checkpoint": "gml_core._internal.checkpoint:load_file",
    "save_checkpoint": "gml_core._internal.checkpoint:atomic_save",
    "extract_state_dict": "gml_core._internal.checkpoint:extract_state_dict",
    "load_weights": "gml_core._internal.checkpoint:load_weights",
    "atomic_write": "gml_core._internal.atomic:atomic_write",
    "atomic_write_bytes": "gml_core._internal.atomic:atomic_write_bytes",
    "atomic_write_text": "gml_core._internal.atomic:atomic_write_text",
    "ProcessLock": "gml_core._internal.process_lock:ProcessLock",
    # measurement and training helpers
    "count_params": "gml_core._internal.resources:count_params",
    "count_flops": "gml_core._internal.resources:count_flops",
    "format_count": "gml_core._internal.resources:format_count",
    "parse_count": "gml_core._internal.resources:parse_count",
    "COUNT_UNITS": "gml_core._internal.resources:UNITS",
    "make_optimizer": "gml_core._internal.training.optim:make_optimizer",
    "make_optim_wrapper": "gml_core._internal.training.optim:make_optim_wrapper",
    # OpenMMLab config adapters
    "merge_dicts": "gml_core._internal.mm_config:merge_dicts",
    "check_offline_weights": "gml_core._internal.mm_config:check_offline_weights",
    "REMOTE_PREFIXES": "gml_core._internal.mm_config:REMOTE_PREFIXES",
    "init_weights_quietly": "gml_core._internal.mm_config:init_weights_quietly",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'gml_core.api' has no attribute '{name}'")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
