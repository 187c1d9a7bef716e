"""GLISTER's per-step scoring: gains against the validation gradient and the logit update.

An objective scores candidate elements (samples or mini-batches) by the dot product of their
gradient with the mean validation gradient at the current validation logits Z, and `add` moves
Z by one SGD step of size eta on the summed gradient of the picked elements. Train residuals
and all embeddings stay fixed. The greedy loops in `greedy.py` only see this interface:

    objective.size                      number of elements
    objective.gains(candidates | None)  a new array of gains of the given elements (None: all)
    objective.add(pick | picks)         move Z by the SGD step of the picks

The step loops run thousands of small operations, so the state lives in NumPy arrays on the
CPU (NumPy's per-call overhead is a fraction of torch's); large products go through torch.

Three ways to get a last-layer gain, chosen by estimated cost (see `choose_route`):
- "weight": recompute the validation gradient (g_b, G) with G = (P^T E_val - class sums) / M
  (C x D), then r_i . (G e_i + g_b) per candidate. Cheap when many candidates are scored per
  step (naive, r-greedy).
- "gram": precompute S = 1 + E_train E_val^T once (N x M); then
  gain_i = (1/M) sum_v (r_i . q_v)(1 + e_i . e_v) = r_i . (S_i P - A_i) / M, with P the
  validation probabilities (M x C) and A_i the sums of S_iv over the validation samples of each
  class; a pick j moves Z_v by -eta r_j S_jv. A step costs O(s M C): cheap for stochastic
  greedy, used when S fits the memory cap.
- "rows": like "gram" but computes the candidates' rows of S on the fly.
"""

import math

import numpy as np
import torch

from dsslab.selection import gradients

