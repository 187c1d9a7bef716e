import pytest
import torch
from omegaconf import OmegaConf

from dsslab.models import build_model


@pytest.mark.parametrize(("name", "shape", "embedding_dim"), [
    ("lenet", (1, 8, 8), 84), ("lenet", (1, 28, 28), 84), ("lenet", (3, 32, 32), 84),
    ("mlp", (1, 8, 8), 256), ("resnet18", (3, 32, 32), 512),
])
def test_models_expose_embedding_and_final_linear_layer(name, shape, embedding_dim):
    settings = OmegaConf.create({"name": name, "hidden": 256, "depth": 2})
    model = build_model(settings, shape, num_classes=7).eval()
    images = torch.randn(2, *shape)
    logits, embeddings = model.logits_and_embeddings(images)
    assert embeddings.shape == (2, embedding_dim) and logits.shape == (2, 7)
    assert torch.allclose(model.classifier(embeddings), logits)
    assert torch.allclose(model(images), logits)


def test_resnet18_is_the_cifar_variant():
    model = build_model(OmegaConf.create({"name": "resnet18"}), (3, 32, 32), num_classes=10)
    stem = model.features.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert isinstance(model.features.maxpool, torch.nn.Identity)
