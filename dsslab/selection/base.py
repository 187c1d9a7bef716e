"""What every selection strategy receives and returns."""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Features:
    """Penultimate embeddings and logits of the current model, eval mode, no augmentation."""

    train_embeddings: torch.Tensor  # N x D
    train_logits: torch.Tensor  # N x C
    train_labels: torch.Tensor  # N, int64
    val_embeddings: torch.Tensor  # M x D
    val_logits: torch.Tensor  # M x C
    val_labels: torch.Tensor  # M, int64


@dataclass(frozen=True)
class Subset:
    """Indices into the training set and the per-sample loss weights that go with them."""

    indices: torch.Tensor  # k, int64
    weights: torch.Tensor  # k, float32
    info: dict = field(default_factory=dict)  # extra figures to log (e.g. solver picks)

    @classmethod
    def uniform(cls, indices: torch.Tensor, **info) -> "Subset":
        """A subset whose samples all have weight 1."""
        indices = indices.to(torch.int64)
        return cls(indices, torch.ones(len(indices), dtype=torch.float32), dict(info))


@dataclass
class SelectionContext:
    """Everything a strategy may use at one selection round."""

    epoch: int
    budget: int
    num_train: int
    train_labels: torch.Tensor
    num_classes: int
    learning_rate: float  # the optimizer's current base learning rate
    batch_size: int  # the training mini-batch size
    generator: torch.Generator  # seeded per round; the only source of randomness allowed
    compute_features: Callable[[], Features]
    kernels: str = "torch"  # "cuda" when the native kernels are built and usable, else "torch"
