"""Typed configs: strict cattrs structuring into frozen attrs classes."""

from .converter import component_field, converter, structure
from .spec import ComponentSpec

__all__ = ["ComponentSpec", "component_field", "converter", "structure"]
