"""Which modules are quantized: names, execution order and the ``input_layer``..``output_layer`` region.

A *unit* is a module torch quantizes as a whole: a leaf module or a fused intrinsic
module (``ConvBnReLU2d``...). The region is every unit executed from the first unit
of ``input_layer`` up to the last unit of ``output_layer`` (one forward pass records
the order). A module is *covered* when all its units are in the region; qconfigs go
on the outermost covered modules, ``custom_qconfig`` entries refine their subtrees.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from gml_core.api import ConfigError, did_you_mean


def module_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def check_name(model: nn.Module, name: str, key: str) -> None:
    """A ``ConfigError`` at ``key`` when ``name`` is not a submodule of ``model``."""
    if name in dict(model.named_modules()):
        return
    names = module_names(model)
    shown = ", ".join(n for n in names if "." not in n) or "(none)"
    raise ConfigError([(key, f"no module named '{name}' in the model{did_you_mean(name, names)}; "
                             f"top-level modules: {shown}")])


def is_unit(module: nn.Module) -> bool:
    from torch.ao.nn.intrinsic import _FusedModule

    return isinstance(module, _FusedModule) or next(module.children(), None) is None


def units(model: nn.Module) -> dict[str, nn.Module]:
    """Units by name, not descending into fused modules."""
    out: dict[str, nn.Module] = {}

    def visit(prefix: str, module: nn.Module) -> None:
        if is_unit(module):
            out[prefix] = module
            return
        for name, child in module.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", model)
    return out


@torch.no_grad()
def execution_order(model: nn.Module, example_inputs: tuple[Any, ...]) -> list[str]:
    """Unit names in the order one eval-mode forward pass runs them (repeats kept)."""
    order: list[str] = []
    handles = [module.register_forward_hook(lambda m, i, o, n=name: order.append(n))
               for name, module in units(model).items()]
    was_training = model.training
    model.eval()
    try:
        model(*example_inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return order


def _inside(name: str, parent: str) -> bool:
    return parent == "" or name == parent or name.startswith(parent + ".")


def region_units(order: list[str], input_layer: str, output_layer: str) -> set[str]:
    """Units run from the first one of ``input_layer`` to the last one of ``output_layer`` ("" = model ends)."""
    starts = [i for i, n in enumerate(order) if _inside(n, input_layer)]
    ends = [i for i, n in enumerate(order) if _inside(n, output_layer)]
    if not starts:
        raise ConfigError([("input_layer", f"module '{input_layer}' runs no quantizable layer in the forward pass")])
    if not ends:
        raise ConfigError([("output_layer", f"module '{output_layer}' runs no quantizable layer in the forward pass")])
    first, last = starts[0], ends[-1]
    if first > last:
        raise ConfigError([("output_layer", f"'{output_layer}' runs before input_layer '{input_layer}'; "
                                            "the output layer must come after the input layer")])
    inside = set(order[first:last + 1])
    outside = set(order[:first]) | set(order[last + 1:])
    return inside - outside


def covered_modules(model: nn.Module, in_region: set[str], executed: Iterable[str]) -> list[str]:
    """Outermost modules all of whose executed units lie in the region ("" = the whole model)."""
    executed = set(executed)
    covered: list[str] = []

    def visit(prefix: str, module: nn.Module) -> None:
        mine = [u for u in executed if _inside(u, prefix)]
        if mine and all(u in in_region for u in mine):
            covered.append(prefix)
            return
        if is_unit(module):
            return
        for name, child in module.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", model)
    return covered


def assign_qconfigs(model: nn.Module, covered: list[str], custom: Mapping[str, Any],
                    make: Callable[[list[Any]], Any]) -> dict[str, Any]:
    """``{module name: qconfig}``: covered modules plus ``custom`` entries inside them.

    ``make(overrides)`` builds a qconfig from the ``custom`` entries that apply to a module,
    outermost first. Entries outside the region are errors (they would have no effect).
    """
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    names = sorted(custom, key=lambda n: n.count(".") if n else -1)
    for name in names:
        if not any(_inside(name, c) for c in covered) and not any(_inside(c, name) for c in covered):
            problems.append((f'custom_qconfig["{name}"]', "module is outside the quantized region "
                             "(input_layer..output_layer), so its qconfig would have no effect"))
    if problems:
        raise ConfigError(problems)
    targets = list(covered)
    for name in names:  # an entry wider than a covered module refines each covered module inside it
        if any(_inside(name, c) for c in covered) and name not in targets:
            targets.append(name)
    for target in targets:
        applicable = [n for n in names if _inside(target, n)]
        try:
            out[target] = make([custom[n] for n in applicable])
        except ValueError as exc:
            key = f'custom_qconfig["{applicable[-1]}"]' if applicable else "backend"
            raise ConfigError([(key, str(exc))]) from None
    return out


def lookup(assignment: Mapping[str, Any], name: str) -> Any:
    """The qconfig of ``name``: that of its closest assigned ancestor (or itself), else None."""
    best, depth = None, -2
    for key, qconfig in assignment.items():
        if _inside(name, key):
            d = key.count(".") if key else -1
            if d > depth:
                best, depth = qconfig, d
    return best
