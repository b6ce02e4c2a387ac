"""``gml config check``'s dry run: build what ``gml run`` builds before its first step.

Building the dataset and the algorithm (models, search spaces, teachers, checkpoints named in
the config, module paths and feature shapes) finds every problem that structuring alone cannot
see, with the same code ``gml run`` uses; nothing is trained and nothing is written.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, GmlUserError


def dry_build(config: Any) -> None:
    """Raise one ``ConfigError`` with every problem found while building ``config``'s parts."""
    from .algorithms.base import BuildContext
    from .components import build
    from .plugins import build_algorithm
    from .training.runner import _load_from, default_work_dir

    problems: list[tuple[str, str]] = []
    bundle = _collect(lambda: build("dataset", config.data, "data"), "data", problems)
    if bundle is not None:
        context = BuildContext(bundle.info, config.train, default_work_dir(config), config.runtime.trust_checkpoint)
        algorithm = _collect(lambda: build_algorithm(config.algorithm, context), "algorithm", problems)
        if algorithm is not None and config.runtime.load_from:
            _collect(lambda: _load_from(algorithm, config.runtime.load_from, config.runtime.trust_checkpoint),
                     "runtime.load_from", problems)
    if problems:
        raise ConfigError(problems, config.source or None)


def _collect(fn: Any, path: str, problems: list[tuple[str, str]]) -> Any:
    try:
        return fn()
    except ConfigError as exc:
        problems.extend(exc.problems)
    except GmlUserError as exc:
        message = str(exc)
        problems.append(("", message) if message.startswith(path) else (path, message))
    return None
