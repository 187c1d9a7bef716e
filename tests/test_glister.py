"""GLISTER selection picks what the explicit-gradient reference picks, in every variant, mode."""

import json
import logging
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from glister_reference import class_budgets as reference_class_budgets
from glister_reference import reference_select

from dsslab.selection import greedy as greedy_search
from dsslab.selection.base import Features, SelectionContext
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.glister import GlisterSettings, GlisterStrategy, glister_select
from dsslab.selection.strategy import STRATEGIES

MODES = ["all", "per_class", "per_batch"]
CONFIG = Path(__file__).resolve().parents[1] / "conf" / "strategy" / "glister.yaml"


def make_problem(seed, train=40, val=15, classes=4, dims=5, dtype=torch.float64):
    """Random features: nonnegative embeddings (like post-ReLU) and spread-out logits."""
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.rand(train, dims, generator=generator, dtype=dtype),
        2 * torch.randn(train, classes, generator=generator, dtype=dtype),
        torch.randint(0, classes, (train,), generator=generator),
        torch.rand(val, dims, generator=generator, dtype=dtype),
        2 * torch.randn(val, classes, generator=generator, dtype=dtype),
        torch.randint(0, classes, (val,), generator=generator),
    ]


def select(problem, budget, **options):
    options.setdefault("eta", 0.5)
    return glister_select(*problem, budget, **options)


def reference(problem, budget, **options):
    options.setdefault("eta", 0.5)
    options.setdefault("mode", "all")
    return reference_select(*problem, budget, **options)


@pytest.fixture
def recorded_stochastic(monkeypatch):
    """Capture every stochastic run: per-step candidates and the pick gains."""
    runs = []
    original = greedy_search.stochastic

    def recording(objective, budget, candidates, generator, record=None):
        steps = []
        result = original(objective, budget, candidates, generator, record=steps)
        runs.append({"steps": steps, "result": result, "candidates": candidates})
        return result

    monkeypatch.setattr(greedy_search, "stochastic", recording)
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("linear_layer", [False, True])
@pytest.mark.parametrize("greedy", ["naive", "rgreedy"])
def test_factor_path_picks_the_reference_indices_in_order(seed, mode, linear_layer, greedy):
    problem = make_problem(seed, train=30 + 7 * seed)
    options = dict(greedy=greedy, mode=mode, linear_layer=linear_layer, rounds=4,
                   batch_size=3, eta=0.3 + 0.2 * seed)
    picks, _ = reference(problem, 11, **options)
    assert select(problem, 11, **options).indices.tolist() == picks


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("linear_layer", [False, True])
def test_stochastic_gains_and_picks_match_the_reference_on_the_same_candidates(
    mode, linear_layer, recorded_stochastic
):
    problem = make_problem(3)
    options = dict(greedy="stochastic", mode=mode, linear_layer=linear_layer, batch_size=3)
    subset = select(problem, 12, generator=torch.Generator().manual_seed(5), **options)

    candidate_lists = [drawn for run in recorded_stochastic for drawn, _ in run["steps"]]
    picks, gains = reference(problem, 12, candidate_lists=candidate_lists, **options)
    assert subset.indices.tolist() == picks
    factor_gains = torch.cat([run["result"].gains for run in recorded_stochastic])
    torch.testing.assert_close(factor_gains, torch.tensor(gains, dtype=torch.float64))


def test_stochastic_draws_the_documented_number_of_candidates(recorded_stochastic):
    select(make_problem(4), 10, greedy="stochastic", generator=torch.Generator().manual_seed(1))
    (run,) = recorded_stochastic
    assert run["candidates"] == 18  # floor((40 / 10) * ln(100)) = floor(18.42)
    assert [len(drawn) for drawn, _ in run["steps"]] == [18] * 10
    for drawn, _ in run["steps"]:
        assert len(set(drawn.tolist())) == len(drawn)


def test_candidate_draws_are_distinct_and_uniform():
    generator = torch.Generator().manual_seed(0)
    counts = np.zeros(12)
    for _ in range(3000):
        pool = greedy_search.RemainingPool(12, 5, generator)
        drawn = pool.elements[pool.draw()]
        assert len(set(drawn.tolist())) == 5
        counts[drawn] += 1
    # 1250 expected per element; a binomial spread of about 27, so 6 sigma is within 13%
    assert np.all(np.abs(counts - 1250) < 170)


