"""A plain multi-layer perceptron on flattened pixels."""

from torch import nn

from dsslab.models.base import EmbeddingClassifier


def mlp(input_size: int, num_classes: int, hidden: int = 256, depth: int = 2):
    """`depth` hidden layers of `hidden` ReLU units; the last hidden layer is the embedding."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"model.depth and model.hidden must be >= 1, got {depth} and {hidden}")
    layers = [nn.Flatten()]
    width = input_size
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return EmbeddingClassifier(nn.Sequential(*layers), embedding_dim=hidden,
                               num_classes=num_classes)
