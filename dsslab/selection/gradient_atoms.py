"""Per-sample last-layer gradients as matching-pursuit atoms, kept as (residual, embedding).

Implements the atom-set interface of omp.ExplicitAtoms without ever building the n x C*D
gradient matrix: correlations with the residual t - sum_j w_j g_j come from `gains` against the
residual gradient (target minus a weighted `group_sums` over the support), inner products from
`gradient_dots`. Explicit vectors are built only for support atoms, and only when the solver
works in feature space (bias gradients, F = C). Correlations, which only rank candidates, are
scored in float32 (the n x D x C product is the cost of a step); everything the weights are
solved from stays float64.
"""

import numpy as np
import torch

from dsslab.selection.gradients import gains, gradient_dots, group_sums


class SampleAtoms:
    """The gradients of one set of samples, matched against a target gradient (bias, weight)."""

    def __init__(self, residuals, embeddings, linear_layer: bool, target_bias, target_weight):
        self.residuals = residuals
        self.embeddings = embeddings
        self.linear_layer = linear_layer
        self.target_bias = target_bias
        self.target_weight = target_weight if linear_layer else None
        classes, dims = residuals.shape[1], embeddings.shape[1]
        self.size = len(residuals)
        self.feature_dim = classes * (1 + dims) if linear_layer else classes
        self.target_dots = gains(residuals, embeddings, target_bias, self.target_weight).numpy()
        self.target_norm_sq = float(self.target_vector() @ self.target_vector())
        self.scoring = (residuals.float(), embeddings.float())

    def target_vector(self) -> np.ndarray:
        if self.target_weight is None:
            return self.target_bias.numpy()
        return torch.cat([self.target_bias, self.target_weight.flatten()]).numpy()

    def correlations(self, atoms: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """g_i . (t - sum_j w_j g_j) for every sample i; `atoms` are int64 positions."""
        residual_bias, residual_weight = self.target_bias, self.target_weight
        if len(atoms):
            index = torch.from_numpy(atoms)
            group = torch.zeros(len(atoms), dtype=torch.int64)
            embeddings = self.embeddings[index] if self.linear_layer else None
            bias_sum, weight_sum = group_sums(
                self.residuals[index], embeddings, group, 1,
                weights=torch.from_numpy(weights), linear_layer=self.linear_layer,
            )
            residual_bias = residual_bias - bias_sum[0]
            if weight_sum is not None:
                residual_weight = residual_weight - weight_sum[0]
        if residual_weight is not None:
            residual_weight = residual_weight.float()
        dots = gains(*self.scoring, residual_bias.float(), residual_weight)
        return dots.numpy().astype(np.float64)

    def gram(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """g_i . g_j for i in rows, j in columns."""
        rows, columns = torch.from_numpy(rows), torch.from_numpy(columns)
        return gradient_dots(self.residuals[rows], self.embeddings[rows],
                             self.residuals[columns], self.embeddings[columns],
                             self.linear_layer).numpy()

    def vectors(self, atoms: np.ndarray) -> np.ndarray:
        """The atoms as explicit rows: r, or (r, r e^T flattened)."""
        index = torch.from_numpy(atoms)
        residuals = self.residuals[index]
        if not self.linear_layer:
            return residuals.numpy()
        outer = residuals[:, :, None] * self.embeddings[index][:, None, :]
        return torch.cat([residuals, outer.flatten(1)], dim=1).numpy()
