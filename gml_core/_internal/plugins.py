"""The plugin host: discovers ``gml`` entry points, builds the registries, isolates faults.

Four kinds of plugin fault are isolated, each reported in one line naming plugin and
distribution, while every other plugin keeps working:

- import error (or a failing ``gml_add_hookspecs``): the plugin is listed as broken;
- unknown hook implementation (a ``gml_*`` function no installed plugin defines, and not
  marked ``optionalhook``): the plugin is listed as broken;
- raising registrar: the plugin is listed as broken and all its names are dropped;
- raising event hook (``gml_on_train_step``, ``gml_on_evaluate``): warned once, that plugin's
  implementation of the hook is disabled for the rest of the process, the run goes on;
- a name registered by two distributions is a clash: only looking that name up fails.

Environment:
  GML_DISABLE_PLUGIN_AUTOLOAD=1   load no entry-point plugins (built-ins only)
  GML_LOAD_PLUGINS=a,b            load only these entry-point names (also with autoload off);
                                  an unknown name is an error
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import GmlUserError, did_you_mean, one_of
from .registry import Registry

BUILTIN_PLUGIN = "gml_core._internal.builtin"
REGISTRAR_PREFIX = "gml_register_"
#: registrar-shaped hooks that register no component kind
NOT_REGISTRIES = ("gml_register_commands",)


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


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class PluginHost:
    """A pluggy manager for project ``gml`` plus lazily built registries."""

    def __init__(self, autoload: bool | None = None, extra_plugins: dict[str, Any] | None = None):
        self.pm = pluggy.PluginManager("gml")
        self.pm.add_hookspecs(hookspecs)
        self.pm.hook.gml_add_hookspecs.call_historic(kwargs={"host": self})
        self.plugins: list[PluginInfo] = []
        self._registries: dict[str, Registry] | None = None
        self._disabled: set[tuple[str, str]] = set()
        from gml_core import __version__

        self._add("gml-core builtin", "gml-core", __version__, BUILTIN_PLUGIN, None)
        for name, module in (extra_plugins or {}).items():
            self._add(name, "(local)", "", getattr(module, "__name__", name), module)
        if autoload is None:
            autoload = os.environ.get("GML_DISABLE_PLUGIN_AUTOLOAD", "") not in ("1", "true", "yes")
        wanted = [s.strip() for s in os.environ.get("GML_LOAD_PLUGINS", "").split(",") if s.strip()]
        entry_points = sorted(metadata.entry_points(group="gml"), key=lambda e: e.name)
        unknown = [w for w in wanted if w not in {ep.name for ep in entry_points}]
        if unknown:
            from .install_hints import install_hint

            names = [ep.name for ep in entry_points]
            hint = install_hint("plugin", unknown[0], check_host=False)
            raise GmlUserError(f"GML_LOAD_PLUGINS: no installed plugin named '{unknown[0]}'"
                               f"{did_you_mean(unknown[0], names)}; installed: {one_of(names)}"
                               + (f"; {hint}" if hint else ""))
        for ep in entry_points:
            if (wanted and ep.name not in wanted) or (not autoload and not wanted):
                continue
            self._load_entry_point(ep)
        self._check_unknown_hooks()

    # -- loading ----------------------------------------------------------------------
    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if any(p.name == ep.name for p in self.plugins):
            return
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not stop the others
            self.plugins.append(PluginInfo(ep.name, dist, version, ep.value, first_line(exc)))
            return
        self._add(ep.name, dist, version, ep.value, module)

    def _add(self, name: str, dist: str, version: str, module_name: str, module: Any) -> None:
        if module is None:
            import importlib

            module = importlib.import_module(module_name)
        self.plugins.append(PluginInfo(name, dist, version, module_name))
        try:
            self.pm.register(module, name=name)
        except Exception as exc:  # a failing gml_add_hookspecs or an invalid hook signature
            self.mark_broken(name, first_line(exc))

    def add_hookspecs(self, module: ModuleType | type) -> None:
        """Add a plugin's own hookspecs (call from ``gml_add_hookspecs``)."""
        try:
            self.pm.add_hookspecs(module)
        except pluggy.PluginValidationError as exc:  # another plugin implements it with a wrong signature
            self.mark_broken(exc.plugin_name, first_line(exc))

    def _check_unknown_hooks(self) -> None:
        known = [name for name in vars(self.pm.hook) if self._spec(name) is not None]
        for info in list(self.plugins):
            plugin = self.pm.get_plugin(info.name)
            if plugin is None or info.broken:
                continue
            unknown = []
            for attr in dir(plugin):
                fn = getattr(plugin, attr, None)
                if not attr.startswith("gml_") or not callable(fn):
                    continue
                opts = self.pm.parse_hookimpl_opts(plugin, attr)
                if self._spec(attr) is None and not (opts or {}).get("optionalhook"):
                    unknown.append(f"unknown hook implementation '{attr}'{did_you_mean(attr, known)}")
                elif opts is None and self._spec(attr) is not None:
                    unknown.append(f"'{attr}' is not marked with @hookimpl")
            if unknown:
                self.mark_broken(info.name, "; ".join(unknown))

    def _spec(self, hook_name: str) -> Any:
        caller = getattr(self.pm.hook, hook_name, None)
        return getattr(caller, "spec", None)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def plugin_info(self, name: str) -> PluginInfo:
        return next(p for p in self.plugins if p.name == name)

    def mark_broken(self, plugin_name: str, error: str) -> None:
        """Record a plugin as broken, unregister it and forget the names it registered."""
        self.plugins = [attrs.evolve(p, error=p.error or error) if p.name == plugin_name else p
                        for p in self.plugins]
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is not None:
            self.pm.unregister(plugin)
        for reg in (self._registries or {}).values():
            reg.drop_plugin(plugin_name)

    # -- registries -------------------------------------------------------------------
    def registrar_kinds(self) -> dict[str, str]:
        """Registrar hook name -> registry kind, for the core's and the plugins' own hookspecs."""
        return {name: name[len(REGISTRAR_PREFIX):] for name in sorted(vars(self.pm.hook))
                if name.startswith(REGISTRAR_PREFIX) and name not in NOT_REGISTRIES and self._spec(name)}

    @property
    def registries(self) -> dict[str, Registry]:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    def _collect(self) -> dict[str, Registry]:
        regs = {kind: Registry(kind) for kind in self.registrar_kinds().values()}
        failed: dict[str, str] = {}
        for hook_name, kind in self.registrar_kinds().items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.plugin_info(impl.plugin_name)

                def register(name: str, target: Any, _info: PluginInfo = info, _kind: str = kind) -> None:
                    regs[_kind].add(name, target, _info.name, _info.distribution)

                try:
                    impl.function(register=register)
                except Exception as exc:  # a crashing registrar marks its plugin broken, not gml
                    failed.setdefault(impl.plugin_name, f"{hook_name}: {first_line(exc)}")
        self._registries = regs
        for plugin_name, error in failed.items():
            self.mark_broken(plugin_name, error)
        return regs

    def clashes(self, plugin_name: str | None = None) -> list[str]:
        """One line per name registered by two distributions (only those involving ``plugin_name``)."""
        return [reg.clash_message(name) for reg in self.registries.values() for name, entries in reg.clashes().items()
                if plugin_name is None or any(e.plugin == plugin_name for e in entries)]

    def provides(self, plugin_name: str) -> dict[str, list[str]]:
        """What one plugin registered, by kind."""
        out: dict[str, list[str]] = {}
        for kind, reg in self.registries.items():
            names = sorted({e.name for e in reg if e.plugin == plugin_name}
                           | {n for n, es in reg.clashes().items() if any(e.plugin == plugin_name for e in es)})
            if names:
                out[kind] = names
        return out

    # -- calling hooks safely -----------------------------------------------------------
    def call_safely(self, impl: Any, **kwargs: Any) -> None:
        """Call one plugin's hook implementation; a crash marks that plugin broken, not gml."""
        try:
            impl.function(**kwargs)
        except Exception as exc:
            self.mark_broken(impl.plugin_name, f"{impl.function.__name__}: {first_line(exc)}")

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Broadcast an event hook. An implementation that raises is reported once on stderr and
        disabled for the rest of the process; the others (and the run) go on."""
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            key = (impl.plugin_name, hook_name)
            if key in self._disabled:
                continue
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as exc:
                self._disabled.add(key)
                info = self.plugin_info(impl.plugin_name)
                print(f"warning: plugin {info.name} ({info.distribution} {info.version}): {hook_name} raised "
                      f"{first_line(exc)}; it is disabled for the rest of this run", file=sys.stderr, flush=True)


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
    """The registry of one component kind; a clear error (with an install hint) when unknown."""
    from .install_hints import install_hint

    host = get_host()
    if kind not in host.registries:
        hint = install_hint("kind", kind)
        raise GmlUserError(f"unknown component kind '{kind}'{did_you_mean(kind, host.registries)}"
                           + (f"; {hint}" if hint else ""))
    return host.registry(kind)


def build_algorithm(config: Any, context: Any) -> Any:
    """The algorithm for a typed algorithm config (through ``gml_build_algorithm``)."""
    return get_host().hook.gml_build_algorithm(config=config, context=context)
