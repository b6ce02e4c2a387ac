"""gml-prune: channel pruning with dependency analysis and physical export (import-light)."""

__version__ = "0.1.0"
