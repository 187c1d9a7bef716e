"""Fashion-MNIST from its standard IDX files, gzipped or not."""

import gzip
from pathlib import Path

import numpy as np
import torch

from dsslab.data.errors import DataNotFoundError
from dsslab.data.splits import ImageSplits, build_splits

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = ("install them with `apt-get install dataset-fashion-mnist` (files land in "
              "/usr/share/datasets/fashion-mnist), or set dataset.download=true on a "
              "connected machine")


def read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file of unsigned bytes (magic 0x0000 08 <ndim>, big-endian sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return torch.from_numpy(values.reshape(shape).copy())


def find_idx_file(root: Path, stem: str) -> Path:
    """The file for `stem` in root or in torchvision's FashionMNIST/raw layout below it."""
    for folder in (root, root / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DataNotFoundError(f"dataset.root={root}: no {stem}[.gz] there; {HOW_TO_GET}")


def load_fashion_mnist(settings, seed: int) -> ImageSplits:
    """60,000 training and 10,000 test images, 28x28 grayscale, 10 classes."""
    root = Path(settings.root).expanduser()
    if settings.download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    tensors = {key: read_idx(find_idx_file(root, stem)) for key, stem in FILES.items()}
    return build_splits(
        tensors["train_images"].unsqueeze(1), tensors["train_labels"].to(torch.int64),
        tensors["test_images"].unsqueeze(1), tensors["test_labels"].to(torch.int64),
        num_classes=10, val_fraction=settings.val_fraction, seed=seed,
    )
