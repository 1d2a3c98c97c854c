"""sparsevid: a handful of frames of a short video in, the full video out."""
__version__ = "0.1.0"
