"""The MarioNETte generator (Ha et al., AAAI 2020): image attention blocks, target feature alignment and
landmark disentanglement, in torch, with an ONNX export for onnxruntime."""
