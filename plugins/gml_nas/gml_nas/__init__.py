"""gml-nas: one-shot weight-sharing neural architecture search for gml.

Supernets are built from slice ops (``gml_nas.ops``) into searchable backbones
(``gml_nas.backbones``) wrapped by ``ImageClassifierSearch``; ``BigNAS`` and
``SPOS`` train them, ``gml nas search`` runs an evolution search and
``gml nas export`` turns a subnet into a plain static model.
"""

__version__ = "0.1.0"
