"""CUDA kernel benchmark: one GLISTER round on the GPU, fused kernel against PyTorch on the GPU.

    python benchmarks/kernels.py [--repeats 3] [--cpu]

CIFAR-10 scale synthetic features (45,000 train, 5,000 validation, 512-d, C = 10), 30%
budget, stochastic greedy (15 candidates per step), bias and full last-layer gradients:
- kernel: dsslab.kernels.greedy_round, one cooperative launch for all 13,500 picks;
- torch GPU: the same round written with dsslab.selection.gradients on CUDA tensors, no host
  synchronisation per pick (glister_select(kernels="torch") moves its inputs to the CPU, so
  it cannot stand for PyTorch on the GPU; --cpu times it as well);
- agreement: naive greedy at a tenth of the scale (4,500 / 500, 10%), kernel indices against
  glister_select(kernels="torch").
Every timing is wrapped in torch.cuda.synchronize(); the median of --repeats runs is printed.
Targets: kernel <= 50 ms (bias), <= 200 ms (last layer), >= 5x faster than torch GPU.
Prints "no CUDA device" and exits 0 without a GPU.
"""

import argparse
import statistics
import sys
import time
from functools import partial

import torch

TRAIN, VAL, DIMS, CLASSES = 45_000, 5_000, 512, 10
FRACTION, EPSILON, ETA = 0.3, 0.01, 0.05


def make_features(train: int, val: int, classes: int, device, seed: int = 0):
    """Nonnegative (post-ReLU-like) embeddings and logits of a model right ~70% of the time."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, DIMS, generator=generator)

    def split(count):
        labels = torch.randint(0, classes, (count,), generator=generator)
        embeddings = torch.randn(count, DIMS, generator=generator)
        embeddings.add_(centers[labels], alpha=0.3).clamp_(min=0).mul_(2.0 / DIMS**0.5)
        logits = embeddings @ centers.T * (8.0 / DIMS**0.5)
        return embeddings.to(device), logits.to(device), labels.to(device)

    return (*split(train), *split(val))


def torch_round(residuals, embeddings, val_logits, val_labels, val_embeddings, budget, eta,
                linear_layer, candidates_per_step, generator):
    """The round in PyTorch ops on whatever device the tensors are on, no per-pick host sync.

    Candidates: the top `candidates_per_step` of uniform keys over the remaining samples
    (a uniform draw without replacement); candidates_per_step >= N scores every remaining one.
    """
    from dsslab.selection import gradients

    samples = len(residuals)
    logits = val_logits.clone()
    picked_mask = torch.zeros(samples, dtype=torch.bool, device=residuals.device)
    picks = torch.empty(budget, dtype=torch.int64, device=residuals.device)
    for step in range(budget):
        bias, weight = gradients.validation_gradient(logits, val_labels, val_embeddings,
                                                     linear_layer)
        if candidates_per_step >= samples:
            scores = gradients.gains(residuals, embeddings, bias, weight)
            pick = scores.masked_fill(picked_mask, -torch.inf).argmax()
        else:
            keys = torch.rand(samples, device=residuals.device, generator=generator)
            drawn = keys.masked_fill(picked_mask, -1.0).topk(candidates_per_step).indices
            scores = gradients.gains(residuals[drawn], embeddings[drawn], bias, weight)
            pick = drawn[scores.argmax()]
        picks[step] = pick
        picked_mask[pick] = True
        factor = (1.0 + val_embeddings @ embeddings[pick])[:, None] if linear_layer else 1.0
        logits -= eta * factor * residuals[pick][None, :]
    return picks


def timed(function, repeats: int) -> float:
    """Median wall-clock seconds of `function()` with the GPU drained before and after."""
    seconds = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def speed_rows(repeats: int, with_cpu: bool) -> list[tuple]:
    from dsslab.kernels import greedy_round
    from dsslab.selection.budget import budget_for
    from dsslab.selection.glister import glister_select
    from dsslab.selection.gradients import residuals as residuals_of
    from dsslab.selection.greedy import candidates_per_step

    features = make_features(TRAIN, VAL, CLASSES, "cuda")
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = features
    residuals = residuals_of(logits, labels)
    budget = budget_for(FRACTION, TRAIN)
    candidates = candidates_per_step(TRAIN, budget, EPSILON)
    generator = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    arguments = (residuals, embeddings, val_logits, val_labels, val_embeddings, budget, ETA)
    for linear in (False, True):
        kernel = timed(partial(greedy_round, *arguments, linear, "stochastic", candidates, 0),
                       repeats)
        baseline = timed(partial(torch_round, *arguments, linear, candidates, generator), 1)
        cpu = None
        if with_cpu:
            cpu = timed(partial(glister_select, *features, budget, eta=ETA, linear_layer=linear,
                                kernels="torch"), 1)
        rows.append(("last layer" if linear else "bias", budget, candidates, kernel, baseline,
                     cpu))
    return rows


def agreement_rows() -> list[tuple]:
    """Naive greedy at a tenth of the scale: do kernel and PyTorch pick the same indices?"""
    from dsslab.kernels import greedy_round
    from dsslab.selection.budget import budget_for
    from dsslab.selection.glister import glister_select
    from dsslab.selection.gradients import residuals as residuals_of

    features = make_features(TRAIN // 10, VAL // 10, CLASSES, "cuda", seed=1)
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = features
    budget = budget_for(0.1, TRAIN // 10)
    rows = []
    for linear in (False, True):
        expected = glister_select(*features, budget, eta=ETA, greedy="naive",
                                  linear_layer=linear, kernels="torch").indices
        picks, _ = greedy_round(residuals_of(logits, labels), embeddings, val_logits,
                                val_labels, val_embeddings, budget, ETA, linear, "naive", 1, 0)
        picks = picks.cpu()
        pairs = enumerate(zip(picks.tolist(), expected.tolist(), strict=True))
        same_prefix = next((i for i, (a, b) in pairs if a != b), budget)
        rows.append(("last layer" if linear else "bias", budget,
                     bool(torch.equal(picks, expected)), same_prefix))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="kernel timing runs (median)")
    parser.add_argument("--cpu", action="store_true",
                        help="also time glister_select(kernels='torch'), which runs on the CPU")
    arguments = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 0
    from dsslab.kernels import build

    started = time.perf_counter()
    build.build()
    print(f"device: {torch.cuda.get_device_name()}; kernels ready in "
          f"{time.perf_counter() - started:.1f} s")
    print("gradient    k      cand  kernel ms  torch-GPU ms  speedup  glister CPU ms")
    for name, budget, candidates, kernel, baseline, cpu in speed_rows(arguments.repeats,
                                                                      arguments.cpu):
        cpu_text = "-" if cpu is None else f"{cpu * 1e3:.0f}"
        print(f"{name:<10} {budget:>6} {candidates:>5} {kernel * 1e3:>10.1f} "
              f"{baseline * 1e3:>13.1f} {baseline / kernel:>7.1f}x {cpu_text:>15}")
    print("naive agreement at 4,500 / 500, 10%:")
    for name, budget, equal, prefix in agreement_rows():
        print(f"  {name:<10} k={budget}: indices identical: {equal} "
              f"(first {prefix} picks agree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
