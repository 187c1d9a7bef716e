"""A plain, slow, test-only GLISTER-ONLINE that builds every per-sample gradient explicitly.

Each sample's last-layer gradient comes from torch.autograd on a zero-initialised bias and
weight added to its logits (so it equals the gradient at the given logits), as one flat vector:
bias (C) then weight (C x D, row-major) in last-layer mode, bias only otherwise. After every
pick the validation logits are rebuilt from the original ones and the sum of the picked
gradients, and the validation gradient is rebuilt from per-sample autograd gradients. Nothing
from dsslab is imported, so the factor code is checked against an independent computation.
"""

from fractions import Fraction

import torch
import torch.nn.functional as F


def sample_gradients(logits, labels, embeddings, linear_layer):
    """Explicit per-sample last-layer gradients, N x C (bias) or N x (C + C*D)."""
    classes, dims = logits.shape[1], embeddings.shape[1]
    rows = []
    for i in range(len(logits)):
        bias = torch.zeros(classes, dtype=logits.dtype, requires_grad=True)
        weight = torch.zeros(classes, dims, dtype=logits.dtype, requires_grad=True)
        shifted = logits[i] + bias + (weight @ embeddings[i] if linear_layer else 0.0)
        loss = F.cross_entropy(shifted[None], labels[i : i + 1])
        grad_bias, grad_weight = torch.autograd.grad(loss, (bias, weight), allow_unused=True)
        rows.append(torch.cat([grad_bias, grad_weight.flatten()]) if linear_layer else grad_bias)
    return torch.stack(rows)


class Reference:
    """GLISTER on explicit element gradients against one validation set."""

    def __init__(self, element_gradients, val_logits, val_labels, val_embeddings, eta,
                 linear_layer):
        self.gradients = element_gradients
        self.val_logits, self.val_labels = val_logits, val_labels
        self.val_embeddings = val_embeddings
        self.eta, self.linear_layer = eta, linear_layer

    def validation_gradient(self, picked):
        """Mean validation gradient after one SGD step on the summed gradient of `picked`."""
        classes = self.val_logits.shape[1]
        total = self.gradients[list(picked)].sum(dim=0) if picked else self.gradients[0] * 0
        logits = self.val_logits - self.eta * total[:classes]
        if self.linear_layer:
            weight = total[classes:].reshape(classes, -1)
            logits = logits - self.eta * self.val_embeddings @ weight.T
        return sample_gradients(
            logits, self.val_labels, self.val_embeddings, self.linear_layer
        ).mean(dim=0)

    def gain(self, element, val_gradient):
        return float(torch.dot(self.gradients[element], val_gradient))

    def naive(self, budget, candidate_lists=None):
        """Greedy over all remaining elements, or over the next given candidate list per step."""
        picked, gains = [], []
        while len(picked) < budget:
            val_gradient = self.validation_gradient(picked)
            if candidate_lists is None:
                pool = [i for i in range(len(self.gradients)) if i not in picked]
            else:
                pool = [int(i) for i in candidate_lists.pop(0)]
            scored = {i: self.gain(i, val_gradient) for i in pool}
            best = min(pool, key=lambda i: (-scored[i], i))
            picked.append(best)
            gains.append(scored[best])
        return picked, gains

    def rgreedy(self, budget, rounds):
        picked, gains = [], []
        count = min(rounds, budget)
        quotas = [budget // count + (1 if r < budget % count else 0) for r in range(count)]
        for quota in quotas:
            val_gradient = self.validation_gradient(picked)
            pool = [i for i in range(len(self.gradients)) if i not in picked]
            scored = {i: self.gain(i, val_gradient) for i in pool}
            chosen = sorted(pool, key=lambda i: (-scored[i], i))[:quota]
            picked.extend(chosen)
            gains.extend(scored[i] for i in chosen)
        return picked, gains


def class_budgets(class_sizes, budget):
    """Largest remainder with Fractions, then at least one per non-empty class."""
    total = sum(class_sizes)
    exact = [Fraction(budget * size, total) for size in class_sizes]
    budgets = [int(share) for share in exact]
    order = sorted(range(len(exact)), key=lambda c: (-(exact[c] - int(exact[c])), c))
    for c in order[: budget - sum(budgets)]:
        budgets[c] += 1
    non_empty = [c for c, size in enumerate(class_sizes) if size]
    if budget >= len(non_empty):
        for c in non_empty:
            if budgets[c] == 0:
                donor = sorted(range(len(budgets)), key=lambda d: (-budgets[d], d))[0]
                budgets[donor] -= 1
                budgets[c] = 1
    return budgets


def run_greedy(reference, budget, greedy, rounds, candidate_lists):
    if greedy == "rgreedy":
        return reference.rgreedy(budget, rounds)
    return reference.naive(budget, candidate_lists if greedy == "stochastic" else None)


def reference_select(train_embeddings, train_logits, train_labels, val_embeddings,
                     val_logits, val_labels, budget, *, eta, greedy, mode, linear_layer,
                     rounds=15, batch_size=32, candidate_lists=None):
    """Picked sample indices (in pick order) and pick gains, as glister_select defines them.

    For greedy="stochastic" the candidates of each step are given (local element indices, in
    the order the steps run), so the picks and gains can be compared exactly.
    """
    gradients = sample_gradients(train_logits, train_labels, train_embeddings, linear_layer)
    args = (val_logits, val_labels, val_embeddings, eta, linear_layer)
    if mode == "all":
        return run_greedy(Reference(gradients, *args), budget, greedy, rounds, candidate_lists)
    if mode == "per_batch":
        return _per_batch(gradients, args, budget, greedy, rounds, batch_size, candidate_lists)
    return _per_class(gradients, train_labels, args, budget, greedy, rounds, candidate_lists)


def _per_class(gradients, train_labels, args, budget, greedy, rounds, candidate_lists):
    val_logits, val_labels, val_embeddings, eta, linear_layer = args
    classes = val_logits.shape[1]
    members = [[i for i in range(len(train_labels)) if train_labels[i] == c]
               for c in range(classes)]
    picks, gains = [], []
    for c, class_budget in enumerate(class_budgets([len(m) for m in members], budget)):
        if class_budget == 0:
            continue
        val_rows = [v for v in range(len(val_labels)) if val_labels[v] == c]
        val_rows = val_rows or list(range(len(val_labels)))
        reference = Reference(gradients[members[c]], val_logits[val_rows], val_labels[val_rows],
                              val_embeddings[val_rows], eta, linear_layer)
        local, local_gains = run_greedy(reference, class_budget, greedy, rounds,
                                        candidate_lists)
        picks.extend(members[c][i] for i in local)
        gains.extend(local_gains)
    return picks, gains


def _per_batch(gradients, args, budget, greedy, rounds, batch_size, candidate_lists):
    size = len(gradients)
    blocks = [list(range(s, min(s + batch_size, size))) for s in range(0, size, batch_size)]
    batch_gradients = torch.stack([gradients[block].mean(dim=0) for block in blocks])
    half_up = int(Fraction(budget, batch_size) + Fraction(1, 2))
    batch_budget = min(len(blocks), max(1, half_up))
    picked, gains = run_greedy(Reference(batch_gradients, *args), batch_budget, greedy, rounds,
                               candidate_lists)
    return [i for b in picked for i in blocks[b]], gains