def test_pool_draws_shrink_with_the_pool_and_then_return_everything():
    pool = greedy_search.RemainingPool(6, 4, torch.Generator().manual_seed(0))
    seen = []
    for _ in range(6):
        positions = pool.draw()
        assert len(positions) == min(4, pool.count)
        assert all(0 <= p < pool.count for p in positions.tolist())
        seen.append(int(pool.elements[positions[0]]))
        pool.remove(int(positions[0]))
    assert sorted(seen) == list(range(6))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("linear_layer", [False, True])
def test_float32_features_pick_what_float64_features_pick(mode, linear_layer):
    problem = make_problem(22, train=60)
    options = dict(greedy="naive", mode=mode, linear_layer=linear_layer, batch_size=4)
    single = [t.float() if t.is_floating_point() else t for t in problem]
    assert (select(single, 15, **options).indices.tolist()
            == select(problem, 15, **options).indices.tolist())


@pytest.mark.parametrize("linear_layer", [False, True])
def test_stochastic_is_reproducible_for_a_fixed_seed(linear_layer):
    problem = make_problem(6, train=200)

    def run(seed):
        return select(problem, 20, linear_layer=linear_layer,
                      generator=torch.Generator().manual_seed(seed)).indices.tolist()

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_stochastic_uses_only_the_given_generator():
    problem = make_problem(7, train=100)
    torch.manual_seed(0)
    first = select(problem, 10, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(1)
    second = select(problem, 10, generator=torch.Generator().manual_seed(3))
    assert first.indices.tolist() == second.indices.tolist()


@pytest.mark.parametrize("greedy", ["naive", "stochastic", "rgreedy"])
@pytest.mark.parametrize("linear_layer", [False, True])
def test_budget_of_one_and_of_every_sample(greedy, linear_layer):
    problem = make_problem(8, train=20)
    options = dict(greedy=greedy, linear_layer=linear_layer, rounds=3)
    one = select(problem, 1, **options).indices
    assert len(one) == 1
    every = select(problem, 20, **options).indices
    assert sorted(every.tolist()) == list(range(20))
    if greedy != "stochastic":
        assert every.tolist() == reference(problem, 20, **options)[0]
        assert one.tolist() == reference(problem, 1, **options)[0]


@pytest.mark.parametrize("linear_layer", [False, True])
def test_rgreedy_with_fewer_picks_than_rounds_takes_one_pick_per_round(linear_layer):
    problem = make_problem(9)
    options = dict(greedy="rgreedy", linear_layer=linear_layer, rounds=15)
    assert greedy_search.round_quotas(3, 15) == [1, 1, 1]
    picks = select(problem, 3, **options).indices.tolist()
    assert picks == reference(problem, 3, **options)[0]
    assert picks == select(problem, 3, greedy="naive", linear_layer=linear_layer).indices.tolist()


def test_round_quotas_sum_to_the_budget():
    assert greedy_search.round_quotas(100, 15) == [7] * 10 + [6] * 5
    assert greedy_search.round_quotas(15, 15) == [1] * 15


@pytest.mark.parametrize("linear_layer", [False, True])
def test_candidate_draw_larger_than_the_pool_scores_everything(linear_layer):
    problem = make_problem(10)
    naive = select(problem, 30, greedy="naive", linear_layer=linear_layer)
    stochastic = select(problem, 30, greedy="stochastic", epsilon=1e-30,
                        linear_layer=linear_layer, generator=torch.Generator().manual_seed(0))
    assert stochastic.info["candidates_per_step"] == 40
    assert stochastic.indices.tolist() == naive.indices.tolist()


@pytest.mark.parametrize("greedy", ["naive", "stochastic", "rgreedy"])
@pytest.mark.parametrize("linear_layer", [False, True])
def test_duplicate_samples_tie_to_the_lowest_index(greedy, linear_layer):
    problem = make_problem(11)
    first = select(problem, 1, greedy="naive", linear_layer=linear_layer).indices.item()
    copies = (2, first, 33) if first not in (2, 33) else (5, first, 36)
    for tensor in problem[:3]:
        for copy in copies:
            tensor[copy] = tensor[first]
    subset = select(problem, 10, greedy=greedy, linear_layer=linear_layer, rounds=2,
                    epsilon=1e-30, generator=torch.Generator().manual_seed(0))
    assert subset.indices[0].item() == copies[0]
    if greedy == "rgreedy":  # one round ranks all copies, lowest index first
        assert subset.indices[:3].tolist() == sorted(copies)


@pytest.mark.parametrize("linear_layer", [False, True])
def test_a_class_with_one_sample_gets_that_sample(linear_layer):
    problem = make_problem(12)
    problem[2][:] = torch.where(problem[2] == 3, 0, problem[2])
    problem[2][17] = 3  # class 3 now has exactly one training sample
    options = dict(greedy="naive", mode="per_class", linear_layer=linear_layer)
    picks = select(problem, 8, **options).indices.tolist()
    assert 17 in picks
    assert picks == reference(problem, 8, **options)[0]


@pytest.mark.parametrize("linear_layer", [False, True])
def test_a_class_without_validation_samples_uses_the_whole_validation_set(linear_layer, caplog):
    problem = make_problem(13)
    problem[5][:] = torch.where(problem[5] == 2, 1, problem[5])
    options = dict(greedy="naive", mode="per_class", linear_layer=linear_layer)
    with caplog.at_level(logging.WARNING):
        subset = select(problem, 12, **options)
    assert subset.indices.tolist() == reference(problem, 12, **options)[0]
    warnings = [r for r in caplog.records if "no validation samples" in r.getMessage()]
    assert len(warnings) == 1 and "[2]" in warnings[0].getMessage()
    assert subset.info["classes_without_validation"] == 1


def test_class_budgets_by_largest_remainder():
    assert class_budgets([5, 3, 2], 5) == [3, 1, 1]  # 2.5, 1.5, 1.0: tie goes to class 0
    assert class_budgets([97, 2, 1], 3) == [1, 1, 1]  # at least one per non-empty class
    assert class_budgets([97, 2, 1], 2) == [2, 0, 0]  # fewer picks than classes
    assert class_budgets([10, 0, 10], 5) == [3, 0, 2]
    assert class_budgets([4, 4], 8) == [4, 4]


def test_class_budgets_sum_to_the_budget_and_match_the_reference():
    rng = random.Random(0)
    for _ in range(300):
        sizes = [rng.choice([0, 1, 2, 5, 30, 200]) for _ in range(rng.randint(1, 6))]
        if sum(sizes) == 0:
            continue
        budget = rng.randint(1, sum(sizes))
        budgets = class_budgets(sizes, budget)
        assert sum(budgets) == budget
        assert all(0 <= b <= n for b, n in zip(budgets, sizes, strict=True))
        assert budgets == reference_class_budgets(sizes, budget)
        if budget >= sum(1 for n in sizes if n):
            assert all(b >= 1 for b, n in zip(budgets, sizes, strict=True) if n)


def test_per_class_budgets_sum_to_k_in_a_selection():
    problem = make_problem(14, train=50)
    subset = select(problem, 17, mode="per_class", generator=torch.Generator().manual_seed(0))
    assert len(subset.indices) == 17 and len(set(subset.indices.tolist())) == 17
    sizes = torch.bincount(problem[2], minlength=4).tolist()
    picked = torch.bincount(problem[2][subset.indices], minlength=4).tolist()
    assert picked == class_budgets(sizes, 17)


def test_batch_budget_rounds_half_up_within_bounds():
    assert batch_budget(48, 32, 10) == 2  # 1.5 -> 2
    assert batch_budget(47, 32, 10) == 1
    assert batch_budget(15, 32, 10) == 1  # at least one batch
    assert batch_budget(1000, 32, 10) == 10  # at most every batch


def test_per_batch_returns_whole_batches_and_counts_the_short_last_one():
    problem = make_problem(15, train=41)  # batches of 4: ten full ones and one of 1 sample
    subset = select(problem, 41, mode="per_batch", batch_size=4, greedy="naive")
    assert subset.info["elements"] == 10  # round_half_up(41 / 4) = 10 of 11 batches
    assert subset.info["sample_count"] == len(subset.indices)
    batches = subset.indices // 4
    assert set(range(11)) - set(batches.tolist())  # exactly one batch left out
    for batch in set(batches.tolist()):
        members = [i for i in range(batch * 4, min(batch * 4 + 4, 41))]
        assert set(members) <= set(subset.indices.tolist())
    assert subset.info["sample_count"] in (37, 40)


def test_subset_format_and_info_are_json_scalars():
    problem = make_problem(16, dtype=torch.float32)
    subset = select(problem, 7, generator=torch.Generator().manual_seed(0))
    assert subset.indices.dtype == torch.int64 and subset.weights.dtype == torch.float32
    assert torch.equal(subset.weights, torch.ones(7))
    assert subset.info["sample_count"] == 7 and subset.info["candidates_per_step"] == 26
    json.dumps(subset.info)
    assert all(isinstance(v, (int, float, str, bool)) for v in subset.info.values())


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (dict(budget=0), "budget"), (dict(budget=41), "budget"), (dict(eta=-1.0), "eta"),
        (dict(greedy="lazy"), "greedy"), (dict(mode="per_sample"), "mode"),
        (dict(epsilon=1.0), "epsilon"), (dict(rounds=0), "rounds"),
        (dict(batch_size=0), "batch_size"), (dict(kernels="tpu"), "kernels"),
    ],
)
def test_bad_arguments_are_named(change, name):
    options = dict(budget=5, eta=0.1) | change
    with pytest.raises(ValueError, match=name):
        glister_select(*make_problem(17), options.pop("budget"), **options)


