"""CRAIG: lazy-greedy facility location and the per-class / per-batch selection around it."""

import json

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST
from dsslab.selection import STRATEGIES
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.craig import CraigSettings, craig_select
from dsslab.selection.facility_location import (
    facility_location,
    gradient_distances,
    similarities,
)
from dsslab.selection.gradients import gradient_dots, residuals, squared_norms
from dsslab.train import train
from matching_helpers import (
    REPO,
    explicit_gradients,
    random_features,
    selection_context,
    subset_as_dict,
)


def points_similarity(points: torch.Tensor) -> torch.Tensor:
    """max_distance - distance between rows, through the Gram form used for gradients."""
    gram = points @ points.T
    return similarities(gradient_distances(gram, gram.diagonal().clone()))


def plain_greedy(similarity: torch.Tensor, budget: int) -> list[int]:
    """Facility location by recomputing every marginal gain at every step (test reference)."""
    coverage = torch.zeros(len(similarity), dtype=similarity.dtype)
    picks: list[int] = []
    for _ in range(budget):
        gains = (similarity - coverage[:, None]).clamp_min(0).sum(dim=0)
        gains[picks] = -1.0
        pick = int(torch.argmax(gains))  # first maximum: the lowest position
        picks.append(pick)
        coverage = torch.maximum(coverage, similarity[:, pick])
    return picks


def test_facility_location_picks_one_per_tight_cluster_with_weights_three_and_three():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0],
                           [10.0, 10.0], [11.0, 10.0], [10.0, 11.0]], dtype=torch.float64)
    picks, weights = facility_location(points_similarity(points), 2)
    # (10, 10) has the smallest total distance to all six points (43.05 against 45.87 for
    # (0, 0)); then (0, 0) gains most, 39.05 against 38.64 for (1, 0) and (0, 1).
    assert picks.tolist() == [3, 0]
    assert weights.tolist() == [3.0, 3.0]
    assert weights.dtype == torch.float32


def test_lazy_greedy_picks_what_plain_greedy_picks():
    generator = torch.Generator().manual_seed(3)
    for count, budget in ((1, 1), (9, 4), (40, 13), (40, 40)):
        points = torch.randn(count, 5, generator=generator, dtype=torch.float64)
        similarity = points_similarity(points)
        picks, weights = facility_location(similarity, budget)
        assert picks.tolist() == plain_greedy(similarity, budget)
        assert weights.sum() == count


def test_duplicates_are_picked_last_ties_go_to_the_lowest_position_and_weights_stay_positive():
    points = torch.tensor([[0.0], [0.0], [0.0], [5.0], [5.0]], dtype=torch.float64)
    picks, weights = facility_location(points_similarity(points), 2)
    assert picks.tolist() == [0, 3] and weights.tolist() == [3.0, 2.0]
    picks, weights = facility_location(points_similarity(points), 4)
    # A pick represents at least itself, so a duplicate pick keeps weight 1.
    assert picks.tolist() == [0, 3, 1, 2]
    assert weights.tolist() == [1.0, 2.0, 1.0, 1.0]


@pytest.mark.parametrize("budget", [0, 7])
def test_facility_location_rejects_a_budget_outside_one_to_n(budget):
    with pytest.raises(ValueError, match=r"budget must be in \[1, 6\]"):
        facility_location(torch.ones(6, 6), budget)


def test_gradient_distances_match_explicit_per_sample_gradients():
    features = random_features(25, classes=3, dims=4, seed=1)
    res = residuals(features.train_logits, features.train_labels)
    emb = features.train_embeddings
    for linear_layer in (False, True):
        gram = gradient_dots(res, emb, res, emb, linear_layer)
        distances = gradient_distances(gram, squared_norms(res, emb, linear_layer))
        explicit = explicit_gradients(features, linear_layer)
        torch.testing.assert_close(distances, torch.cdist(explicit, explicit), atol=1e-9,
                                   rtol=1e-9)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_per_class_picks_match_facility_location_on_explicit_gradients(linear_layer):
    features = random_features(60, classes=3, dims=6, seed=2)
    subset = craig_select(features.train_embeddings, features.train_logits,
                          features.train_labels, 17, linear_layer=linear_layer)
    explicit = explicit_gradients(features, linear_layer)
    members = [torch.nonzero(features.train_labels == c).flatten() for c in range(3)]
    budgets = class_budgets([len(rows) for rows in members], 17)
    expected_indices, expected_weights = [], []
    for rows, budget in zip(members, budgets):
        distances = torch.cdist(explicit[rows], explicit[rows])
        picks, weights = facility_location(distances.max() - distances, budget)
        expected_indices += rows[picks].tolist()
        expected_weights += weights.tolist()
    assert subset.indices.tolist() == expected_indices
    assert subset.weights.tolist() == expected_weights


