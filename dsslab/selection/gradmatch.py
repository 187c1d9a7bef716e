"""GRAD-MATCH: the tensor-level API `gradmatch_select` and the `gradmatch` strategy.

Within each class, find k_c samples and non-negative weights whose weighted sum of last-layer
gradients matches a target gradient: the sum of the class's training gradients, or (valid=True)
its mean validation gradient times its training size, so that weights count samples in both
cases. The solver is non-negative orthogonal matching pursuit with ridge penalty lam
(omp.py); the atoms stay as (residual, embedding) factors (gradient_atoms.py), so no
per-sample gradient matrix is built. Solver arithmetic is float64.

When the solver stops before k_c picks, omp.fill_budget tops the class up (positive
correlations first, then uniform draws from `generator`, each at the mean solver weight) and
the info dict counts solver picks and filled samples.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

import torch

from dsslab.selection.base import Features, SelectionContext, Subset
from dsslab.selection.batch_elements import batch_gradients, expand_batches
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.gradient_atoms import SampleAtoms
from dsslab.selection.gradients import group_sums, residuals, validation_gradient
from dsslab.selection.inputs import check_integer, check_split, class_members
from dsslab.selection.omp import ExplicitAtoms, fill_budget, nonnegative_omp
from dsslab.selection.strategy import GradientStrategy, StrategySettings, register

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Matching:
    """Solver settings shared by every class of one selection."""

    lam: float
    eps: float
    linear_layer: bool
    generator: torch.Generator


@dataclass
class Tally:
    """What the solver did across classes, for the info dict and the log."""

    solver_picks: int = 0  # elements chosen by the solver (samples, or batches per batch)
    filled: int = 0  # elements added by the fill rule
    stop_reasons: Counter = field(default_factory=Counter)

    def add(self, solver_picks: int, filled: int, stop_reason: str) -> None:
        self.solver_picks += solver_picks
        self.filled += filled
        self.stop_reasons[stop_reason] += 1

    def info(self) -> dict:
        return {"solver_picks": self.solver_picks, "filled": self.filled,
                "stop_reasons": dict(self.stop_reasons)}


def gradmatch_select(
    train_embeddings: torch.Tensor,
    train_logits: torch.Tensor,
    train_labels: torch.Tensor,
    budget: int,
    *,
    val_embeddings: torch.Tensor | None = None,
    val_logits: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    lam: float = 0.5,
    valid: bool = False,
    linear_layer: bool = False,
    per_batch: bool = False,
    batch_size: int = 32,
    eps: float = 1e-6,
    generator: torch.Generator | None = None,
) -> Subset:
    """Select `budget` training samples by GRAD-MATCH, with finite weights >= 0.

    Exactly `budget` samples per class mode; whole batches (about `budget` samples) per batch.
    valid=True matches validation gradients and needs the three val_* tensors. eps: relative
    residual below which the solver stops early. Per class (largest-remainder class budgets)
    unless `per_batch`: then the elements are mean gradients of consecutive blocks of
    `batch_size` positions, budget / batch_size batches (rounded half up) are chosen across all
    classes against the sum of batch means (or the mean validation gradient times the number
    of batches), and every sample of a chosen batch carries its batch's weight. Indices are
    positions in the given tensors, class by class, solver picks before filled ones.
    """
    check_split("train", train_embeddings, train_logits, train_labels)
    check_integer("budget", budget, 1, len(train_labels))
    check_integer("batch_size", batch_size, 1)
    validation = None
    if valid:
        check_split("val", val_embeddings, val_logits, val_labels)
        check_same_columns(train_embeddings, train_logits, val_embeddings, val_logits)
        validation = (val_logits.cpu(), val_labels.cpu(), val_embeddings.cpu())
    matching = Matching(float(lam), float(eps), bool(linear_layer),
                        generator or torch.default_generator)
    # float64 throughout: the ridge NNLS subtracts nearly equal Gram terms.
    train_residuals = residuals(train_logits.cpu().double(), train_labels.cpu())
    embeddings = train_embeddings.cpu().double()
    if per_batch:
        indices, weights, info = select_batches(
            train_residuals, embeddings, budget, batch_size, validation, matching
        )
    else:
        indices, weights, info = select_per_class(
            train_residuals, embeddings, train_labels, budget, validation, matching
        )
    info["sample_count"] = len(indices)
    return Subset(indices, weights.to(torch.float32), info)


def check_same_columns(train_embeddings, train_logits, val_embeddings, val_logits) -> None:
    """Validation features must have the training features' class and embedding widths."""
    for name, train, val in (("logits", train_logits, val_logits),
                             ("embeddings", train_embeddings, val_embeddings)):
        if val.shape[1] != train.shape[1]:
            raise ValueError(f"val_{name} must have {train.shape[1]} columns like "
                             f"train_{name}, got {val.shape[1]}")


def match(atoms, budget: int, matching: Matching, tally: Tally):
    """Solver plus fill for one atom set: (positions, weights) as tensors."""
    result = nonnegative_omp(atoms, budget, lam=matching.lam, eps=matching.eps)
    positions, weights, filled = fill_budget(result, budget, matching.generator)
    tally.add(len(result.picks), filled, result.stop_reason)
    return torch.from_numpy(positions), torch.from_numpy(weights)


