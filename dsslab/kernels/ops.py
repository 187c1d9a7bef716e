"""Python entry points of the CUDA kernels: argument checks, float32 layout, then one launch.

The same functions as dsslab.selection.gradients (group_sums, gains) and the GLISTER greedy
round of dsslab.selection.glister, computed on the GPU. Every input must already be on one CUDA
device; outputs stay there. The extension is compiled on the first call (see build.py).
"""

import torch

from dsslab.kernels import build
from dsslab.kernels.plan import plan_greedy


def _device_of(function: str, tensor: torch.Tensor) -> torch.device:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{function}: residuals must be a tensor, got {type(tensor).__name__}")
    if tensor.device.type != "cuda":
        raise ValueError(f"{function} needs CUDA tensors, got residuals on {tensor.device}; use "
                         "the PyTorch path in dsslab.selection.gradients for other devices")
    return tensor.device


def _floats(name: str, tensor: torch.Tensor, device: torch.device, shape: tuple) -> torch.Tensor:
    """float32, contiguous, on `device`; -1 in `shape` accepts any size."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
    if tensor.dim() != len(shape) or any(
            size not in (-1, actual) for size, actual in zip(shape, tensor.shape, strict=True)):
        expected = " x ".join("any" if s == -1 else str(s) for s in shape)
        raise ValueError(f"{name} must have shape {expected}, got {tuple(tensor.shape)}")
    return tensor.to(device=device, dtype=torch.float32).contiguous()


def _labels(name: str, labels: torch.Tensor, device: torch.device, count: int, classes: int):
    if not isinstance(labels, torch.Tensor) or labels.shape != (count,):
        raise ValueError(f"{name} must be a tensor of {count} class indices")
    labels = labels.to(device=device, dtype=torch.int64).contiguous()
    if count and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"{name} must be in [0, {classes})")
    return labels


def segment_sums(residuals: torch.Tensor, embeddings: torch.Tensor | None,
                 group_ids: torch.Tensor, num_groups: int, weights: torch.Tensor | None = None,
                 linear_layer: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-group (weighted) gradient sums: G x C bias sums and G x C x D weight sums (or None).

    Like dsslab.selection.gradients.group_sums; fp32 atomics make the low bits vary by run.
    """
    device = _device_of("segment_sums", residuals)
    residuals = _floats("residuals", residuals, device, (-1, -1))
    count = len(residuals)
    group_ids = _labels("group_ids", group_ids, device, count, num_groups)
    if weights is not None:
        weights = _floats("weights", weights, device, (count,))
    if linear_layer:
        embeddings = _floats("embeddings", embeddings, device, (count, -1))
    order = torch.argsort(group_ids, stable=True)
    bias_sums, weight_sums = build.operators().segment_sums(
        residuals, embeddings if linear_layer else None, order, group_ids[order].contiguous(),
        weights, int(num_groups))
    return bias_sums, weight_sums if linear_layer else None


def gains(residuals: torch.Tensor, embeddings: torch.Tensor | None, target_bias: torch.Tensor,
          target_weight: torch.Tensor | None = None) -> torch.Tensor:
    """r_i . target_bias + r_i^T target_weight e_i for every sample i, N (float32)."""
    device = _device_of("gains", residuals)
    residuals = _floats("residuals", residuals, device, (-1, -1))
    count, classes = residuals.shape
    target_bias = _floats("target_bias", target_bias, device, (classes,))
    if target_weight is not None:
        embeddings = _floats("embeddings", embeddings, device, (count, -1))
        target_weight = _floats("target_weight", target_weight, device,
                                (classes, embeddings.shape[1]))
    return build.operators().gains(residuals, embeddings if target_weight is not None else None,
                                   target_bias, target_weight)


def greedy_round(residuals: torch.Tensor, embeddings: torch.Tensor | None,
                 val_logits: torch.Tensor, val_labels: torch.Tensor,
                 val_embeddings: torch.Tensor | None, budget: int, eta: float,
                 linear_layer: bool, greedy: str, candidates_per_step: int, seed: int, *,
                 method: str = "auto", blocks: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One GLISTER greedy round on the GPU: (picked indices int64 [k], their gains float32 [k]).

    Same rule as dsslab.selection.glister (DESIGN.md): gains against the mean validation
    gradient at the current validation logits, best gain first (ties: lowest index), then
    Z_v -= eta r_j (1 + e_v . e_j) (bias mode: without the e term). greedy="naive" scores every
    remaining sample; "stochastic" scores candidates_per_step of them, drawn uniformly without
    replacement from `seed` (a stream of its own, see sampling.py). All k picks run in one
    cooperative kernel launch; nothing returns to the host until the round is over.
    method ("auto" | "pairwise" | "sharded") and blocks override the plan (tests, tuning).
    """
    device = _device_of("greedy_round", residuals)
    residuals = _floats("residuals", residuals, device, (-1, -1))
    samples, classes = residuals.shape
    val_logits = _floats("val_logits", val_logits, device, (-1, classes))
    val_labels = _labels("val_labels", val_labels, device, len(val_logits), classes)
    if not 1 <= int(budget) <= samples:
        raise ValueError(f"budget must be in [1, {samples}], got {budget}")
    if len(val_logits) < 1:
        raise ValueError("val_logits must have at least one row")
    dim = 0
    if linear_layer:
        embeddings = _floats("embeddings", embeddings, device, (samples, -1))
        dim = embeddings.shape[1]
        val_embeddings = _floats("val_embeddings", val_embeddings, device,
                                 (len(val_logits), dim))
    multiprocessors = torch.cuda.get_device_properties(device).multi_processor_count
    plan = plan_greedy(samples, len(val_logits), classes, dim, bool(linear_layer), greedy,
                       int(candidates_per_step), multiprocessors, method, blocks)
    with torch.cuda.device(device):
        return build.operators().greedy_round(
            residuals, embeddings if linear_layer else None, val_logits, val_labels,
            val_embeddings if linear_layer else None, int(budget), float(eta),
            plan.sample_size, plan.pairwise_limit, plan.blocks, _as_int64(seed))


def _as_int64(seed: int) -> int:
    """The seed's low 64 bits as a signed integer (the kernel reads them unsigned)."""
    bits = int(seed) & ((1 << 64) - 1)
    return bits - (1 << 64) if bits >= 1 << 63 else bits
