"""Argument checks for `glister_select`: every error names the argument and what was expected."""

import math
import numbers

import torch

from dsslab.selection.greedy import VARIANTS

MODES = ("all", "per_class", "per_batch")
KERNELS = ("torch", "cuda")


def check_arguments(
    train_embeddings, train_logits, train_labels, val_embeddings, val_logits, val_labels, *,
    budget, eta, greedy, mode, epsilon, rounds, batch_size, kernels, generator,
) -> None:
    """Raise ValueError (TypeError for wrong types) naming the first bad argument."""
    train_count, shape = _check_split("train", train_embeddings, train_logits, train_labels)
    _check_split("val", val_embeddings, val_logits, val_labels, expected=shape)
    _check_choice("greedy", greedy, VARIANTS)
    _check_choice("mode", mode, MODES)
    _check_choice("kernels", kernels, KERNELS)
    _check_integer("budget", budget, 1, train_count)
    _check_integer("rounds", rounds, 1, None)
    _check_integer("batch_size", batch_size, 1, None)
    if not isinstance(eta, numbers.Real) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    if not isinstance(epsilon, numbers.Real) or not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")


def _check_split(split, embeddings, logits, labels, expected=None) -> tuple[int, tuple]:
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
        if not tensor.dtype.is_floating_point or not _all_finite(tensor):
            raise ValueError(f"{split}_{name} must be a finite floating-point tensor")
    return count, shape


def _check_choice(name, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _check_integer(name, value, low, high) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def _all_finite(tensor: torch.Tensor) -> bool:
    """NaN and inf make the sum non-finite; only then is the (slower) elementwise check needed."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())
