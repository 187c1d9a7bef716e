"""Learning-rate schedules sized by the steps a run will actually take on its subsets."""

import importlib
import inspect

from hydra.utils import instantiate

from dsslab.data.batches import steps_per_epoch
from dsslab.selection.schedule import planned_subset_size


def planned_steps(strategy, epochs: int, budget: int, num_train: int, batch_size: int) -> int:
    """Optimizer steps over the whole run: full-data epochs while warming up, subset ones after."""
    return sum(steps_per_epoch(planned_subset_size(strategy, epoch, budget, num_train), batch_size)
               for epoch in range(1, epochs + 1))


def build_scheduler(settings, optimizer, total_steps: int):
    """Instantiate the configured scheduler; fill T_max with the run's length when left unset."""
    module_name, name = settings._target_.rsplit(".", 1)
    parameters = inspect.signature(getattr(importlib.import_module(module_name), name)).parameters
    extra = {}
    if "T_max" in parameters and "T_max" not in settings:
        extra["T_max"] = max(1, total_steps)
    return instantiate(settings, optimizer=optimizer, **extra)
