"""Runs that survive bad input and faults: resume, determinism, skewed data, failures."""

import json
import math

import pytest
import torch

from conftest import FAST
from dsslab.checkpoint import load_checkpoint
from dsslab.config import ConfigError
from dsslab.data.batches import SubsetBatches, _WorkerSeeder
from dsslab.data.splits import ImageSplits
from dsslab.selection import Subset
from dsslab.selection.strategy import Strategy, register
from dsslab.tracking import Tracker
from dsslab.train import train

TIMING_KEYS = ("time/", "lr")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timings(metrics):
    return [{key: value for key, value in epoch.items() if not key.startswith(TIMING_KEYS)}
            for epoch in metrics]


def glister_config(make_config, *extra):
    return make_config("strategy=glister", "strategy.select_every=3", "fraction=0.3",
                       "epochs=4", *FAST[1:], *extra)


def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(make_config, tmp_path,
                                                                monkeypatch):
    train(glister_config(make_config), tmp_path / "whole")

    log_epoch = Tracker.log_epoch

    def stop_during_epoch_three(self, metrics):
        if metrics["epoch"] == 3:
            raise KeyboardInterrupt("stopped by the test")
        log_epoch(self, metrics)

    monkeypatch.setattr(Tracker, "log_epoch", stop_during_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train(glister_config(make_config), tmp_path / "stopped")
    monkeypatch.setattr(Tracker, "log_epoch", log_epoch)
    assert len(read_jsonl(tmp_path / "stopped" / "metrics.jsonl")) == 2
    assert not (tmp_path / "stopped" / "summary.json").exists()

    train(glister_config(make_config, f"resume={tmp_path / 'stopped'}"), tmp_path / "unused")
    whole, _ = load_checkpoint(str(tmp_path / "whole"))
    resumed, _ = load_checkpoint(str(tmp_path / "stopped"))
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert torch.equal(whole["progress"]["subset"].indices, resumed["progress"]["subset"].indices)
    assert torch.equal(whole["progress"]["subset"].weights, resumed["progress"]["subset"].weights)
    assert without_timings(read_jsonl(tmp_path / "whole" / "metrics.jsonl")) == without_timings(
        read_jsonl(tmp_path / "stopped" / "metrics.jsonl"))
    assert json.loads((tmp_path / "stopped" / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(("override", "key"), [("fraction=0.5", "fraction"),
                                               ("strategy=random_online", "strategy.name"),
                                               ("strategy.eta=0.5", "strategy.eta")])
def test_resume_with_another_fraction_or_strategy_is_refused(make_config, tmp_path, override,
                                                             key):
    train(make_config("strategy=glister", "fraction=0.3", *FAST), tmp_path / "first")
    cfg = make_config("strategy=glister", "fraction=0.3", *FAST, override,
                      f"resume={tmp_path / 'first'}")
    with pytest.raises(ConfigError, match=f"cannot resume: {key} differs"):
        train(cfg, tmp_path / "second")


def test_resuming_a_finished_run_is_refused(make_config, tmp_path):
    train(make_config("strategy=random_online", *FAST), tmp_path / "done")
    cfg = make_config("strategy=random_online", *FAST, f"resume={tmp_path / 'done'}")
    with pytest.raises(ConfigError, match="already finished all 1 epochs"):
        train(cfg, tmp_path / "again")


def test_resume_from_a_missing_checkpoint_names_the_path(make_config, tmp_path):
    with pytest.raises(ConfigError, match="resume=.*nowhere"):
        train(make_config(*FAST, f"resume={tmp_path / 'nowhere'}"), tmp_path / "run")


def test_same_seed_gives_same_subsets_and_metrics_and_another_seed_differs(make_config,
                                                                           tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = make_config("strategy=glister", "strategy.select_every=1", "fraction=0.2",
                          "epochs=2", *FAST[1:], f"seed={seed}")
        train(cfg, tmp_path / name)
        runs[name] = (load_checkpoint(str(tmp_path / name))[0]["progress"]["subset"].indices,
                      without_timings(read_jsonl(tmp_path / name / "metrics.jsonl")))
    assert torch.equal(runs["a"][0], runs["b"][0]) and runs["a"][1] == runs["b"][1]
    assert not torch.equal(runs["a"][0], runs["c"][0]) and runs["a"][1] != runs["c"][1]


def test_loader_workers_give_the_same_batches_and_distinct_seeds():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 1, 4, 4).clone()
    labels = torch.arange(20)
    indices, weights = torch.arange(3, 17), torch.linspace(1, 2, 14)
    common = dict(batch_size=4, device="cpu", augment=True, mean=(0.0,), std=(1.0,), seed=3)
    in_process = list(SubsetBatches(images, labels, workers=0, **common).epoch(
        indices, weights, 2))
    with_workers = list(SubsetBatches(images, labels, workers=2, **common).epoch(
        indices, weights, 2))
    for expected, actual in zip(in_process, with_workers, strict=True):
        for left, right in zip(expected, actual):
            assert torch.equal(left, right)

    seeds = []
    for base, worker in ((3, 0), (3, 1), (4, 0)):
        _WorkerSeeder(base)(worker)
        seeds.append(torch.initial_seed())
    assert len(set(seeds)) == 3


def skewed_splits():
    """Nine classes of 111 training images and one class of 3; validation and test balanced."""
    generator = torch.Generator().manual_seed(0)

    def split(counts):
        labels = torch.cat([torch.full((count,), label) for label, count in enumerate(counts)])
        images = torch.randint(0, 256, (len(labels), 1, 8, 8), dtype=torch.uint8,
                               generator=generator)
        images[:, :, 0, :] = (labels * 25).to(torch.uint8).view(-1, 1, 1)  # learnable signal
        return images, labels

    train_images, train_labels = split([111] * 9 + [3])
    val_images, val_labels = split([5] * 10)
    test_images, test_labels = split([5] * 10)
    return ImageSplits(train_images, train_labels, val_images, val_labels, test_images,
                       test_labels, num_classes=10, mean=(0.5,), std=(0.25,))


def test_skewed_tiny_fraction_keeps_the_small_class_and_a_finite_loss(make_config, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr("dsslab.experiment.load_dataset", lambda settings, seed: skewed_splits())
    cfg = make_config("strategy=glister", "strategy.per_class=true", "fraction=0.01",
                      "epochs=2", "strategy.select_every=1", *FAST[1:])
    train(cfg, tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(math.isfinite(epoch["train/loss"]) and epoch["train/loss"] > 0
               for epoch in metrics)
    assert metrics[0]["subset/size"] == 10  # round(0.01 x 1,002) = 10: one per class
    assert metrics[0]["subset/class_9"] == 1


@register("first_class_only")
class FirstClassOnly(Strategy):
    """A test strategy: every sample of class 0 and nothing else."""

    def select(self, context):
        return Subset.uniform(torch.nonzero(context.train_labels == 0).flatten())


def test_subset_statistics_count_the_selected_indices(make_config, tmp_path):
    cfg = make_config("strategy=random_online", *FAST)
    cfg.strategy.name = "first_class_only"
    train(cfg, tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")[0]
    class_counts = {key: value for key, value in metrics.items()
                    if key.startswith("subset/class_")}
    assert class_counts == {"subset/class_0": 128} == {"subset/class_0": metrics["subset/size"]}


def test_a_nan_loss_stops_the_run_naming_epoch_and_step(make_config, tmp_path):
    cfg = make_config("strategy=full", "optimizer.lr=1e30", *FAST)
    with pytest.raises(FloatingPointError, match=r"at epoch 1, step \d+"):
        train(cfg, tmp_path)
    assert not (tmp_path / "summary.json").exists()
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"


def test_a_subset_smaller_than_a_batch_trains_one_step(make_config, tmp_path):
    cfg = make_config("strategy=random_online", "fraction=0.01", "batch_size=64", *FAST)
    train(cfg, tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")[0]
    assert metrics["subset/size"] == 13 and metrics["train/loss"] > 0

