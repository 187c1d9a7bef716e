"""The stochastic greedy kernel's candidate draw, replayed exactly in Python.

Every block of the kernel derives the same draw from (seed, step) with a counter-based
generator, so no block waits for another to publish it. This module computes the same numbers
on the CPU: tests use it to check the kernel's draw, and `replay_candidates` recovers which
candidates each step of a finished round scored, so its picks can be checked against the
PyTorch gradient algebra.

Draw at step t with `remaining` samples left and sample size m < remaining (Floyd's algorithm
over positions of the remaining pool): for j in 0..m-1, top = remaining - m + j, take
u = bounded(mix64(mix64(seed) ^ (t << 32 | j)), top + 1); if u was taken already, take top.
The pool starts as 0..N-1; a pick at position p is replaced by the pool's last remaining entry.
"""

MASK = (1 << 64) - 1


def mix64(value: int) -> int:
    """SplitMix64's output function for state `value` (a bijection of 64-bit integers)."""
    value = (value + 0x9E3779B97F4A7C15) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


def bounded(random: int, bound: int) -> int:
    """An integer in [0, bound) from the high 32 bits of a 64-bit random word."""
    return ((random >> 32) * bound) >> 32


def draw_positions(seed: int, step: int, remaining: int, sample_size: int) -> list[int]:
    """Positions in the remaining pool the kernel scores at `step`, ascending."""
    if sample_size >= remaining:
        return list(range(remaining))
    key = mix64(seed & MASK)
    taken: set[int] = set()
    for draw in range(sample_size):
        top = remaining - sample_size + draw
        chosen = bounded(mix64(key ^ ((step << 32) | draw)), top + 1)
        taken.add(top if chosen in taken else chosen)
    return sorted(taken)


class KernelPool:
    """The kernel's pool of remaining samples: swap-remove keeps them in the first slots."""

    def __init__(self, samples: int):
        self.pool = list(range(samples))
        self.position = list(range(samples))
        self.remaining = samples

    def samples_at(self, positions: list[int]) -> list[int]:
        return [self.pool[p] for p in positions]

    def remove(self, sample: int) -> None:
        at, last = self.position[sample], self.pool[self.remaining - 1]
        self.pool[at] = last
        self.position[last] = at
        self.remaining -= 1


def replay_candidates(seed: int, picks: list[int], samples: int,
                      sample_size: int) -> list[list[int]]:
    """For each pick of a kernel round, the sample indices that step scored (ascending)."""
    pool = KernelPool(samples)
    steps = []
    for step, pick in enumerate(picks):
        positions = draw_positions(seed, step, pool.remaining, sample_size)
        steps.append(sorted(pool.samples_at(positions)))
        pool.remove(pick)
    return steps