def class_target(class_residuals, class_embeddings, val_rows, validation, linear_layer):
    """The class's gradient sum, or its validation mean gradient scaled to the class size."""
    if validation is None:
        group = torch.zeros(len(class_residuals), dtype=torch.int64)
        bias, weight = group_sums(class_residuals, class_embeddings, group, 1,
                                  linear_layer=linear_layer)
        return bias[0], None if weight is None else weight[0]
    val_logits, val_labels, val_embeddings = validation
    bias, weight = validation_gradient(val_logits[val_rows].double(), val_labels[val_rows],
                                       val_embeddings[val_rows].double(), linear_layer)
    size = len(class_residuals)
    return bias * size, None if weight is None else weight * size


def validation_rows(validation, cls: int, missing: list[int]) -> torch.Tensor | None:
    """The class's validation rows; all of them (noted in `missing`) when it has none."""
    if validation is None:
        return None
    labels = validation[1]
    rows = torch.nonzero(labels == cls).flatten()
    if len(rows) == 0:
        missing.append(cls)
        rows = torch.arange(len(labels))
    return rows


def select_per_class(train_residuals, embeddings, labels, budget, validation, matching):
    """Matching pursuit inside each class; returns (indices, weights, info)."""
    members = class_members(labels, train_residuals.shape[1])
    budgets = class_budgets([len(rows) for rows in members], budget)
    tally, missing, indices, weights = Tally(), [], [], []
    for cls, (rows, class_budget) in enumerate(zip(members, budgets, strict=True)):
        if class_budget == 0:
            continue
        class_residuals, class_embeddings = train_residuals[rows], embeddings[rows]
        val_rows = validation_rows(validation, cls, missing)
        bias, weight = class_target(class_residuals, class_embeddings, val_rows, validation,
                                    matching.linear_layer)
        atoms = SampleAtoms(class_residuals, class_embeddings, matching.linear_layer, bias,
                            weight)
        positions, class_weights = match(atoms, class_budget, matching, tally)
        indices.append(rows[positions])
        weights.append(class_weights)
    if missing:
        logger.warning("classes %s have no validation samples; each is matched against the "
                       "whole validation set's mean gradient", missing)
    info = {"mode": "per_class", "elements": budget, "element_count": len(labels),
            "classes_without_validation": len(missing), **tally.info()}
    return torch.cat(indices), torch.cat(weights), info


def select_batches(train_residuals, embeddings, budget, batch_size, validation, matching):
    """Matching pursuit over fixed mini-batches; returns (indices, weights, info)."""
    vectors = batch_gradients(train_residuals, embeddings, batch_size, matching.linear_layer)
    count = batch_budget(budget, batch_size, len(vectors))
    if validation is None:
        target = vectors.sum(dim=0)
    else:
        bias, weight = validation_gradient(validation[0].double(), validation[1],
                                           validation[2].double(), matching.linear_layer)
        parts = [bias] if weight is None else [bias, weight.flatten()]
        target = torch.cat(parts) * len(vectors)
    tally = Tally()
    positions, batch_weights = match(ExplicitAtoms(vectors.numpy(), target.numpy()), count,
                                     matching, tally)
    indices, weights = expand_batches(positions, batch_weights, batch_size,
                                      len(train_residuals))
    info = {"mode": "per_batch", "elements": count, "element_count": len(vectors),
            "batch_size": batch_size, **tally.info()}
    return indices, weights, info


@dataclass
class GradMatchSettings(StrategySettings):
    """Knobs of the `gradmatch` strategy (conf/strategy/gradmatch.yaml).

    lam: ridge penalty on the weights. valid: match validation instead of training gradients.
    eps: relative residual at which the solver stops early (the rest is filled, see gradmatch).
    linear_layer: full last-layer gradients instead of bias-only ones.
    per_batch: elements are fixed mini-batches instead of samples of one class.
    batch_size: mini-batch size of per-batch mode (None: the training batch size).
    """

    name: str = "gradmatch"
    lam: float = 0.5
    valid: bool = False
    eps: float = 1e-6
    linear_layer: bool = False
    per_batch: bool = False
    batch_size: int | None = None

    def __post_init__(self):
        if not self.lam >= 0.0:
            raise ValueError(f"strategy.lam must be >= 0, got {self.lam!r}")
        if not self.eps >= 0.0:
            raise ValueError(f"strategy.eps must be >= 0, got {self.eps!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"strategy.batch_size must be >= 1 or null, got {self.batch_size!r}")


@register("gradmatch")
class GradMatchStrategy(GradientStrategy):
    """GRAD-MATCH: a weighted subset whose gradient matches the full (or validation) one.

    The log line of each round carries info's solver_picks, filled and stop_reasons.
    """

    settings_class = GradMatchSettings
    label = "GRAD-MATCH"

    def select_from(self, features: Features, context: SelectionContext) -> Subset:
        settings = self.settings
        return gradmatch_select(
            features.train_embeddings, features.train_logits, features.train_labels,
            context.budget, val_embeddings=features.val_embeddings,
            val_logits=features.val_logits, val_labels=features.val_labels, lam=settings.lam,
            valid=settings.valid, linear_layer=settings.linear_layer,
            per_batch=settings.per_batch, batch_size=settings.batch_size or context.batch_size,
            eps=settings.eps, generator=context.generator,
        )
