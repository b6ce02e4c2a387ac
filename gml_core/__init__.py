"""gml-core: plugin host, typed configs, training glue and the ``gml`` CLI.

Importing this package is cheap: torch and mmengine are imported only by the
modules that need them (models, data, training), never at package import.
"""

__version__ = "0.1.0"
