"""In-memory train / validation / test tensors and the seeded stratified split between them."""

from dataclasses import dataclass

import torch


@dataclass
class ImageSplits:
    """A dataset as uint8 image tensors (N x C x H x W) with int64 labels, one per split.

    mean and std (one value per channel, on the 0-1 scale) normalise batches on the fly, so the
    stored tensors stay small enough to live on the accelerator.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def to(self, device: torch.device) -> "ImageSplits":
        moved = {name: value.to(device) if torch.is_tensor(value) else value
                 for name, value in vars(self).items()}
        return ImageSplits(**moved)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int):
    """Split indices so that `fraction` of every class goes to the second part.

    Each class contributes round(fraction x class size) samples, at least one when the class
    has two or more. Returns (kept, held_out) index tensors, each sorted.
    """
    generator = torch.Generator().manual_seed(seed)
    kept, held_out = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = int(round(fraction * len(members)))
        if fraction > 0 and len(members) > 1:
            count = min(max(count, 1), len(members) - 1)
        held_out.append(members[:count])
        kept.append(members[count:])
    return torch.cat(kept).sort().values, torch.cat(held_out).sort().values


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the 0-1 scale."""
    scaled = images.to(torch.float64) / 255.0
    mean = scaled.mean(dim=(0, 2, 3))
    std = scaled.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def build_splits(train_images, train_labels, test_images, test_labels, num_classes,
                 val_fraction: float, seed: int) -> ImageSplits:
    """Carve a stratified validation split out of the training set and attach statistics."""
    kept, val = stratified_split(train_labels, val_fraction, seed)
    mean, std = channel_stats(train_images[kept])
    return ImageSplits(
        train_images=train_images[kept], train_labels=train_labels[kept],
        val_images=train_images[val], val_labels=train_labels[val],
        test_images=test_images, test_labels=test_labels,
        num_classes=num_classes, mean=mean, std=std,
    )
