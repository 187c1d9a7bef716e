"""Checks of a composed config, run before any data is touched.

Each section has a schema: the keys it may hold and, for each, the type and range allowed.
Errors name the key, the value and what is allowed.
"""

import dataclasses
import importlib
import inspect
import logging
import numbers
import re
import typing

from omegaconf import DictConfig, OmegaConf

from dsslab.selection import STRATEGIES

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config value that dsslab cannot run with."""


@dataclasses.dataclass
class TrainSchema:
    fraction: float
    epochs: int
    seed: int
    batch_size: int
    eval_batch_size: int
    resume: str | None
    scheduler_interval: str


@dataclasses.dataclass
class WandbSchema:
    mode: str
    project: str
    entity: str | None
    group: str | None
    tags: list
    init_timeout_s: float


@dataclasses.dataclass
class HardwareSchema:
    name: str
    device: str
    precision: str
    channels_last: str | bool
    compile: bool
    workers: int
    data_on_device: str | bool
    kernels: str
    threads: int | None


COMMON_DATASET = {"name": str, "val_fraction": float, "augment": bool}
MODEL_SCHEMAS = {"lenet": {"name": str}, "resnet18": {"name": str},
                 "mlp": {"name": str, "hidden": int, "depth": int}}
DATASET_SCHEMAS = {
    "digits": {**COMMON_DATASET, "root": str | None, "download": bool, "test_fraction": float},
    "fashion_mnist": {**COMMON_DATASET, "root": str, "download": bool},
    "cifar10": {**COMMON_DATASET, "root": str, "download": bool},
    "imagefolder": {**COMMON_DATASET, "root": str, "image_size": int, "channels": int,
                    "cache": bool},
}
CHOICES = {
    "scheduler_interval": ("step", "epoch"),
    "wandb.mode": ("offline", "online", "disabled"),
    "hardware.precision": ("auto", "fp32", "bf16"),
    "hardware.kernels": ("auto", "cuda", "torch"),
}
SECTIONS = {"optimizer", "scheduler", "wandb", "strategy", "model", "dataset", "hardware"}
TYPE_NAMES = {float: "a number", int: "an integer", str: "a string", bool: "true or false",
              list: "a list", type(None): "null"}


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first key whose value dsslab cannot run with."""
    check_schema("", cfg, TrainSchema, SECTIONS)
    check_range("fraction", cfg.fraction, low=0, low_open=True, high=1)
    for key in ("epochs", "batch_size", "eval_batch_size"):
        check_range(key, cfg[key], low=1)
    check_schema("wandb", cfg.wandb, WandbSchema)
    check_schema("hardware", cfg.hardware, HardwareSchema)
    for dotted, allowed in CHOICES.items():
        check_choice(dotted, OmegaConf.select(cfg, dotted), allowed)
    check_strategy(cfg.strategy)
    check_named_group("model", cfg.model, MODEL_SCHEMAS)
    check_named_group("dataset", cfg.dataset, DATASET_SCHEMAS)
    for key in ("model.hidden", "model.depth", "dataset.image_size"):
        if OmegaConf.select(cfg, key) is not None:
            check_range(key, OmegaConf.select(cfg, key), low=1)
    for key in ("dataset.val_fraction", "dataset.test_fraction"):
        if OmegaConf.select(cfg, key) is not None:
            check_range(key, OmegaConf.select(cfg, key), low=0, low_open=True,
                        high=1, high_open=True)
    if cfg.dataset.name == "imagefolder":
        check_choice("dataset.channels", cfg.dataset.channels, (1, 3))
    for node in ("optimizer", "scheduler"):
        check_target(node, cfg[node])
    check_optimizer(cfg.optimizer)
    check_hardware(cfg.hardware)
    warn_about_schedule(cfg)


def check_keys(prefix: str, node: DictConfig, allowed: set[str]) -> None:
    unknown = sorted(set(node.keys()) - allowed)
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown key {where!r}; allowed keys here: "
                          f"{', '.join(sorted(allowed))}")


def check_schema(prefix: str, node: DictConfig, schema, sections=frozenset()) -> None:
    """`node` holds the fields of `schema` (each of its declared type) and `sections` only."""
    hints = typing.get_type_hints(schema)
    check_keys(prefix, node, set(hints) | set(sections))
    for field in dataclasses.fields(schema):
        key = f"{prefix}.{field.name}" if prefix else field.name
        if field.name not in node:
            raise ConfigError(f"missing key {key!r}")
        check_type(key, node[field.name], hints[field.name])


