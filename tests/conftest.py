import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skcal import ContinualActiveClassifier

torch.set_num_threads(1)


class MLP(torch.nn.Module):
    """A small MLP returning logits."""

    def __init__(self, n_in=64, n_hidden=32, n_out=10):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, n_hidden)
        self.out = torch.nn.Linear(n_hidden, n_out)

    def forward(self, X):
        return self.out(torch.relu(self.hidden(X)))


class RecordingMLP(MLP):
    """An MLP that keeps every training-mode input batch it is given."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def forward(self, X):
        if self.training:
            self.seen.append(X.detach().clone())
        return super().forward(X)


class TokenBag(torch.nn.Module):
    """A text model taking dict input (token ids and attention mask)."""

    def __init__(self, vocab=50, n_out=3):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 16)
        self.out = torch.nn.Linear(16, n_out)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.out(pooled)


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def make_net(**params):
    defaults = dict(
        module=MLP,
        lr=0.1,
        max_epochs=5,
        round_epochs=3,
        batch_size=32,
        verbose=0,
        random_state=0,
    )
    defaults.update(params)
    return ContinualActiveClassifier(**defaults)


def rows_in(rows, pool):
    """For each row of ``rows``, whether it equals some row of ``pool``."""
    distances = torch.cdist(rows.reshape(len(rows), -1), torch.as_tensor(pool).reshape(len(pool), -1))
    return distances.min(dim=1).values < 1e-6


def module_state(net):
    return {key: value.clone() for key, value in net.module_.state_dict().items()}


def same_state(first, second):
    return all(torch.equal(first[key], second[key]) for key in first)
