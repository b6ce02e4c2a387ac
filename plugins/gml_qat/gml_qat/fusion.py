"""Automatic ``fuse_config`` for eager-mode QAT: conv-bn(-relu), linear-relu... chains found in the FX graph.

torch.ao's eager ``fuse_modules_qat`` needs the module names to fuse; FX graph mode finds them itself
but also rewrites the model. Here ``torch.fx.symbolic_trace`` is used only to *read* the dataflow:
a chain of modules ``a -> b (-> c)`` is fused when its module types form a pattern torch fuses for
QAT, every intermediate output feeds only the next module of the chain, and every module of the
chain is called exactly once in the forward pass (fusion replaces ``b`` and ``c`` by ``Identity``,
so a ReLU module reused elsewhere, as in torchvision's ``BasicBlock``, must not be fused).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from torch import nn


def qat_fusable_patterns() -> list[tuple[type, ...]]:
    """Module-type sequences torch can fuse for QAT (ConvTranspose+BN fuses only for PTQ)."""
    from torch.ao.quantization.fuser_method_mappings import _DEFAULT_OP_LIST_TO_FUSER_METHOD

    return [p for p in _DEFAULT_OP_LIST_TO_FUSER_METHOD
            if not issubclass(p[0], nn.modules.conv._ConvTransposeNd)]


def _group(chain: list[str]) -> tuple[str, list[str]]:
    """``(parent, names relative to it)``: the deepest module holding every member of ``chain``."""
    parts = [n.split(".") for n in chain]
    common: list[str] = []
    for level in zip(*(p[:-1] for p in parts)):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    prefix = ".".join(common)
    return prefix, [n[len(prefix) + 1:] if prefix else n for n in chain]


def derive_fuse_config(model: nn.Module, region: Optional[Callable[[str], Any]] = None) -> dict[str, list[list[str]]]:
    """``{parent: [[child, child(, child)], ...]}`` for every fusable chain of ``model``'s traced graph.

    ``region(name)`` (optional) returns a token for each module, ``None`` for modules that must not be
    fused (outside the quantized region); the members of a chain must share the same token (the same
    qconfig object). Raises whatever ``torch.fx.symbolic_trace`` raises when the model cannot be traced.
    """
    import torch.fx

    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    patterns = sorted(qat_fusable_patterns(), key=len, reverse=True)  # longest match first

    def eligible(node: Any) -> bool:
        return (node.op == "call_module" and calls[node.target] == 1
                and (region is None or region(node.target) is not None))

    def successor(node: Any) -> Any:
        """The only consumer of ``node`` when it is a module call taking ``node`` as its only input."""
        users = list(node.users)
        if len(users) != 1:
            return None
        user = users[0]
        if not eligible(user) or list(user.args) != [node] or user.kwargs:
            return None
        if region is not None and region(user.target) is not region(node.target):
            return None
        return user

    used: set[str] = set()
    config: dict[str, list[list[str]]] = {}
    for node in graph.nodes:
        if not eligible(node) or node.target in used:
            continue
        chain = [node]
        while len(chain) < max(map(len, patterns)) and (nxt := successor(chain[-1])) is not None:
            chain.append(nxt)
        types = [type(modules[n.target]) for n in chain]
        for pattern in patterns:
            if tuple(types[:len(pattern)]) == pattern:
                names = [n.target for n in chain[:len(pattern)]]
                used.update(names)
                parent, children = _group(names)
                config.setdefault(parent, []).append(children)
                break
    return config


def fusion_count(config: dict[str, list[list[str]]]) -> int:
    return sum(len(v) for v in config.values())
