"""`hardware.kernels: auto | cuda | torch` resolved to the selection kernels a run will use."""

from dataclasses import dataclass

import torch

from dsslab.kernels import build

MODES = ("auto", "cuda", "torch")


@dataclass(frozen=True)
class KernelBackend:
    """Which kernels selection runs with ("cuda" or "torch") and why, for the run's log."""

    name: str
    reason: str


def unavailable_because(device: torch.device) -> str | None:
    """Why the CUDA kernels cannot run on `device`, or None when they are built and loaded."""
    if device.type != "cuda":
        return f"the device is {device}, not a CUDA device"
    if not torch.cuda.is_available():
        return "no CUDA device is visible to torch"
    try:
        build.build()
    except build.KernelBuildError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 (auto mode falls back whatever goes wrong)
        return f"loading the CUDA kernels failed: {type(error).__name__}: {error}"
    return None


def load_backend(mode: str, device: torch.device | str) -> KernelBackend:
    """Resolve a `hardware.kernels` setting against this machine.

    auto: the CUDA kernels when `device` is a CUDA device and the extension builds, else the
    PyTorch path; never raises for a missing GPU, compiler or a failed build. cuda: the CUDA
    kernels or a RuntimeError saying why not. torch: the PyTorch path.
    """
    if mode not in MODES:
        raise ValueError(f"hardware.kernels must be one of {MODES}, got {mode!r}")
    if mode == "torch":
        return KernelBackend("torch", "hardware.kernels=torch")
    problem = unavailable_because(torch.device(device))
    if problem is None:
        where = build.cache_root() / build.cache_key()
        return KernelBackend("cuda", f"CUDA kernels built for {build.arch_list()} in {where}")
    if mode == "cuda":
        raise RuntimeError(f"hardware.kernels=cuda but the CUDA kernels cannot run: {problem}")
    return KernelBackend("torch", f"CUDA kernels unavailable ({problem}); using the PyTorch path")
