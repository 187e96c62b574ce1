"""ONNX export, ONNX Runtime and TensorRT backends, engine cache."""
