"""The plugin host: discovers ``gml`` entry points and builds the registries.

Environment:
  GML_DISABLE_PLUGIN_AUTOLOAD=1   load no entry-point plugins (built-ins only)
  GML_LOAD_PLUGINS=a,b            load only these entry-point names (also with autoload off)
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Callable

import attrs
import pluggy

from . import hookspecs
from .errors import GmlUserError, did_you_mean
from .registry import Registry

BUILTIN_PLUGIN = "gml_core.builtin"

#: registrar hook name -> registry kind
REGISTRARS: dict[str, str] = {
    name: name[len("gml_register_"):]
    for name in dir(hookspecs)
    if name.startswith("gml_register_") and name != "gml_register_commands"
}


@attrs.frozen
class PluginInfo:
    """One plugin as ``gml plugins`` shows it."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class PluginHost:
    """A pluggy manager for project ``gml`` plus lazily built registries."""

    def __init__(self, autoload: bool | None = None, extra_plugins: dict[str, Any] | None = None):
        self.pm = pluggy.PluginManager("gml")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._registries: dict[str, Registry] | None = None
        from gml_core import __version__

        self._add("gml-core builtin", "gml-core", __version__, BUILTIN_PLUGIN, None)
        for name, module in (extra_plugins or {}).items():
            self._add(name, "(local)", "", getattr(module, "__name__", name), module)
        if autoload is None:
            autoload = os.environ.get("GML_DISABLE_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes")
        wanted = {s.strip() for s in os.environ.get("GML_LOAD_PLUGINS", "").split(",") if s.strip()}
        for ep in sorted(metadata.entry_points(group="gml"), key=lambda e: e.name):
            if wanted and ep.name not in wanted:
                continue
            if not autoload and not wanted:
                continue
            self._load_entry_point(ep)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if any(p.name == ep.name for p in self.plugins):
            return
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not stop the others
            self.plugins.append(PluginInfo(ep.name, dist, version, ep.value, _first_line(exc)))
            return
        self._add(ep.name, dist, version, ep.value, module)

    def _add(self, name: str, dist: str, version: str, module_name: str, module: Any) -> None:
        if module is None:
            import importlib

            module = importlib.import_module(module_name)
        unknown = [a for a in dir(module) if a.startswith("gml_") and not hasattr(hookspecs, a)
                   and callable(getattr(module, a))]
        if unknown:
            known = [a for a in dir(hookspecs) if a.startswith("gml_")]
            err = "; ".join(f"unknown hook implementation '{u}'{did_you_mean(u, known)}" for u in unknown)
            self.plugins.append(PluginInfo(name, dist, version, module_name, err))
            return
        try:
            self.pm.register(module, name=name)
        except Exception as exc:
            self.plugins.append(PluginInfo(name, dist, version, module_name, _first_line(exc)))
            return
        self.plugins.append(PluginInfo(name, dist, version, module_name))

    @property
    def hook(self):
        return self.pm.hook

    def plugin_info(self, name: str) -> PluginInfo:
        return next(p for p in self.plugins if p.name == name)

    # -- registries -------------------------------------------------------------------
    @property
    def registries(self) -> dict[str, Registry]:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    def _collect(self) -> dict[str, Registry]:
        regs = {kind: Registry(kind) for kind in REGISTRARS.values()}
        for hook_name, kind in REGISTRARS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                info = self.plugin_info(impl.plugin_name)

                def register(name: str, target: Any, _info: PluginInfo = info, _kind: str = kind) -> None:
                    regs[_kind].add(name, target, _info.name, _info.distribution)

                self.call_safely(impl, register=register)
        return regs

    def call_safely(self, impl: Any, **kwargs: Any) -> None:
        """Call one plugin's hook implementation; a crash marks that plugin broken, not gml.

        Duplicate names (``GmlUserError``) still propagate: they are the user's to resolve.
        """
        try:
            impl.function(**kwargs)
        except GmlUserError:
            raise
        except Exception as exc:
            self.mark_broken(impl.plugin_name, f"{impl.function.__name__}: {_first_line(exc)}")

    def mark_broken(self, plugin_name: str, error: str) -> None:
        """Record a plugin as broken and unregister it so its hooks are no longer called."""
        self.plugins = [attrs.evolve(p, error=error) if p.name == plugin_name else p for p in self.plugins]
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def provides(self, plugin_name: str) -> dict[str, list[str]]:
        """What one plugin registered, by kind."""
        out: dict[str, list[str]] = {}
        for kind, reg in self.registries.items():
            names = [e.name for e in reg if e.plugin == plugin_name]
            if names:
                out[kind] = sorted(names)
        return out

    def call_registrar(self, hook_name: str, register: Callable[..., Any]) -> None:
        getattr(self.pm.hook, hook_name)(register=register)


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests)."""
    global _HOST
    _HOST = host


def registry(kind: str) -> Registry:
    """Shortcut: ``get_host().registry(kind)``."""
    try:
        return get_host().registry(kind)
    except KeyError:
        raise GmlUserError(f"unknown component kind '{kind}'") from None
