"""Mini-batches of the current subset, gathered by index from in-memory tensors."""

import math

import torch

from dsslab.data.augment import normalize, random_crop_flip


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator for one epoch and one purpose (0: order, 1: augmentation).

    Deriving every stream from (seed, epoch) makes a resumed run draw exactly what an
    uninterrupted one would.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 16 + stream)


def steps_per_epoch(subset_size: int, batch_size: int) -> int:
    """Batches in one epoch over the subset; a partial last batch counts (never zero)."""
    return max(1, math.ceil(subset_size / batch_size))


class SubsetBatches:
    """Shuffled, optionally augmented batches (images, labels, weights) of a subset.

    With workers=0 (the choice when the images live on the training device) a batch is a gather
    there and the augmentation runs there too. With workers > 0 a DataLoader gathers on the host
    with that many processes and pinned memory, and the batch is copied to the device before
    augmentation. Both give the same batches.
    """

    def __init__(self, images, labels, *, batch_size, device, augment, mean, std, seed,
                 workers=0):
        self.images, self.labels = images, labels
        self.batch_size, self.device = batch_size, torch.device(device)
        self.augment, self.mean, self.std = augment, mean, std
        self.seed, self.workers = seed, workers

    def epoch(self, indices: torch.Tensor, weights: torch.Tensor, epoch: int):
        """Yield the batches of one epoch over `indices` in a seeded order."""
        order = torch.randperm(len(indices), generator=epoch_generator(self.seed, epoch, 0))
        augment_generator = epoch_generator(self.seed, epoch, 1)
        chunks = order.split(self.batch_size)
        for images, labels, batch_weights in self._gather(indices.cpu(), weights.cpu(), chunks):
            images = images.to(self.device, non_blocking=True)
            if self.augment:
                images = random_crop_flip(images, augment_generator)
            yield (normalize(images, self.mean, self.std),
                   labels.to(self.device, non_blocking=True),
                   batch_weights.to(self.device, non_blocking=True))

    def _gather(self, indices, weights, chunks):
        if self.workers == 0:
            for chunk in chunks:
                rows = indices[chunk].to(self.images.device)
                yield self.images[rows], self.labels[rows], weights[chunk]
            return
        yield from self._loader(indices, weights, chunks)

    def _loader(self, indices, weights, chunks):
        dataset = _IndexedRows(self.images, self.labels, indices, weights)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=[chunk.tolist() for chunk in chunks],
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            worker_init_fn=_WorkerSeeder(self.seed), collate_fn=_stack_rows)
        yield from loader


class _IndexedRows(torch.utils.data.Dataset):
    def __init__(self, images, labels, indices, weights):
        self.images, self.labels, self.indices, self.weights = images, labels, indices, weights

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, position):
        row = self.indices[position]
        return self.images[row], self.labels[row], self.weights[position]


def _stack_rows(rows):
    images, labels, weights = zip(*rows)
    return torch.stack(images), torch.stack(labels), torch.stack(weights)


class _WorkerSeeder:
    """Gives each loader worker its own seed, derived from the run's base seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, worker_id: int):
        torch.manual_seed(self.seed * 1_000_003 + 7919 * (worker_id + 1))


def evaluation_batches(images, labels, batch_size, device, mean, std):
    """Unaugmented, normalised batches in dataset order, for evaluation and features."""
    for start in range(0, len(labels), batch_size):
        chunk = images[start:start + batch_size].to(device, non_blocking=True)
        yield normalize(chunk, mean, std), labels[start:start + batch_size].to(device)
