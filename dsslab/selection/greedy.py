"""Greedy maximisers for GLISTER: naive, stochastic and r-greedy, each making exactly k picks.

They work on any objective with `size`, `gains(candidates | None)` and `add(picks)` (see
`glister_objectives.py`); candidates and gains are NumPy arrays, because these loops make
thousands of small calls. Ties go to the lowest element index.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

VARIANTS = ("naive", "stochastic", "rgreedy")
DRAW_BLOCK_STEPS = 4096  # stochastic-greedy steps whose candidate draws are made at once


@dataclass(frozen=True)
class GreedyResult:
    """Picked element indices in pick order and the gain each had when it was picked."""

    picks: torch.Tensor  # k, int64
    gains: torch.Tensor  # k


def candidates_per_step(size: int, budget: int, epsilon: float) -> int:
    """Stochastic-greedy sample size floor((N / k) ln(1 / epsilon)), between 1 and N."""
    return max(1, min(size, math.floor(size / budget * math.log(1.0 / epsilon))))


def round_quotas(budget: int, rounds: int) -> list[int]:
    """Picks per r-greedy round: min(rounds, k) rounds whose sizes differ by at most one."""
    count = min(rounds, budget)
    return [budget // count + (1 if round_ < budget % count else 0) for round_ in range(count)]


def naive(objective, budget: int) -> GreedyResult:
    """Score every remaining element at every step and take the best (first of equal gains)."""
    penalty = np.zeros(objective.size)
    picks, pick_gains = [], []
    for _ in range(budget):
        gains = objective.gains(None)
        best = int(np.argmax(gains + penalty))
        picks.append(best)
        pick_gains.append(float(gains[best]))
        penalty[best] = -np.inf
        objective.add(best)
    return _result(picks, pick_gains)


def rgreedy(objective, budget: int, rounds: int) -> GreedyResult:
    """r rounds; each takes the top of the remaining elements by gain, then moves the logits.

    Within a round the elements are ranked by gain, equal gains by index (a stable sort).
    """
    penalty = np.zeros(objective.size)
    picks, pick_gains = [], []
    for quota in round_quotas(budget, rounds):
        gains = objective.gains(None)
        chosen = np.argsort(-(gains + penalty), kind="stable")[:quota]
        picks.extend(chosen.tolist())
        pick_gains.extend(gains[chosen].tolist())
        penalty[chosen] = -np.inf
        objective.add(chosen)
    return _result(picks, pick_gains)


def stochastic(
    objective,
    budget: int,
    candidates: int,
    generator: torch.Generator,
    record: list | None = None,
) -> GreedyResult:
    """Each step scores `candidates` remaining elements drawn uniformly without replacement.

    The draw uses only `generator`, so a seeded generator reproduces the picks. record, when
    given, receives (candidate indices, their gains) for every step.
    """
    pool = RemainingPool(objective.size, candidates, generator)
    picks, pick_gains = [], []
    for _ in range(budget):
        positions = pool.draw()
        drawn = pool.elements[positions]
        gains = objective.gains(drawn)
        best = best_position(gains, drawn)
        if record is not None:
            record.append((drawn.copy(), gains.copy()))
        pick = int(drawn[best])
        picks.append(pick)
        pick_gains.append(float(gains[best]))
        objective.add(pick)
        pool.remove(int(positions[best]))
    return _result(picks, pick_gains)


def best_position(gains: np.ndarray, elements: np.ndarray) -> int:
    """Position of the largest gain; among equal gains, the one with the lowest element index."""
    best = int(gains.argmax())
    tied = gains == gains[best]
    if np.count_nonzero(tied) == 1:
        return best
    if not np.isfinite(gains[best]):
        raise FloatingPointError("GLISTER gains are not finite; check features for NaN or inf")
    candidates = np.flatnonzero(tied)
    return int(candidates[np.argmin(elements[candidates])])


class RemainingPool:
    """Elements not picked yet: uniform draws without replacement and O(1) removal.

    Each step draws once and then removes one element, so the pool size at every future step
    is known and the draws of many steps are made at once: per step, `candidates` positions
    with replacement, kept when all are distinct (a uniform subset given that event) and
    otherwise replaced by a partial Fisher-Yates shuffle (also uniform), so every draw is a
    uniform subset of the remaining elements.
    """

    def __init__(self, size: int, candidates: int, generator: torch.Generator):
        self.elements = np.arange(size, dtype=np.int64)
        self.count = size
        self.candidates = candidates
        self.generator = generator
        self._positions = np.empty((0, candidates), dtype=np.int64)
        self._distinct: list[bool] = []
        self._row = 0

    def draw(self) -> np.ndarray:
        """Positions (into `elements`) of this step's candidates: all remaining when few."""
        if self.candidates >= self.count:
            return np.arange(self.count)
        if self._row == len(self._positions):
            self._draw_block()
        row = self._row
        self._row += 1
        if self._distinct[row]:
            return self._positions[row]
        return self._shuffle_front()

    def remove(self, position: int) -> None:
        """Drop the element at `position`; the last remaining one takes its place."""
        self.count -= 1
        self.elements[position] = self.elements[self.count]

    def _draw_block(self) -> None:
        steps = min(DRAW_BLOCK_STEPS, self.count - self.candidates)
        counts = self.count - np.arange(steps)[:, None]
        uniforms = torch.rand(steps, self.candidates, generator=self.generator,
                              dtype=torch.float64).numpy()
        positions = (uniforms * counts).astype(np.int64)
        np.minimum(positions, counts - 1, out=positions)
        ordered = np.sort(positions, axis=1)
        self._distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=1).tolist()
        self._positions, self._row = positions, 0

    def _shuffle_front(self) -> np.ndarray:
        uniforms = torch.rand(self.candidates, generator=self.generator, dtype=torch.float64)
        for slot, uniform in enumerate(uniforms.tolist()):
            span = self.count - slot
            other = slot + min(int(uniform * span), span - 1)
            self.elements[[slot, other]] = self.elements[[other, slot]]
        return np.arange(self.candidates)


def _result(picks: list[int], pick_gains: list[float]) -> GreedyResult:
    return GreedyResult(
        torch.tensor(picks, dtype=torch.int64), torch.tensor(pick_gains, dtype=torch.float64)
    )
