"""robopg: policy-gradient training for MuJoCo manipulation, exported to one ONNX file per policy."""

__version__ = "0.1.0"