def test_bad_tensors_are_named():
    problem = make_problem(18)
    problem[2][0] = 4
    with pytest.raises(ValueError, match="train_labels"):
        select(problem, 5)
    problem = make_problem(18)
    problem[4] = problem[4][:, :3]
    with pytest.raises(ValueError, match="val_logits"):
        select(problem, 5)
    problem = make_problem(18)
    problem[0][3, 1] = float("nan")
    with pytest.raises(ValueError, match="train_embeddings"):
        select(problem, 5)


@pytest.mark.parametrize("mode", ["all", "per_class"])
@pytest.mark.parametrize("greedy", ["naive", "stochastic"])
def test_cuda_kernels_are_dispatched_for_naive_and_stochastic(mode, greedy, monkeypatch):
    calls = []

    def greedy_round(residuals, embeddings, val_logits, val_labels, val_embeddings, budget,
                     eta, linear_layer, greedy, candidates_per_step, seed):
        calls.append((len(residuals), budget, greedy, candidates_per_step, linear_layer))
        return torch.arange(budget), torch.zeros(budget)

    monkeypatch.setitem(sys.modules, "dsslab.kernels",
                        types.SimpleNamespace(greedy_round=greedy_round))
    problem = make_problem(19)
    subset = select(problem, 8, greedy=greedy, mode=mode, kernels="cuda", linear_layer=True)
    assert len(subset.indices) == 8 and subset.info["route"] == "cuda"
    assert sum(call[1] for call in calls) == 8
    assert all(call[2] == greedy and call[4] for call in calls)
    if mode == "all":
        assert calls == [(40, 8, greedy, 23 if greedy == "stochastic" else 40, True)]


