"""gml-hello: the example third-party plugin (see docs/plugins.md)."""
