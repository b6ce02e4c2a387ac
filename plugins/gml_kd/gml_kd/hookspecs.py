"""gml-kd's own hook: third parties register feature connectors (``stu_connector``/``tea_connector``).

Added to the host by ``gml_add_hookspecs`` when gml-kd loads.
"""

from __future__ import annotations

from gml_core.api import Register, hookspec


@hookspec
def gml_register_connector(register: Register) -> None:
    """Register feature connectors: modules mapping student/teacher features before a loss."""
