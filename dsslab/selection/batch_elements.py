"""Fixed mini-batches as selection elements, for the per-batch modes of CRAIG and GRAD-MATCH.

Batch b holds the training positions [b * batch_size, (b + 1) * batch_size) (the last one may
be shorter); its element is the mean last-layer gradient of its samples. A mean of several
samples' gradients is no longer a single outer product r e^T, so batch gradients are kept as
explicit rows of C (+ C * D) numbers: batch_size times fewer rows than the per-sample gradient
matrix, which is never built.
"""

import math

import torch

from dsslab.selection.gradients import group_sums


def batch_count(num_train: int, batch_size: int) -> int:
    """Number of consecutive blocks of `batch_size` positions covering the training set."""
    return math.ceil(num_train / batch_size)


def batch_gradients(residuals, embeddings, batch_size: int, linear_layer: bool) -> torch.Tensor:
    """Mean gradient of each batch, num_batches x C (bias) or x (C + C * D) (bias, weight)."""
    count = batch_count(len(residuals), batch_size)
    batch_ids = torch.arange(len(residuals), device=residuals.device) // batch_size
    sizes = torch.bincount(batch_ids, minlength=count).to(residuals)[:, None]
    bias_sums, weight_sums = group_sums(residuals, embeddings, batch_ids, count,
                                        linear_layer=linear_layer)
    if weight_sums is None:
        return bias_sums / sizes
    return torch.cat([bias_sums, weight_sums.flatten(1)], dim=1).div_(sizes)


def expand_batches(batches: torch.Tensor, weights: torch.Tensor, batch_size: int,
                   num_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every sample of the given batches, in batch order, each with its batch's weight."""
    offsets = torch.arange(batch_size)
    samples = (batches.to(torch.int64)[:, None] * batch_size + offsets).flatten()
    sample_weights = weights.to(torch.float32)[:, None].expand(-1, batch_size).flatten()
    inside = samples < num_train
    return samples[inside], sample_weights[inside]
