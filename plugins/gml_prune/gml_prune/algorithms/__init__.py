"""gml-prune's algorithms: ``DMCP`` and ``MagnitudePruning``."""
