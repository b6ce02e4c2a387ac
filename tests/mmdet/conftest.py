import pytest

pytest.importorskip("mmdet", reason="gml-mmdet tests need mmdet (pip install gml-mmdet)")
