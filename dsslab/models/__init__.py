"""Model construction from the `model=` config group."""

from math import prod

from dsslab.models.base import EmbeddingClassifier
from dsslab.models.lenet import lenet
from dsslab.models.mlp import mlp
from dsslab.models.resnet import resnet18

MODELS = ("lenet", "mlp", "resnet18")


def build_model(settings, image_shape, num_classes: int) -> EmbeddingClassifier:
    """The configured network for images of `image_shape` (C, H, W)."""
    channels = image_shape[0]
    if settings.name == "lenet":
        return lenet(channels, num_classes)
    if settings.name == "resnet18":
        return resnet18(channels, num_classes)
    return mlp(prod(image_shape), num_classes, hidden=settings.hidden, depth=settings.depth)


__all__ = ["EmbeddingClassifier", "MODELS", "build_model"]
