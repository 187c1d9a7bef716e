"""One epoch of training on a subset, evaluation, and the feature pass selection needs."""

import sys
from dataclasses import dataclass

import torch
from torch.nn import functional

from dsslab.data.batches import evaluation_batches


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochResult:
    loss: float
    accuracy: float
    steps: int


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    logits: torch.Tensor  # kept so that selection can reuse this pass
    embeddings: torch.Tensor


def train_epoch(model, optimizer, scheduler, batches, hardware, epoch: int,
                steps_left: int | None = None) -> EpochResult:
    """One pass over `batches`; the loss weights each sample by its subset weight.

    The scheduler steps per batch while `steps_left` (the planned schedule) is not used up, so
    the learning rate follows the steps actually taken on the subset.
    """
    model.train()
    total_loss = total_correct = total_seen = steps = 0
    for images, labels, weights in progress(batches, f"epoch {epoch}"):
        if hardware.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with hardware.autocast():
            logits = model(images)
        losses = functional.cross_entropy(logits.float(), labels, reduction="none")
        # A batch whose weights are all zero contributes nothing, rather than 0 / 0.
        loss = (losses * weights).sum() / weights.sum().clamp_min(1e-12)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss is {loss.item()} at epoch {epoch}, step {steps + 1}; "
                                     "lower optimizer.lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        if scheduler is not None and (steps_left is None or steps <= steps_left):
            scheduler.step()
        total_loss += loss.detach() * len(labels)
        total_correct += (logits.argmax(1) == labels).sum()
        total_seen += len(labels)
    return EpochResult(float(total_loss) / total_seen, float(total_correct) / total_seen, steps)


@torch.no_grad()
def evaluate(model, images, labels, batch_size, hardware, mean, std) -> Evaluation:
    """Mean loss and accuracy in eval mode, plus the logits and embeddings of every sample."""
    model.eval()
    all_logits, all_embeddings = [], []
    for batch, _ in evaluation_batches(images, labels, batch_size, hardware.device, mean, std):
        if hardware.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with hardware.autocast():
            logits, embeddings = model.logits_and_embeddings(batch)
        all_logits.append(logits.float())
        all_embeddings.append(embeddings.float())
    logits = torch.cat(all_logits)
    targets = labels.to(logits.device)
    loss = functional.cross_entropy(logits, targets).item()
    accuracy = (logits.argmax(1) == targets).float().mean().item()
    return Evaluation(loss, accuracy, logits, torch.cat(all_embeddings))


def progress(batches, description: str):
    """A progress bar when a terminal is attached; plain iteration otherwise."""
    if not sys.stderr.isatty():
        return batches
    from tqdm import tqdm

    return tqdm(batches, desc=description, leave=False, unit="batch")

