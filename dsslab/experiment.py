"""One training job, read top to bottom: setup, the epoch loop, the final test."""

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dsslab.checkpoint import (CHECKPOINT_NAME, check_not_finished, check_resume_matches,
                               load_checkpoint, save_checkpoint)
from dsslab.data import load_dataset
from dsslab.data.batches import SubsetBatches, epoch_generator
from dsslab.engine import evaluate, train_epoch
from dsslab.hardware import resolve_hardware
from dsslab.models import build_model
from dsslab.schedulers import build_scheduler, planned_steps
from dsslab.selection import STRATEGIES, Features, SelectionContext, Subset, budget_for
from dsslab.selection.schedule import first_selection_epoch, is_selection_epoch
from dsslab.tracking import Tracker

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_strategy(settings):
    strategy_class = STRATEGIES[settings.name]
    return strategy_class(strategy_class.settings_class(**OmegaConf.to_container(settings)))


class Experiment:
    """Trains one model on the subsets its strategy picks, logging every epoch."""

    def __init__(self, cfg, run_dir: Path, identity: dict):
        self.cfg = cfg
        self.identity = identity
        self.val = None  # the latest validation pass, reused by the next selection round
        self.config = OmegaConf.to_container(cfg, resolve=True)
        seed_everything(cfg.seed)
        resumed = self._load_resume_state()
        self.run_dir = Path(self.resume_state["run_dir"]) if resumed else Path(run_dir)
        self.data = load_dataset(cfg.dataset, cfg.seed)
        self.hardware = resolve_hardware(cfg.hardware, self.data.train_images.nbytes * 2)
        self.num_train = len(self.data.train_labels)
        self._place_data()
        self._build_model_and_optimizer()
        self.tracker = Tracker(self.run_dir, identity, cfg.wandb, self.config, resumed=resumed)
        self.state = {"epoch": 0, "elapsed_s": 0.0, "best_val_acc": 0.0, "steps": 0,
                      "subset": None, "last_selection_epoch": None, "history": []}
        if resumed:
            self._restore()

    def _load_resume_state(self) -> bool:
        self.resume_state = None
        if not self.cfg.resume:
            return False
        self.resume_state, _ = load_checkpoint(self.cfg.resume)
        check_resume_matches(self.resume_state["config"], self.config)
        check_not_finished(self.resume_state, self.cfg.epochs, self.cfg.resume)
        return True

    def _place_data(self) -> None:
        if self.hardware.data_on_device:
            self.data = self.data.to(self.hardware.device)
        self.batches = SubsetBatches(
            self.data.train_images, self.data.train_labels, batch_size=self.cfg.batch_size,
            device=self.hardware.device, augment=self.cfg.dataset.augment,
            mean=self.data.mean, std=self.data.std, seed=self.cfg.seed,
            workers=0 if self.hardware.data_on_device else self.hardware.workers)

    def _build_model_and_optimizer(self) -> None:
        model = build_model(self.cfg.model, self.data.image_shape, self.data.num_classes)
        model = model.to(self.hardware.device)
        if self.hardware.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.train_model = torch.compile(model) if self.hardware.compile else model
        self.optimizer = instantiate(self.cfg.optimizer, params=model.parameters())
        self.strategy = build_strategy(self.cfg.strategy)
        self.budget = budget_for(self.cfg.fraction, self.num_train)
        steps = planned_steps(self.strategy, self.cfg.epochs, self.budget, self.num_train,
                              self.cfg.batch_size)
        self.total_steps = steps if self.cfg.scheduler_interval == "step" else self.cfg.epochs
        self.scheduler = build_scheduler(self.cfg.scheduler, self.optimizer, self.total_steps)

    def _restore(self) -> None:
        saved = self.resume_state
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = saved["progress"]
        self.tracker.truncate_metrics(self.state["epoch"])
        log.info("resumed from %s after epoch %d", self.run_dir, self.state["epoch"])

    def run(self) -> dict:
        """Train the remaining epochs, then test; returns the summary."""
        for epoch in range(self.state["epoch"] + 1, self.cfg.epochs + 1):
            metrics = self.run_epoch(epoch)
            self.tracker.log_epoch(metrics)
            self.save()
            log.info("epoch %d: val/acc %.4f, train/loss %.4f, %d samples, %.2f s (selection "
                     "%.2f s)", epoch, metrics["val/acc"], metrics["train/loss"],
                     metrics["subset/size"], metrics["time/epoch_s"],
                     metrics["time/selection_s"])
        summary = self.summarize()
        self.tracker.complete(summary)
        return summary

    def run_epoch(self, epoch: int) -> dict:
        started = self._clock()
        subset, selection_s, selected_now = self.subset_for(epoch)
        selected = time.perf_counter()
        steps_left = self.total_steps - self.state["steps"]
        result = train_epoch(self.train_model, self.optimizer, self._per_step_scheduler(),
                             self.batches.epoch(subset.indices, subset.weights, epoch),
                             self.hardware, epoch, steps_left)
        if self.cfg.scheduler_interval == "epoch":
            self.scheduler.step()
        trained = self._clock()
        self.val = evaluate(self.model, self.data.val_images, self.data.val_labels,
                            self.cfg.eval_batch_size, self.hardware, self.data.mean, self.data.std)
        ended = self._clock()
        self.state["steps"] += result.steps
        self.state["epoch"] = epoch
        self.state["elapsed_s"] += ended - started
        self.state["best_val_acc"] = max(self.state["best_val_acc"], self.val.accuracy)
        return {
            "epoch": epoch, "train/loss": result.loss, "train/acc": result.accuracy,
            "val/loss": self.val.loss, "val/acc": self.val.accuracy,
            "time/epoch_s": ended - started, "time/selection_s": selection_s,
            "time/train_s": trained - selected, "time/eval_s": ended - trained,
            "time/elapsed_s": self.state["elapsed_s"],
            "subset/size": len(subset.indices),
            "subset/fraction": len(subset.indices) / self.num_train,
            "selection/ran": selected_now,
            "lr": self.optimizer.param_groups[0]["lr"],
            **(self._class_counts(subset) if selected_now else {}),
        }

    def _per_step_scheduler(self):
        return self.scheduler if self.cfg.scheduler_interval == "step" else None

    def _clock(self) -> float:
        self.hardware.synchronize()
        return time.perf_counter()

    def subset_for(self, epoch: int) -> tuple[Subset, float, bool]:
        """The subset this epoch trains on, its selection time, and whether it is new."""
        if epoch < first_selection_epoch(self.strategy):
            return Subset.uniform(torch.arange(self.num_train)), 0.0, False
        if self.state["subset"] is not None and not is_selection_epoch(self.strategy, epoch):
            return self.state["subset"], 0.0, False
        started = self._clock()
        subset = self.strategy.select(self.selection_context(epoch))
        selection_s = self._clock() - started
        self.state["subset"] = Subset(subset.indices.cpu(), subset.weights.cpu(), subset.info)
        self.state["last_selection_epoch"] = epoch
        self.state["history"].append({"epoch": epoch, "size": len(subset.indices),
                                      "seconds": selection_s, **subset.info})
        log.info("selection at epoch %d took %.3f s: %d of %d samples (%s)", epoch, selection_s,
                 len(subset.indices), self.num_train, self.strategy.settings.name)
        return self.state["subset"], selection_s, True

    def selection_context(self, epoch: int) -> SelectionContext:
        return SelectionContext(
            epoch=epoch, budget=self.budget, num_train=self.num_train,
            train_labels=self.data.train_labels.cpu(), num_classes=self.data.num_classes,
            learning_rate=self.optimizer.param_groups[0]["lr"], batch_size=self.cfg.batch_size,
            generator=epoch_generator(self.cfg.seed, epoch, 2),
            compute_features=self.features, kernels=self.hardware.kernels)

    def features(self) -> Features:
        """Embeddings and logits of train and validation samples under the current model.

        The validation pass of the previous epoch saw this same model, so it is reused.
        """
        train = evaluate(self.model, self.data.train_images, self.data.train_labels,
                         self.cfg.eval_batch_size, self.hardware, self.data.mean, self.data.std)
        val = self.val or evaluate(
            self.model, self.data.val_images, self.data.val_labels, self.cfg.eval_batch_size,
            self.hardware, self.data.mean, self.data.std)
        return Features(train.embeddings, train.logits, self.data.train_labels,
                        val.embeddings, val.logits, self.data.val_labels)

    def _class_counts(self, subset: Subset) -> dict:
        """Per-class sample counts of the selected indices (classes with none are left out)."""
        labels = self.data.train_labels.cpu()[subset.indices]
        counts = torch.bincount(labels, minlength=self.data.num_classes).tolist()
        return {f"subset/class_{label}": count for label, count in enumerate(counts) if count}

    def save(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT_NAME, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "config": self.config,
            "progress": self.state, "run_dir": str(self.run_dir)})

    def summarize(self) -> dict:
        test = evaluate(self.model, self.data.test_images, self.data.test_labels,
                        self.cfg.eval_batch_size, self.hardware, self.data.mean, self.data.std)
        history = self.tracker.read_metrics()
        return {
            "strategy": self.strategy.settings.name, "fraction": self.identity["fraction"],
            "effective_fraction": float(np.mean([m["subset/fraction"] for m in history])),
            "seed": self.cfg.seed, "epochs": self.cfg.epochs,
            "dataset": self.cfg.dataset.name, "model": self.cfg.model.name,
            "val/acc_best": max(m["val/acc"] for m in history),
            "val/acc_final": history[-1]["val/acc"],
            "test/loss": test.loss, "test/acc": test.accuracy,
            "time/total_s": history[-1]["time/elapsed_s"],
            "time/selection_total_s": sum(m["time/selection_s"] for m in history),
            "time/train_total_s": sum(m["time/train_s"] for m in history),
            "time/epoch_mean_s": float(np.mean([m["time/epoch_s"] for m in history])),
            "selection/rounds": len(self.state["history"]),
        }
