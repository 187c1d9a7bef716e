"""How the fused greedy kernel splits one round: grid size and which scoring path each step takes.

Block b of the cooperative grid owns a slice of the validation rows. Each step scores its
candidates one of two ways (see csrc/selection_kernels.cu):
- pairwise: every block adds its rows' share of every candidate's gain
  (1/M) sum_v (r_c . q_v)(1 + e_v . e_c); one grid barrier per step. A block scores each
  candidate against its own rows' gradient (C (1 + D) per candidate) or, when that is dearer,
  pair by pair (rows x (C + D)); every block then adds all candidates' shares, so it suits few
  candidates (stochastic greedy).
- sharded: the blocks first reduce the validation gradient (g_b, G_W), then score a slice of the
  candidates each; three barriers per step, but a candidate costs only C (1 + D) / blocks.
The kernel takes the pairwise path whenever the step's candidate count is at most
`pairwise_limit`, the break-even count of the cost model below (per-block multiply-adds on the
critical path, a barrier priced as BARRIER_COST of them). The constants are estimates, not yet
tuned on a GPU.
"""

import math
from dataclasses import dataclass

MIN_ROWS_PER_BLOCK = 16  # fewer validation rows per block make barriers dominate
BARRIER_COST = 1 << 19  # ~2 us of a 256-thread block, in multiply-adds
METHODS = ("auto", "pairwise", "sharded")


@dataclass(frozen=True)
class GreedyPlan:
    """Arguments the kernel needs beyond the tensors."""

    sample_size: int  # candidates per step; >= samples means every remaining sample
    pairwise_limit: int  # pairwise scoring when a step's candidate count is at most this
    blocks: int  # requested grid size; the kernel lowers it to what can be co-resident


def grid_blocks(val_samples: int, multiprocessors: int, blocks: int | None = None) -> int:
    """One block per multiprocessor, but at least MIN_ROWS_PER_BLOCK validation rows each."""
    if blocks is not None:
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1 or None, got {blocks}")
        return min(blocks, val_samples)
    return max(1, min(multiprocessors, math.ceil(val_samples / MIN_ROWS_PER_BLOCK)))


def pairwise_limit(samples: int, val_samples: int, classes: int, dim: int,
                   linear_layer: bool, blocks: int) -> int:
    """Largest candidate count for which one pairwise step is estimated to beat a sharded one."""
    rows = math.ceil(val_samples / blocks)
    width = classes * (1 + dim) if linear_layer else classes
    pairwise_each, pairwise_fixed = classes + blocks, rows * classes
    if linear_layer and rows * (classes + dim) < width:  # pair by pair (see the kernel)
        pairwise_each, pairwise_fixed = rows * (classes + dim) + blocks, 0
    elif linear_layer:  # against the block's own gradient, assumed to fit in shared memory
        pairwise_each, pairwise_fixed = width + blocks, rows * width
    sharded_each = width / blocks
    sharded_fixed = rows * width + width + blocks + 2 * BARRIER_COST
    excess = pairwise_each - sharded_each
    if excess <= 0:
        return samples
    return max(0, min(samples, int((sharded_fixed - pairwise_fixed) // excess)))


def plan_greedy(samples: int, val_samples: int, classes: int, dim: int, linear_layer: bool,
                greedy: str, candidates_per_step: int, multiprocessors: int,
                method: str = "auto", blocks: int | None = None) -> GreedyPlan:
    """The plan for one round; `method` forces a scoring path (tests use it to cover both)."""
    if greedy not in ("naive", "stochastic"):
        raise ValueError(f"greedy must be 'naive' or 'stochastic' for the CUDA kernels, "
                         f"got {greedy!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if greedy == "stochastic" and candidates_per_step < 1:
        raise ValueError(f"candidates_per_step must be >= 1, got {candidates_per_step}")
    sample_size = samples if greedy == "naive" else min(candidates_per_step, samples)
    grid = grid_blocks(val_samples, multiprocessors, blocks)
    limits = {"pairwise": samples, "sharded": 0}
    limit = limits.get(method)
    if limit is None:
        limit = pairwise_limit(samples, val_samples, classes, dim, linear_layer, grid)
    return GreedyPlan(sample_size, limit, grid)
