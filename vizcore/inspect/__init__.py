"""Inspection: what a trained network holds and computes. Kernel galleries (``kernels``), every layer's
activations in one pass (``activations``), the arithmetic of one output (``convdetail``), top-k dataset
examples and their receptive-field boxes (``examples``; the fields are ``vizcore.models.fields``),
embeddings (``embedding``) and evaluation (``evaluation``). Pictures of what it computes are drawn by
``vizcore.present``."""
