"""gml-qat's own hook: third parties register quantizers (``algorithm.quantizer.type``).

Added to the host by ``gml_add_hookspecs`` when gml-qat loads.
"""

from __future__ import annotations

from gml_core.api import Register, hookspec


@hookspec
def gml_register_quantizer(register: Register) -> None:
    """Register quantizers (``gml_qat.quantizers.base.Quantizer`` subclasses) used by QAT algorithms."""
