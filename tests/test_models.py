import torch

from skcal.models import MLP
from skcal.utils.embedding import embeddings_and_logits


def test_mlp_shapes_embedding_and_dropout():
    module = MLP(n_features=7, n_classes=3, hidden=(16, 8), dropout=0.5)
    X = torch.randn(5, 7)
    module.eval()
    embeddings, logits = embeddings_and_logits(module, X)
    assert embeddings.shape == (5, 8) and logits.shape == (5, 3)
    torch.testing.assert_close(logits, module.head(embeddings))
    assert sum(isinstance(layer, torch.nn.Dropout) for layer in module.modules()) == 2
    assert MLP(4, 2, hidden=()).embed(torch.ones(1, 4)).shape == (1, 4)


def test_resnet18_cifar_form():
    from skcal.models import ResNet18

    module = ResNet18(in_channels=3, n_classes=10)
    assert sum(p.numel() for p in module.parameters()) == 11_173_962  # the CIFAR ResNet-18's parameter count
    module.eval()
    for shape in ((2, 3, 32, 32), (2, 3, 28, 28)):
        embeddings, logits = embeddings_and_logits(module, torch.randn(shape))
        assert embeddings.shape == (2, 512) and logits.shape == (2, 10)
    assert ResNet18(in_channels=1, n_classes=7)(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_resnet18_trains_through_skcal_with_sizes_from_the_data():
    import numpy as np

    from skcal import ContinualActiveClassifier
    from skcal.models import ResNet18

    rng = np.random.default_rng(0)
    X, y = rng.random((24, 1, 28, 28), dtype=np.float32), np.arange(24) % 4
    net = ContinualActiveClassifier(ResNet18, max_epochs=1, round_epochs=1, batch_size=8, verbose=0, random_state=0)
    net.fit(X[:16], y[:16]).partial_fit(X[16:], y[16:])
    assert net.module_.head.out_features == 4 and net.module_.features[0].in_channels == 1


def test_actinn_published_form_and_configurable_widths():
    from skcal import ContinualActiveClassifier
    from skcal.models import ACTINN

    widths = [
        layer.out_features
        for layer in ACTINN(n_features=30, n_classes=4).modules()
        if isinstance(layer, torch.nn.Linear)
    ]
    assert widths == [100, 50, 25, 4]
    assert sum(isinstance(layer, torch.nn.ReLU) for layer in ACTINN(30, 4).modules()) == 3

    net = ContinualActiveClassifier(ACTINN, module__hidden=(16, 8), max_epochs=1, verbose=0, random_state=0)
    X, y = torch.rand(20, 30), torch.arange(20) % 4
    net.fit(X.numpy(), y.numpy())
    assert net.module_.head.in_features == 8 and net.module_.body[0].in_features == 30
    assert net.set_params(module__hidden=(12,)).fit(X.numpy(), y.numpy()).module_.head.in_features == 12
