"""Argument checks and class splits shared by the CRAIG and GRAD-MATCH tensor-level APIs."""

import numbers

import torch


def check_split(split: str, embeddings, logits, labels) -> None:
    """Raise ValueError naming the first of `split`'s tensors with the wrong shape or values."""
    for name, tensor, dims in (("embeddings", embeddings, 2), ("logits", logits, 2),
                               ("labels", labels, 1)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
            raise ValueError(f"{split}_{name} must be a {dims}-d tensor, got "
                             f"{getattr(tensor, 'shape', type(tensor))}")
    count, classes = logits.shape
    if count < 1 or len(embeddings) != count or len(labels) != count:
        raise ValueError(f"{split}_embeddings, {split}_logits and {split}_labels must have the "
                         f"same number (>= 1) of rows, got {len(embeddings)}, {count}, "
                         f"{len(labels)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{split}_labels must be an integer tensor, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"{split}_labels must be in [0, {classes}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    for name, tensor in (("embeddings", embeddings), ("logits", logits)):
        if not tensor.dtype.is_floating_point or not torch.isfinite(tensor).all():
            raise ValueError(f"{split}_{name} must be a finite floating-point tensor")


def check_integer(name: str, value, low: int, high: int | None = None) -> None:
    """Raise ValueError unless `value` is an integer in [low, high] (high None: no upper end)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def class_members(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Training positions of each class, ascending, on the CPU."""
    labels = labels.cpu()
    return [torch.nonzero(labels == cls).flatten() for cls in range(num_classes)]
