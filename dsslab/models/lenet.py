"""LeNet-5 for small grayscale or colour images of any size from 8x8 up."""

from torch import nn

from dsslab.models.base import EmbeddingClassifier


def lenet(in_channels: int, num_classes: int) -> EmbeddingClassifier:
    """Two 5x5 convolutions with pooling, then 120 and 84 units; the 84-d layer is the embedding.

    Padding keeps small inputs (digits are 8x8) valid; adaptive pooling fixes the flattened size
    at 16 x 5 x 5 whatever the input size.
    """
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(5), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
    )
    return EmbeddingClassifier(features, embedding_dim=84, num_classes=num_classes)