GRAM_MEMORY_CAP_BYTES = 1 << 30  # the Gram route is used only when T fits in this
SMALL_PRODUCT = 1024  # output entries below which a product goes through NumPy
# Largest exponent spread allowed without re-centring: exp(-spread) stays normal and
# M / exp(-spread) stays finite (float64 exp underflows below -708, float32 below -87).
SAFE_EXPONENT = {np.float64: 600.0, np.float32: 60.0}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def _matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ right: NumPy for small outputs (torch's per-call cost dominates there; measured
    3x slower at 15 x 10), torch (MKL) for large ones (faster than NumPy's OpenBLAS)."""
    if left.shape[0] * right.shape[1] < SMALL_PRODUCT:
        return left @ right
    return (torch.from_numpy(left) @ torch.from_numpy(right)).numpy()


def _label_mean(val_labels: torch.Tensor, classes: int) -> np.ndarray:
    counts = torch.bincount(val_labels, minlength=classes).to(torch.float64)
    return _numpy(counts / len(val_labels))


class ValidationLogits:
    """Validation logits Z kept C x M, so reductions over classes run on contiguous rows.

    Softmax is invariant to adding a constant to a column, so Z is re-centred (each column's
    maximum subtracted) only when the logit updates since the last centring could have moved
    an entry by more than SAFE_EXPONENT; in between, exp(Z) is taken directly. `drift` is that
    bound, accumulated from each update's largest absolute entry.
    """

    def __init__(self, val_logits, val_labels, val_embeddings, dtype, weight_gradient: bool):
        self.count, self.classes = val_logits.shape
        self.logits_t = torch.empty(self.classes, self.count, dtype=dtype)
        self.logits_t.copy_(val_logits.T)
        numpy_dtype = self.logits_t.numpy().dtype
        self.safe_drift = SAFE_EXPONENT[numpy_dtype.type]
        self.label_mean = _label_mean(val_labels, self.classes).astype(numpy_dtype)
        self.embeddings = val_embeddings.to(dtype).contiguous()
        onehot = torch.nn.functional.one_hot(val_labels, self.classes).to(dtype)
        self.class_sums = onehot.T @ self.embeddings  # C x D: sum of e_v per class
        self.class_counts = onehot.sum(dim=0)
        self.largest_norm = float(torch.linalg.vector_norm(self.embeddings, dim=1).max())
        self.wants_weight_gradient = weight_gradient
        self.exp_logits_t = np.empty_like(self.logits_t.numpy())
        self._probabilities_buffer = np.empty_like(self.exp_logits_t)
        self.drift = math.inf
        self._fresh = False

    def refresh(self) -> None:
        """Recompute, after Z moved: exp_logits_t = exp(Z) (C x M), column_scale = 1 / column
        sums (so softmax(Z) = exp_logits_t * column_scale) and, if wanted, the validation
        gradient: bias_gradient (C) and weight_gradient (C x D)."""
        if self._fresh:
            return
        logits = self.logits_t.numpy()
        if self.drift > self.safe_drift:
            logits -= logits.max(axis=0)
            self.drift = 0.0
        np.exp(logits, out=self.exp_logits_t)
        self.column_scale = np.reciprocal(self.exp_logits_t.sum(axis=0))
        self._probabilities_t = None
        if self.wants_weight_gradient:
            mean = self.exp_logits_t @ self.column_scale
            self.bias_gradient = mean * (1.0 / self.count) - self.label_mean
            probabilities = torch.from_numpy(self.probabilities_t())
            weighted = probabilities @ self.embeddings - self.class_sums
            self.weight_gradient = weighted.div_(self.count)
        self._fresh = True

    def probabilities_t(self) -> np.ndarray:
        """softmax(Z) as C x M, formed on first use after a refresh."""
        if self._probabilities_t is None:
            self._probabilities_t = np.multiply(self.exp_logits_t, self.column_scale,
                                                out=self._probabilities_buffer)
        return self._probabilities_t

    def lower(self, change_t: torch.Tensor) -> None:
        """Z <- Z - change (change given C x M)."""
        self.logits_t -= change_t
        self.drift += float(change_t.abs().max())
        self._fresh = False

    def lower_outer(self, residual, shifted_row, eta: float, largest: float) -> None:
        """Z_v <- Z_v - eta r (1 + T_v) for one pick (shifted_row = 1 + T): a rank-one update.

        largest bounds |r_c (1 + T_v)| over all entries (it feeds the drift bound).
        """
        self.logits_t.addr_(residual, shifted_row, alpha=-eta)
        self.drift += eta * largest
        self._fresh = False


class BiasObjective:
    """Elements with bias-only gradients (samples, or mini-batch means of their residuals).

    Every SGD step shifts all validation logits by the same vector, Z = z - shift, so the
    validation gradient is mean_v softmax(z_v - shift) - mean_v y_v. With X = exp(z - rowmax)
    precomputed (C x M) this is a * (X (1 / (a X))) / M with a = exp(-shift - reference): two
    matrix-vector products per step instead of an M x C softmax. `reference` is moved only when
    the shifts since the last move could push an exponent out of the floating-point range
    (tracked by `drift`, a bound built from each pick's largest step); when even a fresh
    reference cannot keep the exponents in range, the direct softmax is taken.
    """

    def __init__(self, element_residuals, val_logits, val_labels, eta: float):
        self.residuals = _numpy(element_residuals)
        self.residuals_t = np.ascontiguousarray(self.residuals.T)  # fast gains of all elements
        self.size = len(self.residuals)
        self.steps = self.residuals * eta  # the change of the exponents -shift, per pick
        self.step_peaks = np.abs(self.steps).max(axis=1).tolist()
        dtype = self.residuals.dtype
        val_logits = _numpy(val_logits.to(element_residuals.dtype))
        self.val_logits_t = np.ascontiguousarray(val_logits.T)
        centered = val_logits - val_logits.max(axis=1, keepdims=True)
        self.window = SAFE_EXPONENT[dtype.type] + float(centered.min())
        self.exp_logits_t = np.ascontiguousarray(np.exp(centered).T)
        self.exp_logits_mean_t = self.exp_logits_t / len(centered)
        self.label_mean = _label_mean(val_labels, val_logits.shape[1]).astype(dtype)
        self.exponents = np.zeros(val_logits.shape[1], dtype=dtype)
        self.reference, self.drift = 0.0, 0.0
        self._gradient = None

    def gradient(self) -> np.ndarray:
        """Mean validation bias gradient at the current shift."""
        if self._gradient is None:
            self._gradient = self._mean_probabilities() - self.label_mean
        return self._gradient

    def _mean_probabilities(self) -> np.ndarray:
        if self.drift > self.window:
            self.reference = float(self.exponents.max())
            self.drift = self.reference - float(self.exponents.min())
            if self.drift > self.window:
                return self._direct_mean_probabilities()
        scale = np.exp(self.exponents - self.reference)
        reciprocals = np.reciprocal(scale @ self.exp_logits_t)
        return scale * (self.exp_logits_mean_t @ reciprocals)

    def _direct_mean_probabilities(self) -> np.ndarray:
        shifted = self.val_logits_t + self.exponents[:, None]
        shifted -= shifted.max(axis=0)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=0)
        return shifted.mean(axis=1)

    def gains(self, candidates: np.ndarray | None = None) -> np.ndarray:
        if candidates is None:
            return self.gradient() @ self.residuals_t
        return self.residuals[candidates] @ self.gradient()

    def add(self, picks) -> None:
        if isinstance(picks, int):
            self.exponents -= self.steps[picks]
            self.drift += self.step_peaks[picks]
        else:
            self.exponents -= self.steps[picks].sum(axis=0)
            self.drift += float(np.abs(self.steps[picks]).max(axis=1).sum()) if len(picks) else 0
        self._gradient = None


