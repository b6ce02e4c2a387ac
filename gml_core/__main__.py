"""``python -m gml_core`` is the ``gml`` command."""

from .cli import main

if __name__ == "__main__":
    main()
