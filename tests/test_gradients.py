"""The factor-based gradient algebra equals the same quantities built from explicit gradients."""

import numpy as np
import pytest
import torch
from glister_reference import sample_gradients

from dsslab.selection import glister_objectives as objectives
from dsslab.selection import gradients

CLASSES, DIMS = 4, 3


def make_split(count, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.rand(count, DIMS, generator=generator, dtype=dtype)
    logits = 2 * torch.randn(count, CLASSES, generator=generator, dtype=dtype)
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    return embeddings, logits, labels


def explicit(split, linear_layer):
    embeddings, logits, labels = split
    return sample_gradients(logits, labels, embeddings, linear_layer)


def test_residuals_are_the_bias_gradients():
    embeddings, logits, labels = make_split(7, seed=0)
    expected = explicit((embeddings, logits, labels), linear_layer=False)
    torch.testing.assert_close(gradients.residuals(logits, labels), expected)


def test_residuals_of_half_precision_logits_are_float32():
    _, logits, labels = make_split(5, seed=1, dtype=torch.float16)
    assert gradients.residuals(logits, labels).dtype == torch.float32


@pytest.mark.parametrize("linear_layer", [False, True])
def test_gradient_dots_equal_explicit_dot_products(linear_layer, monkeypatch):
    monkeypatch.setattr(gradients, "CHUNK_ELEMENTS", 10)  # forces several row chunks
    first, second = make_split(9, seed=2), make_split(6, seed=3)
    res_a, res_b = (gradients.residuals(s[1], s[2]) for s in (first, second))
    dots = gradients.gradient_dots(res_a, first[0], res_b, second[0], linear_layer)
    expected = explicit(first, linear_layer) @ explicit(second, linear_layer).T
    torch.testing.assert_close(dots, expected)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_squared_norms_equal_explicit_norms(linear_layer):
    split = make_split(8, seed=4)
    norms = gradients.squared_norms(gradients.residuals(split[1], split[2]), split[0],
                                    linear_layer)
    torch.testing.assert_close(norms, explicit(split, linear_layer).pow(2).sum(dim=1))


@pytest.mark.parametrize("weighted", [False, True])
def test_group_sums_equal_explicit_segment_sums(weighted):
    split = make_split(10, seed=5)
    group_ids = torch.tensor([2, 0, 2, 1, 0, 2, 2, 0, 1, 2])
    weights = torch.linspace(0.5, 2.0, 10, dtype=torch.float64) if weighted else None
    bias_sums, weight_sums = gradients.group_sums(
        gradients.residuals(split[1], split[2]), split[0], group_ids, 4, weights=weights
    )
    rows = explicit(split, linear_layer=True)
    if weighted:
        rows = rows * weights[:, None]
    expected = torch.zeros(4, rows.shape[1], dtype=rows.dtype).index_add_(0, group_ids, rows)
    torch.testing.assert_close(bias_sums, expected[:, :CLASSES])
    torch.testing.assert_close(weight_sums.flatten(1), expected[:, CLASSES:])
    assert weight_sums[3].abs().max() == 0  # the empty group sums to zero


def test_group_sums_bias_only_return_no_weight_sums():
    split = make_split(6, seed=6)
    _, weight_sums = gradients.group_sums(gradients.residuals(split[1], split[2]), split[0],
                                          torch.zeros(6, dtype=torch.int64), 1,
                                          linear_layer=False)
    assert weight_sums is None


@pytest.mark.parametrize("linear_layer", [False, True])
def test_gains_equal_dot_products_with_an_explicit_target(linear_layer):
    split = make_split(9, seed=7)
    generator = torch.Generator().manual_seed(8)
    target_bias = torch.randn(CLASSES, generator=generator, dtype=torch.float64)
    target_weight = torch.randn(CLASSES, DIMS, generator=generator, dtype=torch.float64)
    values = gradients.gains(gradients.residuals(split[1], split[2]), split[0], target_bias,
                             target_weight if linear_layer else None)
    target = torch.cat([target_bias, target_weight.flatten()]) if linear_layer else target_bias
    torch.testing.assert_close(values, explicit(split, linear_layer) @ target)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_validation_gradient_is_the_mean_explicit_gradient(linear_layer):
    split = make_split(11, seed=9)
    bias, weight = gradients.validation_gradient(split[1], split[2], split[0], linear_layer)
    expected = explicit(split, linear_layer).mean(dim=0)
    torch.testing.assert_close(bias, expected[:CLASSES])
    if linear_layer:
        torch.testing.assert_close(weight.flatten(), expected[CLASSES:])
    else:
        assert weight is None


@pytest.mark.parametrize("linear_layer", [False, True])
def test_validation_logit_step_is_an_sgd_step_on_the_summed_gradient(linear_layer, monkeypatch):
    monkeypatch.setattr(gradients, "CHUNK_ELEMENTS", 7)
    train, val = make_split(8, seed=10), make_split(5, seed=11)
    weights = torch.tensor([1.0, 0.5, 2.0, 0.0, 1.0, 1.0, 3.0, 0.25], dtype=torch.float64)
    change = gradients.validation_logit_step(
        gradients.residuals(train[1], train[2]), train[0], val[0], 0.3, linear_layer, weights
    )
    total = (explicit(train, linear_layer) * weights[:, None]).sum(dim=0)
    expected = 0.3 * total[:CLASSES].expand(5, -1)
    if linear_layer:
        expected = expected + 0.3 * val[0] @ total[CLASSES:].reshape(CLASSES, DIMS).T
    torch.testing.assert_close(change, expected)


def test_embedding_gram_in_chunks_equals_the_full_product(monkeypatch):
    monkeypatch.setattr(gradients, "CHUNK_ELEMENTS", 4)
    first, second = make_split(9, seed=12)[0], make_split(4, seed=13)[0]
    torch.testing.assert_close(gradients.embedding_gram(first, second), first @ second.T)
    torch.testing.assert_close(gradients.embedding_gram(first, second, 1.0),
                               1.0 + first @ second.T)


@pytest.mark.parametrize("route", ["weight", "gram", "rows"])
def test_every_last_layer_route_gives_the_explicit_gains_before_and_after_picks(route):
    train, val = make_split(12, seed=14), make_split(7, seed=15)
    train_residuals = gradients.residuals(train[1], train[2])
    validation = objectives.ValidationLogits(val[1], val[2], val[0], torch.float64,
                                             weight_gradient=route == "weight")
    objective = objectives.LastLayerObjective(train_residuals, train[0], validation, 0.4, route)
    rows = explicit(train, linear_layer=True)
    picked = []
    for pick in (5, np.array([2, 9])):
        objective.add(pick)
        picked += [pick] if isinstance(pick, int) else pick.tolist()
        moved = val[1] - 0.4 * _logit_change(rows[picked].sum(dim=0), val[0])
        target = explicit((val[0], moved, val[2]), linear_layer=True).mean(dim=0)
        torch.testing.assert_close(torch.from_numpy(objective.gains(None)), rows @ target)
        some = objective.gains(np.array([3, 0]))
        torch.testing.assert_close(torch.from_numpy(some), rows[[3, 0]] @ target)


def _logit_change(total, val_embeddings):
    return total[:CLASSES] + val_embeddings @ total[CLASSES:].reshape(CLASSES, DIMS).T


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_bias_objective_gradient_matches_the_direct_softmax_for_any_shift(dtype):
    train, val = make_split(6, seed=16, dtype=dtype), make_split(5, seed=17, dtype=dtype)
    objective = objectives.BiasObjective(gradients.residuals(train[1], train[2]), val[1],
                                         val[2], eta=1.0)
    counts = torch.bincount(val[2], minlength=CLASSES).to(dtype) / 5
    # (exponents, drift): keep the reference, fall back to softmax, re-centre the reference
    cases = [([0.3, -0.2, 0.1, 0.0], 0.3), ([0.0, -700.0, 5.0, -1.0], 1e3),
             ([0.0, -30.0, 5.0, -1.0], 1e3)]
    for exponents, drift in cases:
        objective.add(np.array([], dtype=np.int64))  # marks the gradient stale
        objective.exponents = np.array(exponents, dtype=objective.exponents.dtype)
        objective.drift = drift
        probabilities = torch.softmax(val[1] + torch.tensor(exponents, dtype=dtype), dim=1)
        expected = probabilities.mean(dim=0) - counts
        torch.testing.assert_close(torch.from_numpy(objective.gradient()), expected)


def test_choose_route_prefers_gram_for_few_candidates_and_weight_for_many():
    cifar = dict(samples=45_000, val_samples=5_000, classes=10, dimensions=512,
                 bytes_per_entry=4)
    assert objectives.choose_route(steps=13_500, candidates_per_step=15, **cifar) == "gram"
    assert objectives.choose_route(steps=4_500, candidates_per_step=45_000, **cifar) == "weight"
    huge = dict(cifar, samples=1_000_000)  # T would need 20 GB: above the cap
    assert objectives.choose_route(steps=100_000, candidates_per_step=4, **huge) == "rows"
