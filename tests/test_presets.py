"""The experiment presets compose and run on a CPU with a small model and few epochs."""

import json

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def make_cifar_like_folder(root, classes=10, per_class=6):
    for split in ("train", "test"):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for number in range(per_class):
                Image.new("RGB", (32, 32), (25 * label, 8 * number, 100)).save(
                    folder / f"{number}.jpg")


def test_cifar10_resnet18_preset_runs_every_arm_on_cpu(cli, tmp_path):
    make_cifar_like_folder(tmp_path / "images")
    sweep = tmp_path / "sweep"
    result = cli("experiment=cifar10_resnet18", "dataset=imagefolder",
                 f"dataset.root={tmp_path / 'images'}", "dataset.cache=false", "model=lenet",
                 "epochs=2", "batch_size=16", "hardware=cpu", "hardware.threads=1",
                 "wandb.mode=disabled", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/summary.json"))]
    arms = sorted((run["strategy"], run["fraction"]) for run in runs)
    assert arms == [("full", 1.0), ("glister", 0.1), ("glister", 0.3), ("glister", 0.5),
                    ("random_online", 0.1), ("random_online", 0.3), ("random_online", 0.5)]
    assert all(run["epochs"] == 2 for run in runs)
    assert "| glister | 0.3 | completed |" in result.stdout


def test_cifar10_preset_sets_the_published_recipe(make_config):
    cfg = make_config("experiment=cifar10_resnet18", "+variant=glister_30")
    assert (cfg.model.name, cfg.dataset.name, cfg.epochs) == ("resnet18", "cifar10", 100)
    assert (cfg.optimizer.nesterov, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        True, 0.9, 5e-4)
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR")
    assert (cfg.strategy.name, cfg.fraction) == ("glister", 0.3)