class LastLayerObjective:
    """Samples with full last-layer gradients (r_i, r_i e_i^T), scored by one of three routes."""

    def __init__(self, residuals, embeddings, validation: ValidationLogits, eta, route: str):
        self.residuals_torch = residuals.contiguous()
        self.residuals = self.residuals_torch.numpy()
        self.embeddings = embeddings.to(residuals).contiguous()
        self.embeddings_numpy = self.embeddings.numpy()
        self.size = len(residuals)
        # |r_c (1 + e . e_v)| <= max_c |r_c| (1 + |e| max_v |e_v|): bounds each pick's logit move
        self.residual_peaks = residuals.abs().amax(dim=1).tolist()
        self.embedding_norms = torch.linalg.vector_norm(self.embeddings, dim=1).tolist()
        self.validation = validation
        self.eta = eta
        self.route = route
        self.gram = None
        if route == "gram":
            self.gram = gradients.embedding_gram(self.embeddings, validation.embeddings, 1.0)
        if route != "weight":  # A_i: sum of (1 + T_iv) over the validation samples of a class
            class_gram = self.embeddings @ validation.class_sums.T + validation.class_counts
            self.class_gram = _numpy(class_gram)

    def _gram_rows(self, candidates: np.ndarray | None) -> np.ndarray:
        """Rows of 1 + T, T = E_train E_val^T, for the candidates (None: all), as an array."""
        if self.gram is not None:
            gram = self.gram.numpy()
            return gram if candidates is None else gram.take(candidates, axis=0)
        embeddings = self.embeddings_numpy
        if candidates is not None:
            embeddings = embeddings.take(candidates, axis=0)
        rows = embeddings @ self.validation.embeddings.numpy().T
        rows += 1.0
        return rows

    def gains(self, candidates: np.ndarray | None = None) -> np.ndarray:
        validation = self.validation
        validation.refresh()
        rows = self.residuals if candidates is None else self.residuals[candidates]
        if self.route != "weight":  # (1 + T_i) Q^T / M: bias and weight terms at once
            gram_rows = self._gram_rows(candidates)
            if len(gram_rows) > validation.classes:  # scale the smaller factor by 1 / sums
                mixed = _matmul(gram_rows, validation.probabilities_t().T)
            else:
                mixed = _matmul(gram_rows * validation.column_scale, validation.exp_logits_t.T)
            mixed -= self.class_gram if candidates is None else self.class_gram[candidates]
            mixed *= 1.0 / validation.count
        else:
            embeddings = self.embeddings_numpy
            if candidates is not None:
                embeddings = embeddings.take(candidates, axis=0)
            mixed = _matmul(embeddings, validation.weight_gradient.numpy().T)
            mixed += validation.bias_gradient
        return np.einsum("ij,ij->i", mixed, rows)

    def add(self, picks, weights: torch.Tensor | None = None) -> None:
        if isinstance(picks, int) and weights is None:
            if self.gram is not None:
                row = self.gram[picks]
            else:
                row = self.validation.embeddings @ self.embeddings[picks] + 1.0
            largest = self.residual_peaks[picks] * (1.0 + self.embedding_norms[picks]
                                                    * self.validation.largest_norm)
            self.validation.lower_outer(self.residuals_torch[picks], row, self.eta, largest)
            return
        picks = np.asarray(picks, dtype=np.int64)
        rows = self.residuals_torch[torch.from_numpy(picks)]
        if weights is not None:
            rows = rows * weights[:, None]
        change_t = rows.T @ torch.from_numpy(self._gram_rows(picks))
        self.validation.lower(change_t.mul_(self.eta))


