"""Turn the `hardware=` config group into a device, a precision and loader settings."""

import contextlib
import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hardware:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool
    compile: bool
    workers: int
    data_on_device: bool
    kernels: str  # "cuda" or "torch", already resolved

    def autocast(self):
        """Mixed precision for forward passes when configured, else a no-op context."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def synchronize(self) -> None:
        """Wait for queued device work so that wall-clock readings are honest."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def resolve_hardware(settings, dataset_bytes: int) -> Hardware:
    """Resolve every `auto` in the hardware config against what this machine has."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    on_cuda = device.type == "cuda"
    precision = settings.precision if settings.precision != "auto" else (
        "bf16" if on_cuda else "fp32")
    return Hardware(
        device=device,
        autocast_dtype=torch.bfloat16 if precision == "bf16" else None,
        channels_last=on_cuda if settings.channels_last == "auto" else bool(settings.channels_last),
        compile=bool(settings.compile) and on_cuda,
        workers=settings.workers,
        data_on_device=fits_on_device(device, dataset_bytes, settings.data_on_device),
        kernels=resolve_kernels(settings.kernels, device),
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"hardware.device={name!r} but no CUDA device is available; "
                           "use hardware=cpu or hardware=auto")
    return device


def fits_on_device(device: torch.device, dataset_bytes: int, setting) -> bool:
    """Keep the uint8 dataset on the device when asked, or when it takes under a quarter of it."""
    if setting != "auto":
        return bool(setting)
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return dataset_bytes < free // 4


def resolve_kernels(setting: str, device: torch.device) -> str:
    """'cuda' when the native selection kernels can run here, else 'torch'; says why."""
    if setting == "torch" or (setting == "auto" and device.type != "cuda"):
        log.info("selection kernels: torch (hardware.kernels=%s, device %s)", setting, device)
        return "torch"
    from dsslab.kernels import load_backend

    backend = load_backend(setting, device)
    log.info("selection kernels: %s (%s)", backend.name, backend.reason)
    return backend.name
