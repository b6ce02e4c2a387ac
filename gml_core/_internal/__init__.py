"""gml-core's private implementation: plugins import ``gml_core.api`` only; this may change."""
