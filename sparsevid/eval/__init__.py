"""Evaluation: PSNR/SSIM/flicker against ground truth, weight-free peers, ``sparsevid eval``."""
from sparsevid.eval.metrics import evaluate, flicker, match_size, psnr, ssim, temporal_change
from sparsevid.eval.peers import PEERS, crossfade, dis_flow, nearest

__all__ = ["PEERS", "crossfade", "dis_flow", "evaluate", "flicker", "match_size", "nearest", "psnr", "ssim",
           "temporal_change"]
