"""GLISTER-ONLINE selection: the tensor-level API `glister_select` and the `glister` strategy.

The rule (see DESIGN.md): greedily pick the training samples whose last-layer gradient best
aligns with the mean validation gradient, moving the validation logits by one SGD step of size
eta on each pick's gradient. The per-step scoring lives in `glister_objectives.py`, the greedy
loops in `greedy.py` and the gradient algebra in `gradients.py`.
"""

import logging
import math
from dataclasses import dataclass

import torch
from threadpoolctl import threadpool_limits

from dsslab.selection import glister_objectives as objectives
from dsslab.selection import greedy as greedy_search
from dsslab.selection.base import Features, SelectionContext, Subset
from dsslab.selection.budget_split import batch_budget, class_budgets
from dsslab.selection.glister_arguments import check_arguments
from dsslab.selection.gradients import group_sums, residuals
from dsslab.selection.strategy import GradientStrategy, StrategySettings, register

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One selection problem: train factors and the validation samples they are scored on."""

    residuals: torch.Tensor  # N x C
    embeddings: torch.Tensor  # N x D
    labels: torch.Tensor  # N
    val_logits: torch.Tensor  # M x C
    val_labels: torch.Tensor  # M
    val_embeddings: torch.Tensor  # M x D

    def restrict(self, train_rows: torch.Tensor, val_rows: torch.Tensor) -> "Problem":
        """The problem on a subset of the training and validation samples."""
        return Problem(
            self.residuals[train_rows], self.embeddings[train_rows], self.labels[train_rows],
            self.val_logits[val_rows], self.val_labels[val_rows], self.val_embeddings[val_rows],
        )


@dataclass(frozen=True)
class Options:
    """How the greedy runs: the knobs of `glister_select` other than the data and budget."""

    eta: float
    greedy: str
    linear_layer: bool
    generator: torch.Generator
    epsilon: float
    rounds: int
    kernels: str


def glister_select(
    train_embeddings: torch.Tensor,
    train_logits: torch.Tensor,
    train_labels: torch.Tensor,
    val_embeddings: torch.Tensor,
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    budget: int,
    *,
    eta: float,
    greedy: str = "stochastic",
    mode: str = "all",
    linear_layer: bool = False,
    generator: torch.Generator | None = None,
    epsilon: float = 0.01,
    rounds: int = 15,
    batch_size: int = 32,
    kernels: str = "torch",
) -> Subset:
    """Select `budget` training samples by GLISTER-ONLINE; weights are all 1.

    eta: step size of the validation-logit update. greedy: "naive" | "stochastic" (draws
    floor((N / k) ln(1 / epsilon)) candidates per step) | "rgreedy" (`rounds` rounds).
    mode: "all"; "per_class" (each class against its own validation samples, or the whole
    validation set for a class that has none; largest-remainder class budgets); "per_batch"
    (elements are consecutive blocks of `batch_size` samples; k / batch_size blocks rounded half
    up). linear_layer: full last-layer gradients instead of bias-only. The only randomness
    (stochastic greedy) comes from `generator` (the default generator when None).
    kernels="cuda" runs naive and stochastic greedy of modes "all" and "per_class" with
    dsslab.kernels; everything else runs on the CPU. Returns indices in pick order (per_class:
    class by class; per_batch: the picked blocks' samples) and JSON-scalar info.
    """
    check_arguments(
        train_embeddings, train_logits, train_labels, val_embeddings, val_logits, val_labels,
        budget=budget, eta=eta, greedy=greedy, mode=mode, epsilon=epsilon, rounds=rounds,
        batch_size=batch_size, kernels=kernels, generator=generator,
    )
    on_kernels = kernels == "cuda" and greedy != "rgreedy" and mode != "per_batch"
    device = train_logits.device if on_kernels else torch.device("cpu")
    train = [t.to(device) for t in (train_embeddings, train_logits, train_labels)]
    val = [t.to(device) for t in (val_logits, val_labels, val_embeddings)]
    problem = Problem(residuals(train[1], train[2]), train[0], train[2], *val)
    options = Options(
        float(eta), greedy, bool(linear_layer), generator or torch.default_generator,
        float(epsilon), int(rounds), kernels,
    )
    # NumPy's BLAS runs only the step loops' small products. With more than one thread its
    # spinning workers fight torch's OpenMP workers for the cores (measured 8x slower on two
    # cores), so it gets one; torch keeps the caller's setting for the large products.
    with threadpool_limits(limits=1, user_api="blas"):
        if mode == "per_batch":
            indices, info = select_batches(problem, budget, batch_size, options)
        elif mode == "per_class":
            indices, info = select_per_class(problem, budget, options)
        else:
            indices, info = select_samples(problem, budget, options)
    info.update(sample_count=len(indices), greedy=greedy, mode=mode)
    return Subset.uniform(indices.cpu(), **info)


def select_samples(problem: Problem, budget: int, options: Options) -> tuple[torch.Tensor, dict]:
    """The rule with samples as elements: mode "all", or one class of mode "per_class"."""
    size = len(problem.residuals)
    info = {"elements": budget, "element_count": size}
    candidates = size
    if options.greedy == "stochastic":
        candidates = greedy_search.candidates_per_step(size, budget, options.epsilon)
        info["candidates_per_step"] = candidates
    if options.kernels == "cuda" and options.greedy != "rgreedy":
        return run_kernels(problem, budget, candidates, options), info | {"route": "cuda"}

    objective, route = sample_objective(problem, budget, candidates, options)
    result = maximise(objective, budget, candidates, options)
    return result.picks, info | {"route": route}


def sample_objective(problem: Problem, budget: int, candidates: int, options: Options):
    """The objective for samples as elements, and the name of the route it scores with."""
    if not options.linear_layer:
        objective = objectives.BiasObjective(
            problem.residuals, problem.val_logits, problem.val_labels, options.eta
        )
        return objective, "bias"
    size, classes = problem.residuals.shape
    steps, scored = budget, size
    if options.greedy == "stochastic":
        scored = candidates
    elif options.greedy == "rgreedy":
        steps = min(options.rounds, budget)
    route = objectives.choose_route(
        size, len(problem.val_labels), classes, problem.embeddings.shape[1], steps, scored,
        problem.residuals.element_size(),
    )
    validation = objectives.ValidationLogits(
        problem.val_logits, problem.val_labels, problem.val_embeddings,
        problem.residuals.dtype, weight_gradient=route == "weight",
    )
    objective = objectives.LastLayerObjective(
        problem.residuals, problem.embeddings, validation, options.eta, route
    )
    return objective, route


def maximise(objective, budget: int, candidates: int, options: Options):
    """Run the configured greedy variant on an objective."""
    if options.greedy == "naive":
        return greedy_search.naive(objective, budget)
    if options.greedy == "rgreedy":
        return greedy_search.rgreedy(objective, budget, options.rounds)
    return greedy_search.stochastic(objective, budget, candidates, options.generator)


def run_kernels(problem: Problem, budget: int, candidates: int, options: Options):
    """Naive or stochastic greedy on the GPU through dsslab.kernels."""
    from dsslab.kernels import greedy_round

    seed = int(torch.randint(0, 2**62, (1,), generator=options.generator))
    indices, _ = greedy_round(
        problem.residuals, problem.embeddings, problem.val_logits, problem.val_labels,
        problem.val_embeddings, budget, options.eta, options.linear_layer, options.greedy,
        candidates, seed,
    )
    return indices.to(torch.int64)


def select_per_class(problem: Problem, budget: int, options: Options):
    """Each class against its own validation samples, with largest-remainder class budgets.

    A class without validation samples is scored against the whole validation set.
    """
    classes = problem.residuals.shape[1]
    members = [torch.nonzero(problem.labels == c).flatten() for c in range(classes)]
    budgets = class_budgets([len(rows) for rows in members], budget)
    all_val = torch.arange(len(problem.val_labels), device=problem.val_labels.device)
    picks, candidates, routes, missing = [], 0, set(), []
    for cls, class_budget in enumerate(budgets):
        if class_budget == 0:
            continue
        val_rows = torch.nonzero(problem.val_labels == cls).flatten()
        if len(val_rows) == 0:
            missing.append(cls)
            val_rows = all_val
        local, info = select_samples(problem.restrict(members[cls], val_rows), class_budget,
                                     options)
        picks.append(members[cls][local.to(members[cls].device)])
        candidates = max(candidates, info.get("candidates_per_step", 0))
        routes.add(info["route"])
    if missing:
        logger.warning("classes %s have no validation samples; each is scored against the "
                       "whole validation set", missing)
    info = {"elements": budget, "element_count": len(problem.labels),
            "route": "+".join(sorted(routes)), "classes_without_validation": len(missing)}
    if options.greedy == "stochastic":
        info["candidates_per_step"] = candidates
    return torch.cat(picks), info


def select_batches(problem: Problem, budget: int, batch_size: int, options: Options):
    """Elements are the mean gradients of consecutive blocks of `batch_size` samples."""
    size = len(problem.residuals)
    num_batches = math.ceil(size / batch_size)
    batches = batch_budget(budget, batch_size, num_batches)
    candidates = greedy_search.candidates_per_step(num_batches, batches, options.epsilon)
    if options.linear_layer:
        validation = objectives.ValidationLogits(
            problem.val_logits, problem.val_labels, problem.val_embeddings,
            problem.residuals.dtype, weight_gradient=True,
        )
        objective = objectives.BatchObjective(
            problem.residuals, problem.embeddings, validation, options.eta, batch_size
        )
    else:
        objective = objectives.BiasObjective(
            batch_means(problem.residuals, batch_size, num_batches), problem.val_logits,
            problem.val_labels, options.eta,
        )
    result = maximise(objective, batches, candidates, options)
    samples = (result.picks[:, None] * batch_size + torch.arange(batch_size)).flatten()
    info = {"elements": batches, "element_count": num_batches, "batch_size": batch_size,
            "route": "batch-factors" if options.linear_layer else "bias"}
    if options.greedy == "stochastic":
        info["candidates_per_step"] = candidates
    return samples[samples < size], info


def batch_means(sample_residuals: torch.Tensor, batch_size: int, num_batches: int):
    """Mean residual of each block of `batch_size` consecutive samples, num_batches x C."""
    batch_ids = torch.arange(len(sample_residuals)) // batch_size
    sizes = torch.bincount(batch_ids, minlength=num_batches).to(sample_residuals)
    sums, _ = group_sums(sample_residuals, None, batch_ids, num_batches, linear_layer=False)
    return sums / sizes[:, None]


@dataclass
class GlisterSettings(StrategySettings):
    """Knobs of the `glister` strategy (conf/strategy/glister.yaml).

    eta: step size of the validation-logit update (None: the optimizer's learning rate).
    batch_size: mini-batch size of per-batch mode (None: the training batch size).
    per_class is the default because selecting over all classes at once lets each round drop
    whole classes (the validation gradient points at a few classes), which makes training
    oscillate; per_batch=true selects whole mini-batches across classes and overrides it.
    """

    name: str = "glister"
    eta: float | None = None
    linear_layer: bool = False
    greedy: str = "stochastic"
    epsilon: float = 0.01
    rounds: int = 15
    per_class: bool = True
    per_batch: bool = False
    batch_size: int | None = None

    def __post_init__(self):
        if self.greedy not in greedy_search.VARIANTS:
            raise ValueError(f"strategy.greedy must be one of {greedy_search.VARIANTS}, "
                             f"got {self.greedy!r}")
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"strategy.epsilon must be in (0, 1), got {self.epsilon!r}")
        if self.rounds < 1:
            raise ValueError(f"strategy.rounds must be >= 1, got {self.rounds!r}")
        if self.eta is not None and not self.eta >= 0.0:
            raise ValueError(f"strategy.eta must be >= 0 or null, got {self.eta!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"strategy.batch_size must be >= 1 or null, got {self.batch_size!r}")

    @property
    def mode(self) -> str:
        """The selection mode these settings ask for."""
        return "per_batch" if self.per_batch else "per_class" if self.per_class else "all"


@register("glister")
class GlisterStrategy(GradientStrategy):
    """GLISTER-ONLINE: greedy selection against the validation gradient every round."""

    settings_class = GlisterSettings
    label = "GLISTER"

    def select_from(self, features: Features, context: SelectionContext) -> Subset:
        settings = self.settings
        return glister_select(
            features.train_embeddings, features.train_logits, features.train_labels,
            features.val_embeddings, features.val_logits, features.val_labels, context.budget,
            eta=context.learning_rate if settings.eta is None else settings.eta,
            greedy=settings.greedy, mode=settings.mode, linear_layer=settings.linear_layer,
            generator=context.generator, epsilon=settings.epsilon, rounds=settings.rounds,
            batch_size=settings.batch_size or context.batch_size, kernels=context.kernels,
        )
