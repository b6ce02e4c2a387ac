"""gml adapter for mmdet: detectors, COCO datasets, configs, CPU fallbacks for mmcv ops, export."""

__version__ = "0.1.0"
