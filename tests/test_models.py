import torch

from skcal.embedding import embeddings_and_logits
from skcal.models import MLP


def test_mlp_shapes_embedding_and_dropout():
    module = MLP(n_features=7, n_classes=3, hidden=(16, 8), dropout=0.5)
    X = torch.randn(5, 7)
    module.eval()
    embeddings, logits = embeddings_and_logits(module, X)
    assert embeddings.shape == (5, 8) and logits.shape == (5, 3)
    torch.testing.assert_close(logits, module.head(embeddings))
    assert sum(isinstance(layer, torch.nn.Dropout) for layer in module.modules()) == 2
    assert MLP(4, 2, hidden=()).embed(torch.ones(1, 4)).shape == (1, 4)