def check_type(key: str, value, expected) -> None:
    """Accept ints for floats, reject bools for numbers, allow None only for Optional types."""
    options = typing.get_args(expected) if typing.get_origin(expected) else (expected,)
    for option in options:
        if option is type(None) and value is None:
            return
        if option is bool and isinstance(value, bool):
            return
        if option in (int, float) and is_number(value, integer=option is int):
            return
        if option is str and isinstance(value, str):
            return
        if option is list and OmegaConf.is_list(value):
            return
    names = " or ".join(TYPE_NAMES[option] for option in options)
    raise ConfigError(f"{key}={value!r} is not allowed: expected {names}")


def is_number(value, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or not integer


def check_range(key, value, low=None, high=None, low_open=False, high_open=False) -> None:
    """Numbers only, inside the interval; the message spells the interval out."""
    if high is None:
        allowed = f"a number {'>' if low_open else '>='} {low}"
    else:
        allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if is_number(value, integer=False):
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not (too_low or too_high):
            return
    raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")


def check_choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed: expected one of "
                          f"{', '.join(map(str, allowed))}")


def check_named_group(group: str, node: DictConfig, schemas: dict) -> None:
    """A known `name`, then only that choice's keys, each of its type."""
    check_choice(f"{group}.name", node.get("name"), tuple(schemas))
    schema = schemas[node.name]
    check_keys(group, node, set(schema))
    for key, expected in schema.items():
        if key not in node or OmegaConf.is_missing(node, key):
            raise ConfigError(f"{group}.{key} must be set: add {group}.{key}=<value> to the "
                              "command line")
        check_type(f"{group}.{key}", node[key], expected)


def check_strategy(node: DictConfig) -> None:
    """Known strategy, only its settings' keys, each of the declared type and sensible range."""
    check_choice("strategy.name", node.get("name"), tuple(sorted(STRATEGIES)))
    schema = STRATEGIES[node.name].settings_class
    check_keys("strategy", node, {field.name for field in dataclasses.fields(schema)})
    hints = typing.get_type_hints(schema)
    for key in node:
        check_type(f"strategy.{key}", node[key], hints[key])
    check_range("strategy.select_every", node.get("select_every", 1), low=1)
    check_range("strategy.warm_start_epochs", node.get("warm_start_epochs", 0), low=0)
    try:
        schema(**OmegaConf.to_container(node))
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None


def check_optimizer(node: DictConfig) -> None:
    """Build the optimizer on one dummy parameter, so bad values fail before data loads."""
    import torch
    from hydra.utils import instantiate

    try:
        instantiate(node, params=[torch.zeros(1, requires_grad=True)])
    except Exception as error:  # noqa: BLE001 - any construction error is a config error
        cause = error.__cause__ or error
        raise ConfigError(f"optimizer cannot be built from its config: {cause}") from None


def check_hardware(node: DictConfig) -> None:
    """A device this machine has, and CUDA kernels only where CUDA runs."""
    import torch

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(node.device)):
        raise ConfigError(f"hardware.device={node.device!r} is not allowed: expected auto, cpu, "
                          "cuda or cuda:N")
    if node.threads is not None:
        check_range("hardware.threads", node.threads, low=1)
    check_range("hardware.workers", node.workers, low=0)
    if not torch.cuda.is_available():
        for key, value in (("hardware.device", node.device), ("hardware.kernels", node.kernels)):
            if str(value).startswith("cuda"):
                raise ConfigError(f"{key}={value!r} but no CUDA device is available here; use "
                                  "hardware=cpu or hardware=auto")


def warn_about_schedule(cfg: DictConfig) -> None:
    """Settings that are legal but make a subset run train on all data, or select only once."""
    strategy = cfg.strategy
    if strategy.name == "full":
        return
    if strategy.warm_start_epochs >= cfg.epochs:
        log.warning("strategy.warm_start_epochs=%d >= epochs=%d: every epoch trains on all data "
                    "and no selection round runs", strategy.warm_start_epochs, cfg.epochs)
    elif strategy.select_every >= cfg.epochs - strategy.warm_start_epochs and cfg.epochs > 1:
        log.warning("strategy.select_every=%d: with epochs=%d the subset is selected once and "
                    "never again; short runs want select_every of 2 or 3",
                    strategy.select_every, cfg.epochs)


def check_target(node_name: str, node: DictConfig) -> None:
    """`_target_` imports, and every other key is a parameter of it."""
    target = node.get("_target_")
    try:
        module_name, attribute = str(target).rsplit(".", 1)
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ValueError, ImportError, AttributeError) as error:
        raise ConfigError(f"{node_name}._target_={target!r} cannot be imported: {error}") from None
    parameters = inspect.signature(factory).parameters
    for key in node:
        if not key.startswith("_") and key not in parameters:
            raise ConfigError(f"unknown key '{node_name}.{key}': {target} takes "
                              f"{', '.join(p for p in parameters if p != 'self')}")
