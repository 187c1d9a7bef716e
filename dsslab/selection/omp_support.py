"""The ridge least-squares solve on an OMP support, kept up to date as atoms come and go.

On a support P with atoms a_j (rows of A_P) and target t, the unconstrained ridge optimum is
z = (K_PP + lam I)^-1 b_P with K_PP = A_P A_P^T and b_P = A_P t. Two ways to keep it cheap:
- GramSupport holds the inverse of K_PP + lam I and borders it by one row and column per new
  atom (O(|P|^2)), so it works from inner products alone: right for full last-layer gradients,
  whose vectors are long.
- FeatureSupport works in the F-dimensional space of the atom vectors, z = A_P (lam I +
  A_P^T A_P)^+ t (the same z), at O(|P| F^2 + F^3) a solve: right for bias gradients (F = C
  classes), where |P| grows far beyond F.
Both reject an atom whose Schur pivot |a|^2 + lam - k^T (K_PP + lam I)^-1 k (its squared
distance to the support's span when lam = 0) is below DEPENDENT_PIVOT of |a|^2 + lam.
"""

import numpy as np

DEPENDENT_PIVOT = 1e-12
ROW_BLOCK = 64  # rows per block of the in-place rank-one update: its scratch stays in cache
WEAK_RIDGE = 1e-3
SOLVERS = ("auto", "gram", "feature")


def choose_support(atoms, budget: int, lam: float, solver: str = "auto"):
    """GramSupport or FeatureSupport; "auto" takes FeatureSupport when F^3 < budget^2 (its
    solves are then cheaper than the Gram form's O(budget^2) ones)."""
    if solver == "feature" or (solver == "auto" and atoms.feature_dim ** 3 < budget ** 2):
        return FeatureSupport(atoms, budget, lam)
    return GramSupport(atoms, budget, lam)


class _Members:
    """The support's atom positions in order, as an int64 array (cheap to index with)."""

    def __init__(self, capacity: int):
        self._positions = np.zeros(capacity, dtype=np.int64)
        self._count = 0

    @property
    def atoms(self) -> np.ndarray:
        return self._positions[: self._count]

    def _append(self, atom: int) -> None:
        self._positions[self._count] = atom
        self._count += 1

    def _compress(self, kept: np.ndarray) -> None:
        remaining = self.atoms[kept]
        self._count = len(remaining)
        self._positions[: self._count] = remaining


class GramSupport(_Members):
    """Support with its regularised Gram matrix and that matrix's inverse, both bordered one
    atom at a time, and the ridge optimum updated along with them (O(|P|) once the bordering
    vector is known). When the ridge is weak (lam below WEAK_RIDGE of the mean |a|^2, so the
    conditioning is unbounded) each solve is refined once against the Gram matrix, which keeps
    ill-conditioned supports accurate to near machine precision."""

    def __init__(self, atoms, capacity: int, lam: float):
        super().__init__(capacity)
        self.source = atoms
        self.lam = lam
        self.gram = np.zeros((capacity, capacity))  # K_PP + lam I
        self.inverse = np.zeros((capacity, capacity))
        self.solution = np.zeros(0)  # the ridge optimum on the support; None when stale
        self._scratch = np.empty((ROW_BLOCK, capacity))

    def add(self, atom: int) -> bool:
        """Append `atom` unless it is (numerically) a combination of the support."""
        size = len(self.atoms)
        cross = self.source.gram(self.atoms, np.array([atom]))[:, 0]
        self_dot = float(self.source.gram(np.array([atom]), np.array([atom]))[0, 0]) + self.lam
        inverse = self.inverse[:size, :size]
        projected = inverse @ cross
        pivot = self_dot - float(cross @ projected)
        if pivot <= DEPENDENT_PIVOT * max(self_dot, np.finfo(float).tiny):
            return False
        current = self.solve()
        step = (self.source.target_dots[atom] - float(cross @ current)) / pivot
        self._border(projected, pivot, cross, self_dot)
        self._append(atom)
        self.solution = np.append(current - step * projected, step)
        if self._weak_ridge():
            self.solution = self._refine(self.solution)
        return True

    def _border(self, projected, pivot, cross, self_dot) -> None:
        """Grow the inverse (block formula with Schur complement `pivot`) and the Gram matrix."""
        size = len(projected)
        scaled = projected / pivot
        for start in range(0, size, ROW_BLOCK):
            stop = min(size, start + ROW_BLOCK)
            outer = self._scratch[: stop - start, :size]
            np.multiply(projected[start:stop, None], scaled[None, :], out=outer)
            self.inverse[start:stop, :size] += outer
        self.inverse[size, :size] = -scaled
        self.inverse[:size, size] = -scaled
        self.inverse[size, size] = 1.0 / pivot
        self.gram[size, :size] = cross
        self.gram[:size, size] = cross
        self.gram[size, size] = self_dot

    def keep(self, kept: np.ndarray) -> None:
        """Drop the support atoms where `kept` is False (a Schur downdate per atom)."""
        for position in np.flatnonzero(~kept)[::-1]:
            size = len(self.atoms)
            inverse = self.inverse[:size, :size]
            others = np.delete(np.arange(size), position)
            column = inverse[others, position]
            reduced = inverse[np.ix_(others, others)] - np.outer(column, column) / inverse[
                position, position]
            self.inverse[: size - 1, : size - 1] = reduced
            self.gram[: size - 1, : size - 1] = self.gram[np.ix_(others, others)]
            self._compress(np.arange(size) != position)
        self.solution = None

    def solve(self) -> np.ndarray:
        """The unconstrained ridge optimum on the support."""
        if self.solution is None:
            size = len(self.atoms)
            solution = self.inverse[:size, :size] @ self.source.target_dots[self.atoms]
            self.solution = self._refine(solution) if self._weak_ridge() else solution
        return self.solution

    def _weak_ridge(self) -> bool:
        size = len(self.atoms)
        diagonal = np.diagonal(self.gram[:size, :size]) - self.lam
        return size > 0 and self.lam < WEAK_RIDGE * float(diagonal.mean())

    def _refine(self, solution: np.ndarray) -> np.ndarray:
        """One step of iterative refinement: solution + inverse (b - (K + lam I) solution)."""
        size = len(self.atoms)
        residual = self.source.target_dots[self.atoms] - self.gram[:size, :size] @ solution
        return solution + self.inverse[:size, :size] @ residual


