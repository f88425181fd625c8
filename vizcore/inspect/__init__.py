"""Inspection: what a trained network holds and computes. Kernel galleries (``kernels``), every layer's
activations in one pass (``activations``), the arithmetic of one output (``convdetail``), top-k dataset
examples and receptive fields (``examples``), embeddings (``embedding``) and evaluation (``evaluation``)."""
