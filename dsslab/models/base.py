"""Networks that expose their penultimate embedding and final linear layer."""

import torch
from torch import nn


class EmbeddingClassifier(nn.Module):
    """A feature extractor followed by one linear layer.

    Selection needs the embedding e (input of the last layer) and the last layer itself, so
    every dsslab model is this pair: logits = classifier(embed(x)).
    """

    def __init__(self, features: nn.Module, embedding_dim: int, num_classes: int):
        super().__init__()
        self.features = features
        self.embedding_dim = embedding_dim
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(images))

    def logits_and_embeddings(self, images: torch.Tensor):
        embeddings = self.embed(images)
        return self.classifier(embeddings), embeddings
