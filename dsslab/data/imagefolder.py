"""A user's own images: root/train/<class>/* and root/test/<class>/*."""

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from dsslab.data.errors import DataError, DataNotFoundError
from dsslab.data.splits import ImageSplits, build_splits

log = logging.getLogger(__name__)
CACHE_DIR = Path.home() / ".cache" / "dsslab" / "imagefolder"


def load_imagefolder(settings, seed: int) -> ImageSplits:
    """Decode both splits once (cached), resized to image_size, with train's class names."""
    root = Path(settings.root).expanduser()
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataNotFoundError(
                f"dataset.root={root}: expected folders {root / 'train'} and {root / 'test'}, "
                "each holding one sub-folder of images per class")
    train_images, train_labels, classes = decode_split(root / "train", settings)
    test_images, test_labels, test_classes = decode_split(root / "test", settings)
    if test_classes != classes:
        raise DataError(f"dataset.root={root}: test classes {test_classes} differ from "
                        f"train classes {classes}")
    return build_splits(train_images, train_labels, test_images, test_labels,
                        num_classes=len(classes), val_fraction=settings.val_fraction, seed=seed)


def decode_split(folder: Path, settings):
    """Images (N x C x S x S uint8), labels and class names of one split, through the cache."""
    listing = list_images(folder)
    cache_file = CACHE_DIR / f"{cache_key(folder, listing.samples, settings)}.pt"
    if settings.cache and cache_file.is_file():
        images, labels = torch.load(cache_file)
        return images, labels, listing.classes
    images = torch.stack([decode(path, settings) for path, _ in listing.samples])
    labels = torch.tensor(listing.targets, dtype=torch.int64)
    if settings.cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp")
        torch.save((images, labels), temporary)
        temporary.replace(cache_file)
    log.info("decoded %d images from %s", len(labels), folder)
    return images, labels, listing.classes


def list_images(folder: Path):
    """torchvision's listing of folder/<class>/*, with its complaints turned into DataErrors."""
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(f"dataset.root: {folder} must hold one sub-folder of images per class, "
                        f"each with at least one image ({error})") from None


def decode(path: str, settings) -> torch.Tensor:
    """One image file as a C x S x S uint8 tensor."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if settings.channels == 1 else "RGB"
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"dataset.root: cannot read image {path} ({error})") from None
    with image:
        image = image.convert(mode).resize((settings.image_size, settings.image_size))
        array = np.asarray(image, dtype=np.uint8).reshape(
            settings.image_size, settings.image_size, settings.channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def cache_key(folder: Path, samples, settings) -> str:
    """Changes whenever the file list, a file's size or time, or the decoding settings change."""
    identity = f"{folder.resolve()}|{settings.image_size}|{settings.channels}"
    digest = hashlib.sha256(identity.encode())
    for path, label in samples:
        stat = Path(path).stat()
        digest.update(f"{path}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]