def test_settings_default_to_per_class_and_per_batch_overrides_it():
    assert GlisterSettings().mode == "per_class"
    assert GlisterSettings(per_batch=True).mode == "per_batch"
    assert GlisterSettings(per_class=False).mode == "all"
    with pytest.raises(ValueError, match="greedy"):
        GlisterSettings(greedy="lazy")


def test_config_lists_exactly_the_settings_with_their_defaults():
    config = yaml.safe_load(CONFIG.read_text())
    defaults = GlisterSettings()
    assert list(config)[0] == "name" and config["name"] == "glister"
    assert config == {name: getattr(defaults, name) for name in defaults.__dataclass_fields__}
    assert config["select_every"] == 20 and config["eta"] is None


def make_context(problem, learning_rate=0.5, seed=0):
    features = Features(problem[0], problem[1], problem[2], problem[3], problem[4], problem[5])
    return SelectionContext(
        epoch=0, budget=9, num_train=len(problem[2]), train_labels=problem[2], num_classes=4,
        learning_rate=learning_rate, batch_size=8,
        generator=torch.Generator().manual_seed(seed), compute_features=lambda: features,
    )


def test_strategy_uses_the_learning_rate_when_eta_is_unset(caplog):
    problem = make_problem(20)
    strategy = STRATEGIES["glister"](GlisterSettings(greedy="naive", linear_layer=True))
    assert isinstance(strategy, GlisterStrategy) and strategy.needs_features
    with caplog.at_level(logging.INFO):
        subset = strategy.select(make_context(problem, learning_rate=0.7))
    expected = select(problem, 9, eta=0.7, greedy="naive", mode="per_class", linear_layer=True)
    assert subset.indices.tolist() == expected.indices.tolist()
    assert any("picked 9 of 40" in record.getMessage() for record in caplog.records)


def test_strategy_passes_its_settings_and_the_context_generator():
    problem = make_problem(21)
    settings = GlisterSettings(eta=0.2, per_batch=True, batch_size=None)
    subset = GlisterStrategy(settings).select(make_context(problem, seed=4))
    expected = select(problem, 9, eta=0.2, mode="per_batch", batch_size=8,
                      generator=torch.Generator().manual_seed(4))
    assert subset.indices.tolist() == expected.indices.tolist()
    assert subset.info["batch_size"] == 8
