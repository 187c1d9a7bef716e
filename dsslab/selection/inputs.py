"""Checks of tensor-level selection arguments, shared by GLISTER, CRAIG and GRAD-MATCH.

Every error names the argument and what was expected.
"""

import numbers

import torch


def check_split(split, embeddings, logits, labels, expected=None) -> tuple[int, tuple]:
    """Check one split's tensors; `expected` is the train split's (classes, dimensions)."""
    for name, tensor, dims in (("embeddings", embeddings, 2), ("logits", logits, 2),
                               ("labels", labels, 1)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
            raise ValueError(f"{split}_{name} must be a {dims}-d tensor, got "
                             f"{getattr(tensor, 'shape', type(tensor))}")
    count, classes = logits.shape
    if count < 1 or classes < 1:
        raise ValueError(f"{split}_logits must have at least one row and column, "
                         f"got shape {tuple(logits.shape)}")
    if len(embeddings) != count or len(labels) != count:
        raise ValueError(f"{split}_embeddings, {split}_logits and {split}_labels must have the "
                         f"same number of rows, got {len(embeddings)}, {count}, {len(labels)}")
    shape = (classes, embeddings.shape[1])
    if expected is not None and shape[0] != expected[0]:
        raise ValueError(f"{split}_logits must have {expected[0]} columns like train_logits, "
                         f"got {shape[0]}")
    if expected is not None and shape[1] != expected[1]:
        raise ValueError(f"{split}_embeddings must have {expected[1]} columns like "
                         f"train_embeddings, got {shape[1]}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{split}_labels must be an integer tensor, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"{split}_labels must be in [0, {classes}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    for name, tensor in (("embeddings", embeddings), ("logits", logits)):
        if not tensor.dtype.is_floating_point or not all_finite(tensor):
            raise ValueError(f"{split}_{name} must be a finite floating-point tensor")
    return count, shape


def check_choice(name, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


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


def all_finite(tensor: torch.Tensor) -> bool:
    """NaN and inf make the sum non-finite; only then is the (slower) elementwise check needed."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())
