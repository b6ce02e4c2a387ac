"""gml-qat: quantization-aware training (IAO) with torch.ao quantizers and int8 export."""

__version__ = "0.1.0"
