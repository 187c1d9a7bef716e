"""CRAIG and GRAD-MATCH rows for benchmarks/selection.py.

selection.py picks them up with:

    from suite_cases import ROWS as SUITE_ROWS, SELECTORS as SUITE_SELECTORS
    SELECTORS.update(SUITE_SELECTORS)
    CASES += [Case(**row) for row in SUITE_ROWS]

Each selector receives selection.py's features tuple (train embeddings, logits, labels, then the
same for validation), the budget and a seeded generator, and returns a Subset.
"""


def run_craig(features, budget, generator, **options):
    """CRAIG through the tensor-level API (deterministic: no generator needed)."""
    from dsslab.selection.craig import craig_select

    train_embeddings, train_logits, train_labels = features[:3]
    return craig_select(train_embeddings, train_logits, train_labels, budget, **options)


def run_gradmatch(features, budget, generator, **options):
    """GRAD-MATCH through the tensor-level API; the generator only drives the budget fill."""
    from dsslab.selection.gradmatch import gradmatch_select

    train_embeddings, train_logits, train_labels, val_embeddings, val_logits, val_labels = (
        features
    )
    return gradmatch_select(
        train_embeddings, train_logits, train_labels, budget, val_embeddings=val_embeddings,
        val_logits=val_logits, val_labels=val_labels, generator=generator, **options,
    )


SELECTORS = {"craig": run_craig, "gradmatch": run_gradmatch}


def suite_rows() -> list[dict]:
    """Per-class and per-batch rows at CIFAR-10 scale, plus the CIFAR-100 per-class bias case."""
    bias, last = {"linear_layer": False}, {"linear_layer": True}
    batches = {"per_batch": True, "batch_size": 32}
    rows = []
    for selector in ("craig", "gradmatch"):
        for fraction in (0.1, 0.3):
            for gradient in (bias, last):
                rows.append({"selector": selector, "classes": 10, "fraction": fraction,
                             "options": dict(gradient)})
                rows.append({"selector": selector, "classes": 10, "fraction": fraction,
                             "options": {**gradient, **batches}})
        rows.append({"selector": selector, "classes": 100, "fraction": 0.1,
                     "options": dict(bias)})
    rows.append({"selector": "gradmatch", "classes": 10, "fraction": 0.1,
                 "options": {"valid": True, **bias}})
    return rows


ROWS = suite_rows()