@pytest.mark.parametrize("count", [1, 2, 7, 30, 61])
def test_budgets_are_exact_and_weights_count_the_represented_samples(count):
    features = random_features(count, classes=3, dims=4, seed=count)
    class_sizes = torch.bincount(features.train_labels, minlength=3)
    for budget in sorted({1, max(1, count // 3), max(1, count - 1), count}):
        for linear_layer in (False, True):
            subset = craig_select(features.train_embeddings, features.train_logits,
                                  features.train_labels, budget, linear_layer=linear_layer)
            assert len(subset.indices) == len(set(subset.indices.tolist())) == budget
            assert subset.indices.dtype == torch.int64
            assert torch.isfinite(subset.weights).all() and (subset.weights >= 0).all()
            picked_labels = features.train_labels[subset.indices]
            for cls in picked_labels.unique():
                assert subset.weights[picked_labels == cls].sum() == class_sizes[cls]


@pytest.mark.parametrize("linear_layer", [False, True])
def test_permuting_the_training_set_permutes_the_picks(linear_layer):
    features = random_features(90, classes=3, dims=5, seed=4)
    order = torch.randperm(90, generator=torch.Generator().manual_seed(5))
    original = craig_select(features.train_embeddings, features.train_logits,
                            features.train_labels, 20, linear_layer=linear_layer)
    shuffled = craig_select(features.train_embeddings[order], features.train_logits[order],
                            features.train_labels[order], 20, linear_layer=linear_layer)
    mapped = {int(order[index]): weight for index, weight in subset_as_dict(shuffled).items()}
    assert mapped == subset_as_dict(original)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_per_batch_picks_whole_blocks_chosen_on_explicit_batch_gradients(linear_layer):
    features = random_features(50, classes=3, dims=4, seed=6)
    subset = craig_select(features.train_embeddings, features.train_logits,
                          features.train_labels, 20, linear_layer=linear_layer,
                          per_batch=True, batch_size=8)
    # 7 blocks (the last holds samples 48 and 49); 20 / 8 = 2.5 rounds half up to 3 blocks.
    explicit = explicit_gradients(features, linear_layer)
    means = torch.stack([block.mean(dim=0) for block in explicit.split(8)])
    distances = torch.cdist(means, means)
    blocks, block_weights = facility_location(distances.max() - distances, 3)
    expected = torch.cat([torch.arange(b * 8, min(50, b * 8 + 8)) for b in blocks.tolist()])
    assert subset.indices.tolist() == expected.tolist()
    sizes = [min(8, 50 - b * 8) for b in blocks.tolist()]
    assert subset.weights.tolist() == torch.repeat_interleave(
        block_weights, torch.tensor(sizes)).tolist()
    assert block_weights.sum() == 7
    assert subset.info["sample_count"] == len(expected)
    assert subset.info["elements"] == batch_budget(20, 8, 7) == 3


def test_per_batch_with_one_block_per_sample_is_not_per_class():
    features = random_features(12, classes=2, dims=3, seed=7)
    subset = craig_select(features.train_embeddings, features.train_logits,
                          features.train_labels, 5, per_batch=True, batch_size=1)
    assert len(subset.indices) == 5
    assert subset.weights.sum() == 12
    assert subset.info["mode"] == "per_batch"


def test_craig_rejects_bad_arguments_by_name():
    features = random_features(10, classes=2, dims=3, seed=8)
    args = (features.train_embeddings, features.train_logits, features.train_labels)
    with pytest.raises(ValueError, match=r"budget must be in \[1, 10\], got 11"):
        craig_select(*args, 11)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        craig_select(*args, 3, per_batch=True, batch_size=0)
    with pytest.raises(ValueError, match="train_labels must be in"):
        craig_select(features.train_embeddings, features.train_logits,
                     features.train_labels + 5, 3)


def test_strategy_selects_with_the_context_budget_and_logs_its_settings():
    features = random_features(40, classes=4, dims=3, seed=9)
    strategy = STRATEGIES["craig"](CraigSettings(per_batch=True))
    subset = strategy.select(selection_context(features, budget=12))
    assert strategy.needs_features and strategy.adaptive
    assert subset.info["batch_size"] == 4 and len(subset.indices) == 12


def test_config_file_holds_exactly_the_settings_fields_with_their_defaults():
    config = OmegaConf.to_container(OmegaConf.load(REPO / "conf/strategy/craig.yaml"))
    assert list(config)[0] == "name"
    assert config == vars(CraigSettings())


def test_settings_reject_a_non_positive_batch_size():
    with pytest.raises(ValueError, match="strategy.batch_size must be >= 1 or null"):
        CraigSettings(batch_size=0)



def test_per_batch_craig_after_a_warm_start_trains_on_digits(make_config, tmp_path):
    cfg = make_config("strategy=craig", "strategy.per_batch=true", "strategy.linear_layer=true",
                      "strategy.warm_start_epochs=1", "fraction=0.3", *FAST, "epochs=2")
    train(cfg, tmp_path)
    sizes = [json.loads(line)["subset/size"]
             for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # 1,295 digits: a full warm-start epoch, then 389 / 32 -> 12 batches of 32, or 11 and the
    # 15-sample last batch.
    assert sizes[0] == 1295 and sizes[1] in (384, 367)
