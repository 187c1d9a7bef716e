"""Batch-level image transforms that run wherever the batch lives (CPU or GPU)."""

import torch


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 N x C x H x W to float, scaled to 0-1 and standardised per channel."""
    mean = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std


def random_crop_flip(images: torch.Tensor, generator: torch.Generator,
                     padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding, then a horizontal flip of half the images.

    Offsets and flips come from `generator` (a CPU generator, so the stream is the same on every
    device); the pixel work happens on the images' device.
    """
    count, _, height, width = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    offsets, flips = offsets.to(images.device), flips.to(images.device)

    padded = torch.nn.functional.pad(images, (padding,) * 4)
    rows = offsets[0].view(-1, 1) + torch.arange(height, device=images.device)
    cols = offsets[1].view(-1, 1) + torch.arange(width, device=images.device)
    cols = torch.where(flips.view(-1, 1), cols.flip(1), cols)
    batch = torch.arange(count, device=images.device).view(-1, 1, 1)
    cropped = padded.permute(0, 2, 3, 1)[batch, rows.unsqueeze(2), cols.unsqueeze(1)]
    return cropped.permute(0, 3, 1, 2).contiguous()
