"""CRAIG: the tensor-level API `craig_select` and the `craig` strategy.

Within each class, pick the samples whose last-layer gradients best represent the others:
facility location on sim(i, j) = max_distance - ||g_i - g_j||, maximised by lazy greedy. A
pick's weight is the number of samples closest to it (its cluster size), so the weighted
subset gradient approximates the full one. Distances come from gradient_dots and
squared_norms on the (residual, embedding) factors; only one class's n_c x n_c matrix exists
at a time.
"""

from dataclasses import dataclass

import torch

from dsslab.selection.base import Features, SelectionContext, Subset
from dsslab.selection.batch_elements import batch_gradients, expand_batches
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.facility_location import (
    facility_location,
    gradient_distances,
    similarities,
)
from dsslab.selection.gradients import gradient_dots, residuals, squared_norms
from dsslab.selection.inputs import check_integer, check_split, class_members
from dsslab.selection.strategy import GradientStrategy, StrategySettings, register


def craig_select(
    train_embeddings: torch.Tensor,
    train_logits: torch.Tensor,
    train_labels: torch.Tensor,
    budget: int,
    *,
    linear_layer: bool = False,
    per_batch: bool = False,
    batch_size: int = 32,
) -> Subset:
    """Select `budget` training samples by CRAIG; weights are cluster sizes.

    Exactly `budget` samples per class mode; whole batches (about `budget` samples) per batch.
    Per class (class budgets by largest remainder, summing to `budget`) unless `per_batch`:
    then the elements are the mean gradients of consecutive blocks of `batch_size` positions,
    budget / batch_size batches (rounded half up) are picked across all classes, and every
    sample of a picked batch is returned with its batch's weight (the number of batches it
    represents). Indices are positions in the given tensors, class by class in pick order.
    """
    check_split("train", train_embeddings, train_logits, train_labels)
    check_integer("budget", budget, 1, len(train_labels))
    check_integer("batch_size", batch_size, 1)
    train_residuals = residuals(train_logits, train_labels).cpu()
    embeddings = train_embeddings.cpu().to(train_residuals)
    if per_batch:
        indices, weights, info = select_batches(
            train_residuals, embeddings, budget, batch_size, linear_layer
        )
    else:
        indices, weights, info = select_per_class(
            train_residuals, embeddings, train_labels, budget, linear_layer
        )
    info["sample_count"] = len(indices)
    return Subset(indices, weights, info)


def sample_similarity(class_residuals, class_embeddings, linear_layer: bool) -> torch.Tensor:
    """max_distance - ||g_i - g_j|| between the per-sample gradients of one class."""
    gram = gradient_dots(
        class_residuals, class_embeddings, class_residuals, class_embeddings, linear_layer
    )
    norms = squared_norms(class_residuals, class_embeddings, linear_layer)
    return similarities(gradient_distances(gram, norms))


def select_per_class(train_residuals, embeddings, labels, budget: int, linear_layer: bool):
    """Facility location inside each class; returns (indices, weights, info)."""
    members = class_members(labels, train_residuals.shape[1])
    budgets = class_budgets([len(rows) for rows in members], budget)
    indices, weights = [], []
    for rows, class_budget in zip(members, budgets, strict=True):
        if class_budget == 0:
            continue
        similarity = sample_similarity(train_residuals[rows], embeddings[rows], linear_layer)
        picks, sizes = facility_location(similarity, class_budget)
        indices.append(rows[picks])
        weights.append(sizes)
    info = {"mode": "per_class", "elements": budget, "element_count": len(labels)}
    return torch.cat(indices), torch.cat(weights), info


def select_batches(train_residuals, embeddings, budget: int, batch_size: int,
                   linear_layer: bool):
    """Facility location over fixed mini-batches; returns (indices, weights, info)."""
    vectors = batch_gradients(train_residuals, embeddings, batch_size, linear_layer)
    count = batch_budget(budget, batch_size, len(vectors))
    gram = vectors @ vectors.T
    similarity = similarities(gradient_distances(gram, gram.diagonal().clone()))
    picks, sizes = facility_location(similarity, count)
    indices, weights = expand_batches(picks, sizes, batch_size, len(train_residuals))
    info = {"mode": "per_batch", "elements": count, "element_count": len(vectors),
            "batch_size": batch_size}
    return indices, weights, info


@dataclass
class CraigSettings(StrategySettings):
    """Knobs of the `craig` strategy (conf/strategy/craig.yaml).

    linear_layer: distances between full last-layer gradients instead of bias-only ones.
    per_batch: elements are fixed mini-batches instead of samples of one class.
    batch_size: mini-batch size of per-batch mode (None: the training batch size).
    """

    name: str = "craig"
    linear_layer: bool = False
    per_batch: bool = False
    batch_size: int | None = None

    def __post_init__(self):
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"strategy.batch_size must be >= 1 or null, got {self.batch_size!r}")


@register("craig")
class CraigStrategy(GradientStrategy):
    """CRAIG: weighted gradient-space medoids of each class, recomputed every round."""

    settings_class = CraigSettings
    label = "CRAIG"

    def select_from(self, features: Features, context: SelectionContext) -> Subset:
        settings = self.settings
        return craig_select(
            features.train_embeddings, features.train_logits, features.train_labels,
            context.budget, linear_layer=settings.linear_layer, per_batch=settings.per_batch,
            batch_size=settings.batch_size or context.batch_size,
        )
