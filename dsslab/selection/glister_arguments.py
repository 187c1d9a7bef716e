"""Argument checks for `glister_select`: every error names the argument and what was expected."""

import math
import numbers

import torch

from dsslab.selection.greedy import VARIANTS
from dsslab.selection.inputs import check_choice, check_integer, check_split

MODES = ("all", "per_class", "per_batch")
KERNELS = ("torch", "cuda")


def check_arguments(
    train_embeddings, train_logits, train_labels, val_embeddings, val_logits, val_labels, *,
    budget, eta, greedy, mode, epsilon, rounds, batch_size, kernels, generator,
) -> None:
    """Raise ValueError (TypeError for wrong types) naming the first bad argument."""
    train_count, shape = check_split("train", train_embeddings, train_logits, train_labels)
    check_split("val", val_embeddings, val_logits, val_labels, expected=shape)
    check_choice("greedy", greedy, VARIANTS)
    check_choice("mode", mode, MODES)
    check_choice("kernels", kernels, KERNELS)
    check_integer("budget", budget, 1, train_count)
    check_integer("rounds", rounds, 1, None)
    check_integer("batch_size", batch_size, 1, None)
    if not isinstance(eta, numbers.Real) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    if not isinstance(epsilon, numbers.Real) or not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
