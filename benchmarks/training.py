"""Training benchmark: how epoch time scales with the subset fraction.

    python benchmarks/training.py --root data/cifar10-jpeg [--model resnet18] [--epochs 3]
        [--hardware cuda] [--fractions 0.1 0.3 0.5]

Runs full data, then GLISTER at each fraction, on an image folder (CIFAR-10 as JPEGs is
root/train/<class>/ and root/test/<class>/), and prints per run the mean train, eval and
selection seconds per epoch (the first epoch, which pays for warm-up and compilation, is left
out when there are more), the epoch time relative to full data, and the accuracies.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_module

from dsslab.train import train


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="image folder with train/ and test/")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--hardware", default="auto")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--override", action="append", default=[],
                        help="extra Hydra overrides, e.g. hardware.compile=true")
    return parser.parse_args()


def run(arguments, strategy: str, fraction: float, out: Path) -> list[dict]:
    overrides = [f"strategy={strategy}", f"fraction={fraction}", f"model={arguments.model}",
                 "dataset=imagefolder", f"dataset.root={arguments.root}",
                 f"hardware={arguments.hardware}", f"epochs={arguments.epochs}",
                 f"batch_size={arguments.batch_size}", "eval_batch_size=2048",
                 "strategy.select_every=1", "wandb.mode=disabled", *arguments.override]
    with initialize_config_module("dsslab.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    train(cfg, out)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def mean_of(metrics: list[dict], key: str) -> float:
    steady = metrics[1:] if len(metrics) > 1 else metrics
    return statistics.mean(epoch[key] for epoch in steady)


def main() -> None:
    arguments = parse_arguments()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = [("full", 1.0)] + [("glister", fraction) for fraction in arguments.fractions]
        for index, (strategy, fraction) in enumerate(runs):
            metrics = run(arguments, strategy, fraction, Path(scratch) / str(index))
            rows.append((strategy, fraction, metrics))
    full_epoch = mean_of(rows[0][2], "time/epoch_s")
    print(f"{'run':<14}{'epoch s':>9}{'train s':>9}{'eval s':>8}{'select s':>10}"
          f"{'x full':>8}{'val/acc':>9}")
    for strategy, fraction, metrics in rows:
        epoch = mean_of(metrics, "time/epoch_s")
        print(f"{strategy + ' ' + format(fraction, 'g'):<14}{epoch:>9.2f}"
              f"{mean_of(metrics, 'time/train_s'):>9.2f}{mean_of(metrics, 'time/eval_s'):>8.2f}"
              f"{mean_of(metrics, 'time/selection_s'):>10.2f}{epoch / full_epoch:>8.2f}"
              f"{metrics[-1]['val/acc']:>9.4f}")


if __name__ == "__main__":
    main()