class FeatureSupport(_Members):
    """Support solved in the atoms' own F-dimensional space from an eigendecomposition."""

    def __init__(self, atoms, capacity: int, lam: float):
        super().__init__(capacity)
        self.source = atoms
        self.lam = lam
        self.target = atoms.target_vector()
        self.vectors = np.zeros((capacity, atoms.feature_dim))
        self._eigen = None  # cached _decomposition() of the current support

    def add(self, atom: int) -> bool:
        """Append `atom` unless it is (numerically) a combination of the support."""
        vector = self.source.vectors(np.array([atom]))[0]
        values, basis, inverse = self._decomposition()
        coordinates = basis.T @ vector
        # k^T (K_PP + lam I)^-1 k = sum_i s_i / (s_i + lam) (V^T a)_i^2 with A^T A = V S V^T.
        explained = float((values * inverse) @ coordinates ** 2)
        self_dot = float(vector @ vector) + self.lam
        if self_dot - explained <= DEPENDENT_PIVOT * max(self_dot, np.finfo(float).tiny):
            return False
        self.vectors[len(self.atoms)] = vector
        self._append(atom)
        self._eigen = None
        return True

    def keep(self, kept: np.ndarray) -> None:
        """Drop the support atoms where `kept` is False."""
        size = len(self.atoms)
        self.vectors[: int(kept.sum())] = self.vectors[:size][kept]
        self._compress(kept)
        self._eigen = None

    def solve(self) -> np.ndarray:
        """z = A (lam I + A^T A)^+ t, the minimum-norm solution when lam = 0."""
        _, basis, inverse = self._decomposition()
        return self.vectors[: len(self.atoms)] @ (basis @ (inverse * (basis.T @ self.target)))

    def _decomposition(self):
        """Eigenvalues s and vectors V of A^T A, and 1 / (s + lam) with numerical zeros at 0."""
        if self._eigen is None:
            support = self.vectors[: len(self.atoms)]
            values, basis = np.linalg.eigh(support.T @ support)
            shifted = np.clip(values, 0.0, None) + self.lam
            usable = shifted > 1e-12 * max(float(shifted.max()), np.finfo(float).tiny)
            inverse = np.where(usable, 1.0 / np.where(usable, shifted, 1.0), 0.0)
            values = np.where(usable, np.clip(values, 0.0, None), 0.0)
            self._eigen = (values, basis, inverse)
        return self._eigen
