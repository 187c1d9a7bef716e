"""Orthogonal matching pursuit with non-negative weights and a ridge penalty.

Given atoms g_1..g_n and a target t, find a support S and weights w >= 0 that make
||t - sum_{j in S} w_j g_j||^2 + lam ||w||^2 small. The atoms are reached through an atom set
(see ExplicitAtoms for the interface), so per-sample gradients can stay in factor form.

Each step picks the unpicked atom with the largest positive correlation g_i . (t - A w), then
restores the non-negative ridge optimum on the support with Lawson-Hanson steps started from
the previous weights (warm start: usually a single solve). An atom whose weight drops to zero
leaves the support for good, and an atom that is a combination of the support (lam = 0) is
never added, so the loop ends after at most n steps.
"""

from dataclasses import dataclass

import numpy as np
import torch

from dsslab.selection.omp_support import SOLVERS, choose_support


@dataclass(frozen=True)
class MatchingResult:
    """What the solver chose before any budget fill."""

    picks: np.ndarray  # positions of atoms with positive weight, in pick order
    weights: np.ndarray  # their weights, all > 0
    correlations: np.ndarray  # every atom's correlation with the final residual
    stop_reason: str  # budget | tolerance | no_positive_correlation | exhausted
    residual_norm: float  # ||t - sum w_j g_j|| / ||t|| at the end (0 when t = 0)


class ExplicitAtoms:
    """Atoms given as the rows of an n x F matrix; the interface every atom set offers.

    size, feature_dim, target_dots (g_i . t), target_norm_sq (|t|^2), target_vector(),
    correlations(atoms, weights), gram(rows, columns) and vectors(atoms).
    """

    def __init__(self, matrix: np.ndarray, target: np.ndarray):
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.target = np.asarray(target, dtype=np.float64)
        self.size, self.feature_dim = self.matrix.shape
        self.target_dots = self.matrix @ self.target
        self.target_norm_sq = float(self.target @ self.target)

    def target_vector(self) -> np.ndarray:
        return self.target

    def correlations(self, atoms: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """g_i . (t - sum_j w_j g_j) for every atom i; `atoms` are int64 positions."""
        return self.matrix @ (self.target - self.matrix[atoms].T @ weights)

    def gram(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """g_i . g_j for i in rows, j in columns."""
        return self.matrix[rows] @ self.matrix[columns].T

    def vectors(self, atoms: np.ndarray) -> np.ndarray:
        """The atoms as explicit F-dimensional rows."""
        return self.matrix[atoms]


def nonnegative_omp(
    atoms, budget: int, lam: float = 0.5, eps: float = 1e-6, solver: str = "auto"
) -> MatchingResult:
    """Run matching pursuit until `budget` atoms have positive weight or it stops early.

    solver: how the support's ridge problem is solved, "gram" | "feature" | "auto" (see
    omp_support.py); the picks and weights agree to rounding.
    Early stops: the relative residual ||t - A w|| / ||t|| is <= eps (tolerance), no unpicked
    atom has a positive correlation (no_positive_correlation), or every atom was tried
    (exhausted). The result then holds fewer than `budget` picks; see fill_budget.
    """
    _check_arguments(atoms.size, budget, lam, eps, solver)
    support = choose_support(atoms, budget, lam, solver)
    weights = np.zeros(0)
    unpicked = np.ones(atoms.size, dtype=bool)
    stop_reason = "budget"
    while len(support.atoms) < budget:
        if residual_norm_sq(atoms, support.atoms, weights, lam) <= eps**2 * atoms.target_norm_sq:
            stop_reason = "tolerance"
            break
        correlations = np.where(unpicked, atoms.correlations(support.atoms, weights), -np.inf)
        atom = int(np.argmax(correlations))  # ties: lowest position
        if not unpicked[atom] or correlations[atom] <= 0.0:
            stop_reason = "no_positive_correlation" if unpicked.any() else "exhausted"
            break
        unpicked[atom] = False
        if support.add(atom):
            weights = settle(support, np.append(weights, 0.0))
    return _result(atoms, support.atoms, weights, lam, stop_reason)


def settle(support, weights: np.ndarray) -> np.ndarray:
    """Lawson-Hanson inner loop from feasible `weights`: move toward the unconstrained optimum
    while it has non-positive entries, dropping the atoms whose weight reaches zero."""
    while True:
        optimum = support.solve()
        blocked = optimum <= 0.0
        if not blocked.any():
            return optimum
        gaps = weights[blocked] - optimum[blocked]
        steps = np.where(gaps > 0.0, weights[blocked] / np.where(gaps > 0.0, gaps, 1.0), 0.0)
        moved = weights + steps.min() * (optimum - weights)
        moved[np.flatnonzero(blocked)[np.argmin(steps)]] = 0.0
        kept = moved > 0.0
        support.keep(kept)
        weights = moved[kept]


def residual_norm_sq(atoms, support: np.ndarray, weights: np.ndarray, lam: float) -> float:
    """||t - A w||^2 = |t|^2 - w.b - lam |w|^2, valid at the ridge optimum on the support."""
    value = atoms.target_norm_sq - weights @ atoms.target_dots[support] - lam * weights @ weights
    return max(float(value), 0.0)


def _result(atoms, support, weights, lam, stop_reason) -> MatchingResult:
    scale = np.sqrt(atoms.target_norm_sq) if atoms.target_norm_sq > 0 else 1.0
    return MatchingResult(
        picks=support.copy(),
        weights=weights,
        correlations=atoms.correlations(support, weights),
        stop_reason=stop_reason,
        residual_norm=float(np.sqrt(residual_norm_sq(atoms, support, weights, lam)) / scale),
    )


def _check_arguments(count: int, budget: int, lam: float, eps: float, solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if not 1 <= budget <= count:
        raise ValueError(f"budget must be in [1, {count}] (the number of atoms), got {budget}")
    if not (np.isfinite(lam) and lam >= 0.0):
        raise ValueError(f"lam (ridge penalty) must be finite and >= 0, got {lam}")
    if not (np.isfinite(eps) and eps >= 0.0):
        raise ValueError(f"eps (relative residual tolerance) must be finite and >= 0, got {eps}")


def fill_budget(
    result: MatchingResult, budget: int, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Top up an early-stopped result to exactly `budget` positions.

    Rule: the atoms outside the solver's picks with a positive final correlation come first, in
    decreasing correlation (ties: lowest position); the rest of the budget is drawn uniformly
    without replacement from the remaining atoms with `generator`. Every filled atom gets the
    mean of the solver's weights, or 1 when the solver picked nothing.
    Returns (positions, weights, number filled).
    """
    missing = budget - len(result.picks)
    if missing <= 0:
        return result.picks, result.weights, 0
    outside = np.setdiff1d(np.arange(len(result.correlations)), result.picks)
    ranked = outside[np.argsort(-result.correlations[outside], kind="stable")]
    positive = ranked[result.correlations[ranked] > 0.0][:missing]
    rest = np.setdiff1d(outside, positive)
    draw = torch.randperm(len(rest), generator=generator)[: missing - len(positive)].numpy()
    filled = np.concatenate([positive, rest[draw]]).astype(np.int64)
    fill_weight = float(result.weights.mean()) if len(result.weights) else 1.0
    positions = np.concatenate([result.picks, filled])
    weights = np.concatenate([result.weights, np.full(len(filled), fill_weight)])
    return positions, weights, len(filled)
