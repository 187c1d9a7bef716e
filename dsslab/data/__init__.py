"""Datasets as in-memory tensors: one loader per `dataset=` choice."""

from dsslab.data.cifar10 import load_cifar10
from dsslab.data.digits import load_digits
from dsslab.data.errors import DataError, DataNotFoundError
from dsslab.data.idx import load_fashion_mnist
from dsslab.data.imagefolder import load_imagefolder
from dsslab.data.splits import ImageSplits

LOADERS = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "imagefolder": load_imagefolder,
}


def load_dataset(settings, seed: int) -> ImageSplits:
    """The train / validation / test tensors of the configured dataset."""
    return LOADERS[settings.name](settings, seed)


__all__ = ["DataError", "DataNotFoundError", "ImageSplits", "LOADERS", "load_dataset"]
