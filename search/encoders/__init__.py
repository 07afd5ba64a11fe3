"""Encoders: which model turns text into vectors, its ONNX export, and opening it for a
rebuild or for a question."""