class BatchObjective:
    """Fixed mini-batches (consecutive blocks of samples) scored by their mean gradient.

    A batch's gain is the mean of its members' gains and its SGD step is the mean of theirs
    (both linear in the gradient), so no B x C x D batch-gradient tensor is needed.
    """

    def __init__(self, residuals, embeddings, validation, eta, batch_size: int):
        self.samples = LastLayerObjective(residuals, embeddings, validation, eta, "weight")
        self.batch_size = batch_size
        self.sample_count = len(residuals)
        self.size = -(-self.sample_count // batch_size)
        self.batch_sizes = np.full(self.size, batch_size, dtype=np.int64)
        self.batch_sizes[-1] = self.sample_count - batch_size * (self.size - 1)

    def members(self, batches: np.ndarray) -> np.ndarray:
        """Sample indices of the given batches, batch by batch."""
        samples = (batches[:, None] * self.batch_size + np.arange(self.batch_size)).ravel()
        return samples[samples < self.sample_count]

    def gains(self, candidates: np.ndarray | None = None) -> np.ndarray:
        batches = np.arange(self.size) if candidates is None else candidates
        sizes = self.batch_sizes[batches]
        sample_gains = self.samples.gains(self.members(batches))
        owners = np.repeat(np.arange(len(batches)), sizes)
        return np.bincount(owners, sample_gains, minlength=len(batches)) / sizes

    def add(self, picks) -> None:
        batches = np.atleast_1d(np.asarray(picks, dtype=np.int64))
        samples = self.members(batches)
        weights = 1.0 / self.batch_sizes[samples // self.batch_size]
        self.samples.add(samples, torch.from_numpy(weights).to(self.samples.residuals_torch))


def choose_route(
    samples: int,
    val_samples: int,
    classes: int,
    dimensions: int,
    steps: int,
    candidates_per_step: int,
    bytes_per_entry: int,
) -> str:
    """Pick the cheapest last-layer route by multiply-add count, "gram" only under the cap.

    Per step, "weight" costs M C D (validation weight gradient) + s C D (candidates) + M D (the
    pick's Gram row); "rows" costs (s + 1) M D + s M C; "gram" costs s M C + M C after N M D once.
    """
    weight = steps * (val_samples * classes * dimensions + candidates_per_step * classes
                      * dimensions + val_samples * dimensions)
    rows = steps * ((candidates_per_step + 1) * val_samples * dimensions
                    + candidates_per_step * val_samples * classes)
    gram = (samples * val_samples * dimensions
            + steps * (candidates_per_step + 1) * val_samples * classes)
    costs = {"weight": weight, "rows": rows}
    if samples * val_samples * bytes_per_entry <= GRAM_MEMORY_CAP_BYTES:
        costs["gram"] = gram
    return min(costs, key=costs.get)
