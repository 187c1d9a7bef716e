"""Test-only helpers for CRAIG and GRAD-MATCH: random features and explicit gradients."""

from pathlib import Path

import torch

from dsslab.selection.base import Features, SelectionContext, Subset

REPO = Path(__file__).resolve().parents[1]


def random_features(count: int, classes: int, dims: int, seed: int,
                    val_count: int = 30) -> Features:
    """float64 features with labels drawn uniformly (some classes may be empty)."""
    generator = torch.Generator().manual_seed(seed)

    def split(rows: int):
        return (torch.randn(rows, dims, generator=generator, dtype=torch.float64),
                2.0 * torch.randn(rows, classes, generator=generator, dtype=torch.float64),
                torch.randint(0, classes, (rows,), generator=generator))

    return Features(*split(count), *split(val_count))


def explicit_gradients(features: Features, linear_layer: bool) -> torch.Tensor:
    """Per-sample last-layer gradients as explicit N x (C + C*D) rows (bias part first).

    Built straight from the cross-entropy definition, independently of gradients.py.
    """
    logits = features.train_logits
    onehot = torch.nn.functional.one_hot(features.train_labels, logits.shape[1])
    bias = torch.softmax(logits, dim=1) - onehot.to(logits)
    if not linear_layer:
        return bias
    weight = bias[:, :, None] * features.train_embeddings[:, None, :]
    return torch.cat([bias, weight.flatten(1)], dim=1)


def subset_as_dict(subset: Subset) -> dict[int, float]:
    """{training index: weight}, for comparisons that ignore pick order."""
    return dict(zip(subset.indices.tolist(), subset.weights.tolist(), strict=True))


def selection_context(features: Features, budget: int, batch_size: int = 4) -> SelectionContext:
    """A selection round's context over `features` (4 classes), seeded generator 0."""
    return SelectionContext(
        epoch=0, budget=budget, num_train=len(features.train_labels),
        train_labels=features.train_labels, num_classes=4, learning_rate=0.1,
        batch_size=batch_size, generator=torch.Generator().manual_seed(0),
        compute_features=lambda: features,
    )
