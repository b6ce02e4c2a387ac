"""gml-hpo: hyper-parameter search for gml and for any shell command.

Import-light: ``import gml_hpo`` pulls in only the standard library and attrs, so a
trial script can call :func:`report` cheaply.
"""

from .reporting import report

__version__ = "0.1.0"
__all__ = ["report", "__version__"]
