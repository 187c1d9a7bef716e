"""CIFAR-10 in torchvision's format under dataset.root."""

from pathlib import Path

import torch

from dsslab.data.errors import DataNotFoundError
from dsslab.data.splits import ImageSplits, build_splits


def load_cifar10(settings, seed: int) -> ImageSplits:
    """50,000 training and 10,000 test RGB images of 32x32 pixels, 10 classes."""
    from torchvision.datasets import CIFAR10

    root = Path(settings.root).expanduser()
    try:
        train = CIFAR10(str(root), train=True, download=settings.download)
        test = CIFAR10(str(root), train=False, download=settings.download)
    except RuntimeError as error:
        raise DataNotFoundError(
            f"dataset.root={root}: no CIFAR-10 in torchvision's format there ({error}); set "
            "dataset.download=true on a connected machine, or use dataset=imagefolder for a "
            "folder of images"
        ) from error
    return build_splits(
        to_tensor_images(train.data), torch.tensor(train.targets, dtype=torch.int64),
        to_tensor_images(test.data), torch.tensor(test.targets, dtype=torch.int64),
        num_classes=10, val_fraction=settings.val_fraction, seed=seed,
    )


def to_tensor_images(array) -> torch.Tensor:
    """N x H x W x C uint8 numpy images to an N x C x H x W tensor."""
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
