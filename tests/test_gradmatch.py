"""GRAD-MATCH: non-negative ridge OMP, its fill rule, and the selection around it."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.optimize import nnls

from conftest import FAST
from dsslab.selection import STRATEGIES
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.gradient_atoms import SampleAtoms
from dsslab.selection.gradients import group_sums, residuals
from dsslab.selection.gradmatch import GradMatchSettings, gradmatch_select
from dsslab.selection.omp import ExplicitAtoms, MatchingResult, fill_budget, nonnegative_omp
from dsslab.train import train
from matching_helpers import (
    REPO,
    explicit_gradients,
    random_features,
    selection_context,
    subset_as_dict,
)

PLANTED_SUPPORT = [3, 7, 19, 25]
PLANTED_WEIGHTS = [1.5, 2.0, 0.7, 2.9]


def explicit_pursuit(atoms: np.ndarray, target: np.ndarray, budget: int, **options):
    """nonnegative_omp on explicit atom vectors (the columns of `atoms`)."""
    return nonnegative_omp(ExplicitAtoms(atoms.T, target), budget, **options)


def planted_problem():
    atoms = np.random.default_rng(0).normal(size=(200, 30))
    weights = np.zeros(30)
    weights[PLANTED_SUPPORT] = PLANTED_WEIGHTS
    return atoms, atoms @ weights


def test_omp_recovers_a_planted_sparse_non_negative_combination_exactly():
    atoms, target = planted_problem()
    result = explicit_pursuit(atoms, target, 4, lam=0.0, eps=0.0)
    assert sorted(result.picks.tolist()) == PLANTED_SUPPORT
    recovered = dict(zip(result.picks.tolist(), result.weights.tolist()))
    np.testing.assert_allclose([recovered[j] for j in PLANTED_SUPPORT], PLANTED_WEIGHTS,
                               atol=1e-5)
    assert result.stop_reason == "budget" and result.residual_norm < 1e-6


def test_omp_recovers_a_planted_combination_of_per_sample_gradients_in_gram_form():
    # 30 gradients in 10 + 10 x 40 dimensions: incoherent enough for OMP to find the support.
    features = random_features(30, classes=10, dims=40, seed=0)
    res = residuals(features.train_logits, features.train_labels)
    emb = features.train_embeddings
    planted = torch.zeros(30, dtype=torch.float64)
    planted[[2, 11, 17]] = torch.tensor([0.8, 1.9, 1.2], dtype=torch.float64)
    group = torch.zeros(30, dtype=torch.int64)
    bias, weight = group_sums(res, emb, group, 1, weights=planted, linear_layer=True)
    atoms = SampleAtoms(res, emb, True, bias[0], weight[0])
    result = nonnegative_omp(atoms, 3, lam=0.0, eps=0.0)
    assert sorted(result.picks.tolist()) == [2, 11, 17]
    recovered = dict(zip(result.picks.tolist(), result.weights.tolist()))
    np.testing.assert_allclose([recovered[j] for j in (2, 11, 17)], [0.8, 1.9, 1.2],
                               atol=1e-5)


def test_omp_stops_at_tolerance_and_the_fill_is_explicit_and_reproducible():
    atoms, target = planted_problem()
    result = explicit_pursuit(atoms, target, 10, lam=0.0, eps=1e-6)
    assert result.stop_reason == "tolerance" and len(result.picks) == 4

    runs = [fill_budget(result, 10, torch.Generator().manual_seed(7)) for _ in range(2)]
    positions, weights, filled = runs[0]
    assert filled == 6 and len(set(positions.tolist())) == 10
    assert positions[:4].tolist() == result.picks.tolist()
    np.testing.assert_allclose(weights[4:], np.mean(PLANTED_WEIGHTS), atol=1e-6)
    np.testing.assert_array_equal(positions, runs[1][0])


def test_fill_takes_positive_correlations_first_then_random_draws():
    result = MatchingResult(
        picks=np.array([4]), weights=np.array([2.0]), stop_reason="no_positive_correlation",
        correlations=np.array([0.5, -1.0, 0.9, 0.0, 0.0, -2.0, 0.5]), residual_norm=0.3,
    )
    positions, weights, filled = fill_budget(result, 5, torch.Generator().manual_seed(0))
    assert positions[:4].tolist() == [4, 2, 0, 6]  # 0.9, then the tie 0.5 by lowest position
    assert positions[4] in (1, 3, 5) and filled == 4
    assert weights.tolist() == [2.0] * 5


def test_fill_weight_is_one_when_the_solver_picked_nothing():
    result = MatchingResult(picks=np.zeros(0, dtype=np.int64), weights=np.zeros(0),
                            correlations=np.zeros(3), stop_reason="tolerance",
                            residual_norm=0.0)
    positions, weights, filled = fill_budget(result, 2, torch.Generator().manual_seed(0))
    assert filled == 2 and weights.tolist() == [1.0, 1.0] and len(set(positions)) == 2


@pytest.mark.parametrize("solver", ["gram", "feature"])
@pytest.mark.parametrize("lam", [0.0, 0.5, 5.0])
def test_weights_solve_the_non_negative_ridge_problem_on_the_support(lam, solver):
    rng = np.random.default_rng(1)
    for trial in range(30):
        # Atoms sharing three directions, so weights often turn negative and leave.
        count, dims = int(rng.integers(5, 40)), int(rng.integers(3, 30))
        atoms = rng.normal(size=(dims, 3)) @ rng.normal(size=(3, count))
        atoms += 0.3 * rng.normal(size=(dims, count))
        target = rng.normal(size=dims) + atoms[:, :3].sum(axis=1)
        budget = int(rng.integers(1, count + 1))
        result = explicit_pursuit(atoms, target, budget, lam=lam, solver=solver)
        support = result.picks
        assert (result.weights > 0).all() and len(set(support.tolist())) == len(support)
        if len(support):
            stacked = np.vstack([atoms[:, support], np.sqrt(lam) * np.eye(len(support))])
            expected, _ = nnls(stacked, np.concatenate([target, np.zeros(len(support))]))
            np.testing.assert_allclose(result.weights, expected, atol=1e-9, rtol=1e-7)


def test_omp_rejects_bad_arguments_by_name():
    atoms, target = planted_problem()
    with pytest.raises(ValueError, match=r"budget must be in \[1, 30\]"):
        explicit_pursuit(atoms, target, 31)
    with pytest.raises(ValueError, match="lam .* must be finite and >= 0"):
        explicit_pursuit(atoms, target, 3, lam=-1.0)


def select(features, budget, **options):
    return gradmatch_select(
        features.train_embeddings, features.train_logits, features.train_labels, budget,
        val_embeddings=features.val_embeddings, val_logits=features.val_logits,
        val_labels=features.val_labels, generator=torch.Generator().manual_seed(0), **options,
    )


@pytest.mark.parametrize("count", [1, 2, 7, 30, 61])
def test_budgets_are_exact_and_weights_finite_and_non_negative(count):
    features = random_features(count, classes=3, dims=4, seed=count)
    class_sizes = torch.bincount(features.train_labels, minlength=3).tolist()
    for budget in sorted({1, max(1, count // 3), max(1, count - 1), count}):
        for options in ({}, {"linear_layer": True, "valid": True}, {"lam": 0.0}):
            subset = select(features, budget, **options)
            assert len(subset.indices) == len(set(subset.indices.tolist())) == budget
            assert torch.isfinite(subset.weights).all() and (subset.weights >= 0).all()
            per_class = torch.bincount(features.train_labels[subset.indices], minlength=3)
            assert per_class.tolist() == class_budgets(class_sizes, budget)
            assert subset.info["solver_picks"] + subset.info["filled"] == budget


@pytest.mark.parametrize("linear_layer", [False, True])
def test_per_class_selection_matches_omp_on_explicit_gradients(linear_layer):
    features = random_features(45, classes=3, dims=5, seed=3)
    subset = select(features, 9, linear_layer=linear_layer)
    explicit = explicit_gradients(features, linear_layer).numpy()
    expected = {}
    for cls in range(3):
        rows = np.flatnonzero(features.train_labels.numpy() == cls)
        atoms = explicit[rows].T
        count = class_budgets(torch.bincount(features.train_labels).tolist(), 9)[cls]
        result = explicit_pursuit(atoms, atoms.sum(axis=1), count, lam=0.5, eps=1e-6)
        expected.update(zip(rows[result.picks].tolist(), result.weights.tolist()))
    assert subset.info["filled"] == 0
    assert subset.indices.tolist() == list(expected)
    np.testing.assert_allclose(subset.weights.numpy(), list(expected.values()), rtol=1e-5)


def test_matching_validation_equal_to_training_gives_the_training_selection():
    features = random_features(40, classes=3, dims=4, seed=4)
    same = type(features)(*[getattr(features, f"train_{name}")
                            for name in ("embeddings", "logits", "labels")] * 2)
    for linear_layer in (False, True):
        trained = select(same, 8, linear_layer=linear_layer)
        validated = select(same, 8, linear_layer=linear_layer, valid=True)
        assert validated.indices.tolist() == trained.indices.tolist()
        torch.testing.assert_close(validated.weights, trained.weights)


def test_a_class_without_validation_samples_is_matched_against_all_of_them():
    features = random_features(40, classes=3, dims=4, seed=5)
    labels = features.val_labels.clone()
    labels[labels == 2] = 0
    features = type(features)(*list(vars(features).values())[:5], labels)
    subset = select(features, 9, valid=True)
    assert subset.info["classes_without_validation"] == 1 and len(subset.indices) == 9


@pytest.mark.parametrize("linear_layer", [False, True])
def test_permuting_the_training_set_permutes_the_picks(linear_layer):
    features = random_features(90, classes=3, dims=5, seed=6)
    order = torch.randperm(90, generator=torch.Generator().manual_seed(5))
    shuffled_features = type(features)(
        features.train_embeddings[order], features.train_logits[order],
        features.train_labels[order], features.val_embeddings, features.val_logits,
        features.val_labels,
    )
    original = select(features, 12, linear_layer=linear_layer)
    shuffled = select(shuffled_features, 12, linear_layer=linear_layer)
    assert original.info["filled"] == shuffled.info["filled"] == 0
    mapped = {int(order[index]): weight for index, weight in subset_as_dict(shuffled).items()}
    assert mapped.keys() == subset_as_dict(original).keys()
    np.testing.assert_allclose([mapped[i] for i in original.indices.tolist()],
                               original.weights.numpy(), rtol=1e-5)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_per_batch_matches_the_sum_of_explicit_batch_means_with_whole_blocks(linear_layer):
    features = random_features(50, classes=3, dims=4, seed=7)
    subset = select(features, 20, linear_layer=linear_layer, per_batch=True, batch_size=8)
    explicit = explicit_gradients(features, linear_layer)
    means = torch.stack([block.mean(dim=0) for block in explicit.split(8)]).numpy()
    result = explicit_pursuit(means.T, means.sum(axis=0), batch_budget(20, 8, 7), lam=0.5)
    positions, weights, _ = fill_budget(result, 3, torch.Generator().manual_seed(0))
    sizes = [min(8, 50 - b * 8) for b in positions.tolist()]
    expected = [i for b in positions.tolist() for i in range(b * 8, min(50, b * 8 + 8))]
    assert subset.indices.tolist() == expected
    np.testing.assert_allclose(subset.weights.numpy(), np.repeat(weights, sizes), rtol=1e-5)
    assert subset.info["elements"] == 3 and subset.info["sample_count"] == len(expected)


def test_gradmatch_rejects_bad_arguments_by_name():
    features = random_features(10, classes=2, dims=3, seed=8)
    with pytest.raises(ValueError, match=r"budget must be in \[1, 10\], got 0"):
        select(features, 0)
    with pytest.raises(ValueError, match="val_embeddings must be a 2-d tensor"):
        gradmatch_select(features.train_embeddings, features.train_logits,
                         features.train_labels, 3, valid=True)
    with pytest.raises(ValueError, match="val_embeddings must have 3 columns"):
        gradmatch_select(features.train_embeddings, features.train_logits,
                         features.train_labels, 3, valid=True,
                         val_embeddings=torch.zeros(4, 5, dtype=torch.float64),
                         val_logits=features.val_logits[:4], val_labels=features.val_labels[:4])


def test_strategy_selects_exactly_the_context_budget():
    features = random_features(40, classes=4, dims=3, seed=9)
    strategy = STRATEGIES["gradmatch"](GradMatchSettings(valid=True, linear_layer=True))
    subset = strategy.select(selection_context(features, budget=12))
    assert strategy.needs_features and strategy.adaptive
    assert len(subset.indices) == 12 and subset.weights.dtype == torch.float32


def test_config_file_holds_exactly_the_settings_fields_with_their_defaults():
    config = OmegaConf.to_container(OmegaConf.load(REPO / "conf/strategy/gradmatch.yaml"))
    assert list(config)[0] == "name"
    assert config == vars(GradMatchSettings())


@pytest.mark.parametrize("key, value, message", [
    ("lam", -0.1, "strategy.lam must be >= 0"),
    ("eps", -1.0, "strategy.eps must be >= 0"),
    ("batch_size", 0, "strategy.batch_size must be >= 1 or null"),
])
def test_settings_reject_out_of_range_values_by_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        GradMatchSettings(**{key: value})


@pytest.mark.parametrize("overrides", [
    ["strategy.per_batch=true", "strategy.valid=true", "strategy.warm_start_epochs=1"],
    ["strategy.linear_layer=true", "strategy.valid=true", "strategy.warm_start_epochs=1"],
])
def test_gradmatch_variants_train_on_digits_after_a_warm_start(make_config, tmp_path,
                                                                overrides):
    cfg = make_config("strategy=gradmatch", *overrides, "fraction=0.3", *FAST, "epochs=2")
    train(cfg, tmp_path)
    sizes = [json.loads(line)["subset/size"]
             for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sizes[0] == 1295
    assert sizes[1] in ((384, 367) if "strategy.per_batch=true" in overrides else (389,))
