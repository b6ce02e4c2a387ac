"""``python -m gml_core`` is the ``gml`` command."""

from ._internal.cli import main

if __name__ == "__main__":
    main()
