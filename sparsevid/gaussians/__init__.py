"""3D Gaussian Splatting: one rasterize function with two backends (gsplat on CUDA, our tiled
PyTorch rasterizer on CPU), Gaussian init, the training loop with checkpoints, and .ply export."""
from sparsevid.devices import resolve_device
from sparsevid.gaussians.rasterize import rasterize

__all__ = ["rasterize", "resolve_device"]
