"""scikit-learn's bundled 8x8 digits: the offline quickstart and test dataset."""

import torch

from dsslab.data.splits import ImageSplits, build_splits, stratified_split


def load_digits(settings, seed: int) -> ImageSplits:
    """1,797 grayscale 8x8 images in 10 classes; a stratified share is held out as test."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # Pixel values are 0..16; scale to the 0..255 range every other dataset uses.
    pixels = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().to(torch.uint8)
    images = pixels.unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    train, test = stratified_split(labels, settings.test_fraction, seed)
    return build_splits(images[train], labels[train], images[test], labels[test],
                        num_classes=10, val_fraction=settings.val_fraction, seed=seed)
