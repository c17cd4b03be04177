import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skcal import LabelledHistory
from skcal.utils.data import n_rows


def dense(n, start=0, width=3):
    return torch.arange(start * width, (start + n) * width, dtype=torch.float32).reshape(n, width)


def add_round(history, X, round_id, n_classes=2):
    n = n_rows(X)
    history.stage(X, torch.arange(n) % n_classes)
    history.commit(torch.full((n, n_classes), float(round_id)), round_id)


def test_staged_points_are_invisible_until_committed():
    history = LabelledHistory()
    add_round(history, dense(4), 0)
    history.stage(dense(2, start=4), torch.tensor([1, 1]))
    assert len(history) == 4 and history.n_staged == 2
    assert torch.equal(history.staged_X, dense(2, start=4))
    assert torch.equal(history.labelled_X, dense(6))
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert history.sample(3, rng).max() < 4
    history.discard()
    assert len(history) == 4 and history.n_staged == 0
    assert torch.equal(history.X, dense(4))


def test_each_point_keeps_its_own_round_and_logits():
    history = LabelledHistory()
    for round_id in range(3):
        add_round(history, dense(5, start=5 * round_id), round_id)
    assert history.rounds.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert torch.equal(history.logits[:5], torch.zeros(5, 2))
    assert torch.equal(history.logits[10:], torch.full((5, 2), 2.0))
    batch = history.batch(torch.tensor([1, 7, 12]))
    assert batch.rounds.tolist() == [0, 1, 2]
    assert batch.logits[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert torch.equal(batch.X, dense(15)[[1, 7, 12]])
    assert history.n_rounds == 3


def test_sample_is_without_replacement_and_capped():
    history = LabelledHistory()
    add_round(history, dense(10), 0)
    drawn = history.sample(100, np.random.default_rng(1))
    assert sorted(drawn.tolist()) == list(range(10))
    drawn = history.sample(6, np.random.default_rng(2))
    assert len(set(drawn.tolist())) == 6


def test_append_reallocates_logarithmically_often():
    history = LabelledHistory()
    buffers = set()
    for start in range(0, 5000, 50):
        add_round(history, dense(50, start=start), 0)
        buffers.add(history._X.buffer.data_ptr())
    assert len(history) == 5000
    assert len(buffers) <= 12  # doubling: ~log2(5000 / 16) + 1 allocations, not 100
    assert torch.equal(history.X, dense(5000))


def test_sparse_rows_stay_sparse_and_gather_like_dense():
    rng = np.random.default_rng(0)
    blocks = [sp.random(30, 20, density=0.2, format="csr", dtype=np.float32, random_state=i) for i in range(3)]
    history = LabelledHistory()
    for round_id, block in enumerate(blocks):
        add_round(history, block, round_id)
    full = sp.vstack(blocks).toarray()
    assert history.is_sparse and sp.issparse(history.X)
    np.testing.assert_array_equal(history.X.toarray(), full)
    index = torch.from_numpy(rng.choice(90, 25, replace=False))
    np.testing.assert_array_equal(history.batch(index).X.numpy(), full[index.numpy()])


def test_dict_features():
    history = LabelledHistory()
    for round_id in range(2):
        X = {"ids": torch.arange(8).reshape(4, 2) + 10 * round_id, "mask": torch.ones(4, 2, dtype=torch.int64)}
        add_round(history, X, round_id)
    batch = history.batch(torch.tensor([0, 5]))
    assert batch.X["ids"].tolist() == [[0, 1], [12, 13]]
    assert history.feature_shape == {"ids": (2,), "mask": (2,)}


def test_feature_shape_mismatch_is_rejected():
    history = LabelledHistory()
    add_round(history, dense(4), 0)
    with pytest.raises(ValueError, match="feature shape"):
        history.stage(dense(2, width=5), torch.tensor([0, 1]))
    assert len(history) == 4 and history.n_staged == 0


def test_pickle_keeps_only_used_rows_on_cpu():
    history = LabelledHistory()
    for round_id in range(3):
        add_round(history, dense(7, start=7 * round_id), round_id)
    restored = pickle.loads(pickle.dumps(history))
    assert len(restored._X.buffer) == 21
    assert torch.equal(restored.X, history.X)
    assert torch.equal(restored.logits, history.logits)
    assert restored.rounds.tolist() == history.rounds.tolist()
    add_round(restored, dense(3, start=21), 3)
    assert len(restored) == 24


def test_reserve_prevents_reallocation_and_keeps_contents():
    history = LabelledHistory()
    with pytest.raises(ValueError, match="after the first round"):
        history.reserve(100)
    add_round(history, dense(10), 0)
    history.reserve(1000)
    pointer = history._X.buffer.data_ptr()
    for start in range(10, 1000, 30):
        add_round(history, dense(30, start=start), 1)
    assert history._X.buffer.data_ptr() == pointer
    assert torch.equal(history.X, dense(len(history)))


def test_reserve_sparse():
    history = LabelledHistory()
    add_round(history, sp.csr_matrix(np.eye(5, dtype=np.float32)), 0)
    history.reserve(50)
    add_round(history, sp.csr_matrix(2 * np.eye(5, dtype=np.float32)), 1)
    np.testing.assert_array_equal(history.X.toarray(), np.vstack([np.eye(5), 2 * np.eye(5)]))


def test_batched_dataset_slices_and_gathers_agree():
    from skcal.utils.data import BatchedDataset, BatchIterator

    X = torch.arange(30.0).reshape(10, 3)
    dataset = BatchedDataset(X, torch.arange(10))
    sliced = list(BatchIterator(dataset, batch_size=4))
    assert [len(batch[0]) for batch in sliced] == [4, 4, 2]
    assert sliced[0][0].data_ptr() == X.data_ptr()  # a view, not a copy
    gathered = dataset.__getitems__(torch.arange(4, 8))
    assert torch.equal(sliced[1][0], gathered[0]) and torch.equal(sliced[1][1], gathered[1])
    sparse = BatchedDataset(sp.csr_matrix(X.numpy()))
    assert torch.equal(list(BatchIterator(sparse, batch_size=4))[2][0], X[8:])
    assert len(list(BatchIterator(dataset, batch_size=4, drop_last=True))) == 2


def test_sparse_rows_with_duplicate_entries_are_replayed_as_their_sum(digits):
    import scipy.sparse as sp
    from conftest import make_net

    X, y = digits
    base = sp.csr_matrix(X[:60])
    data, indices, indptr = [], [], [0]
    for row in range(60):  # each row: its entries, then column 3 twice more (scipy sums duplicates)
        start, stop = base.indptr[row], base.indptr[row + 1]
        data += base.data[start:stop].tolist() + [0.25, 0.25]
        indices += base.indices[start:stop].tolist() + [3, 3]
        indptr.append(len(data))
    with_duplicates = sp.csr_matrix((np.array(data, dtype=np.float32), indices, indptr), shape=(60, 64))
    assert not with_duplicates.has_canonical_format
    dense = X[:60].copy()
    dense[:, 3] += 0.5
    np.testing.assert_allclose(with_duplicates.toarray(), dense, atol=1e-6)
    user_data = with_duplicates.data.copy()
    net = make_net().fit(with_duplicates, y[:60])
    stored = net.labelled_history_.take_features(torch.arange(60))
    np.testing.assert_allclose(stored.numpy(), dense, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(with_duplicates.data, user_data)  # the user's matrix is not modified
