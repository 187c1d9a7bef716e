"""Facility location by lazy greedy: pick the elements that best represent all the others.

The objective is F(S) = sum_i max_{j in S} sim(i, j) with sim = max_distance - distance, a
monotone submodular function, so the marginal gain of an element can only shrink as S grows.
Lazy greedy keeps every element's last computed gain as an upper bound in a heap and recomputes
only the top one, which gives the same picks as plain greedy at a small fraction of the cost.
"""

import heapq

import numpy as np
import torch


def gradient_distances(gram: torch.Tensor, squared_norms: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ||g_i - g_j|| from the Gram matrix g_i . g_j and the norms |g_i|^2.

    Works in place: `gram` is overwritten and returned (n x n is the largest tensor here).
    """
    distances = gram.mul_(-2.0).add_(squared_norms[:, None]).add_(squared_norms[None, :])
    distances.clamp_min_(0.0).sqrt_()
    # Rounding in the Gram form leaves tiny non-zero self distances; an element is its own
    # best representative, so pin them to zero.
    distances.fill_diagonal_(0.0)
    return distances


def similarities(distances: torch.Tensor) -> torch.Tensor:
    """sim = max_distance - distance, in place: non-negative, max_distance on the diagonal."""
    largest = distances.max()
    return distances.neg_().add_(largest)


def lazy_greedy(similarity: np.ndarray, budget: int) -> list[int]:
    """Positions of `budget` elements that greedily maximise F(S), in pick order.

    `similarity` must be symmetric and non-negative. Ties between equal gains go to the lowest
    position, as in plain greedy.
    """
    coverage = np.zeros(similarity.shape[0], dtype=similarity.dtype)
    initial_gains = similarity.sum(axis=0)  # F({j}) - F({}) with nothing covered yet
    # Heap entries: (-gain bound, position, number of picks when the bound was computed).
    heap = [(-float(gain), position, 0) for position, gain in enumerate(initial_gains)]
    heapq.heapify(heap)
    picks: list[int] = []
    while len(picks) < budget:
        _, position, computed_at = heapq.heappop(heap)
        if computed_at == len(picks):
            picks.append(position)
            np.maximum(coverage, similarity[position], out=coverage)
            continue
        gain = np.maximum(similarity[position] - coverage, 0.0).sum()
        heapq.heappush(heap, (-float(gain), position, len(picks)))
    return picks


def cluster_sizes(similarity: np.ndarray, picks: list[int]) -> np.ndarray:
    """How many elements each pick represents: itself, plus every element that is not a pick
    and is most similar to it (ties: the earlier pick).

    The sizes sum to the number of elements and are all >= 1, even for a pick that duplicates
    an earlier one (a zero weight could leave a training batch with no weight at all).
    """
    nearest = np.argmax(similarity[:, picks], axis=1)
    nearest[picks] = np.arange(len(picks))
    return np.bincount(nearest, minlength=len(picks))


def facility_location(similarity: torch.Tensor, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly `budget` positions (int64, pick order) and their cluster sizes (float32).

    `similarity` is an n x n symmetric, non-negative matrix; the sizes sum to n.
    """
    count = similarity.shape[0]
    if similarity.ndim != 2 or similarity.shape[1] != count:
        raise ValueError(f"similarity must be a square matrix, got shape "
                         f"{tuple(similarity.shape)}")
    if not 1 <= budget <= count:
        raise ValueError(f"budget must be in [1, {count}] (the number of elements), got {budget}")
    matrix = similarity.detach().cpu().numpy()
    picks = lazy_greedy(matrix, budget)
    sizes = cluster_sizes(matrix, picks)
    return torch.tensor(picks, dtype=torch.int64), torch.from_numpy(sizes).to(torch.float32)
