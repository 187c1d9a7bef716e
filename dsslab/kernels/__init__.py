"""Native CUDA kernels for selection: the functions of dsslab.selection.gradients and the
GLISTER greedy round, on the GPU. Importing this package compiles nothing; the first call does
(see build.py), and load_backend decides whether a run uses these kernels or the PyTorch path.

Names are imported on first use, so `python -m dsslab.kernels.build` runs build.py only once.
"""

import importlib

_HOMES = {
    "KernelBackend": "backend",
    "load_backend": "backend",
    "KernelBuildError": "build",
    "gains": "ops",
    "greedy_round": "ops",
    "segment_sums": "ops",
}
__all__ = ["KernelBackend", "KernelBuildError", "gains", "greedy_round", "load_backend",
           "segment_sums"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'dsslab.kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dsslab.kernels.{_HOMES[name]}"), name)
