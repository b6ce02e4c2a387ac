"""gml adapter for mmpretrain (mmcls): models, datasets, pipelines, configs and export."""

__version__ = "0.1.0"
