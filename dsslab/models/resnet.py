"""ResNet-18 in its CIFAR form, built from torchvision's implementation."""

from torch import nn
from torchvision.models import resnet18 as torchvision_resnet18

from dsslab.models.base import EmbeddingClassifier


def resnet18(in_channels: int, num_classes: int) -> EmbeddingClassifier:
    """3x3 stride-1 stem and no max-pool (32x32 inputs keep their resolution); 512-d embedding."""
    backbone = torchvision_resnet18(weights=None)
    backbone.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    backbone.maxpool = nn.Identity()
    backbone.fc = nn.Identity()
    return EmbeddingClassifier(backbone, embedding_dim=512, num_classes=num_classes)
