"""Command lines: search-init, search-run, search-ctl and ``gml search ...``."""
