"""Overhead of skcal's training loop and history, measured against baselines in the same run.

1. One CAL-ER round through ``ContinualActiveClassifier.partial_fit`` against a
   hand-written PyTorch loop doing the same batches and math (same MLP, same
   SGD, same batch and replay sizes, uniform replay draws without
   replacement, one forward over current + replay batch). Printed: the median
   time of each over repeated runs and their ratio (target <= 1.15 on CPU).
2. The cost of appending 1k new points to a history of 10k, 100k and 1M
   points (target: flat). Printed: median and mean (amortised, including
   the occasional capacity doubling) over repeated appends.

Run: ``python benchmarks/overhead.py`` (about a minute on 2 CPU cores).
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skcal import ContinualActiveClassifier, LabelledHistory
from skcal.models import MLP


def hand_written_round(module, history_X, history_y, X_new, y_new, epochs, batch_size, replay_size, lr, rng):
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    criterion = torch.nn.CrossEntropyLoss()
    module.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(X_new)).split(batch_size):
            replay = torch.from_numpy(rng.choice(len(history_X), replay_size, replace=False))
            inputs = torch.cat([X_new[batch], history_X[replay]])
            targets = torch.cat([y_new[batch], history_y[replay]])
            optimizer.zero_grad()
            loss = criterion(module(inputs), targets)
            loss.backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():  # skcal stores end-of-round logits; do the same work
        module(X_new)


def time_cal_er_round(args, n_features, n_hidden):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.history + args.new, n_features)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    X_hist, y_hist, X_new, y_new = X[: args.history], y[: args.history], X[args.history :], y[args.history :]
    params = dict(
        module__n_features=n_features,
        module__n_classes=10,
        module__hidden=(n_hidden, n_hidden),
        lr=0.01,
        batch_size=args.batch_size,
        replay_size=args.replay_size,
        round_epochs=args.epochs,
        max_epochs=1,
        verbose=0,
        random_state=0,
        replay="er",
    )
    hist_t, hist_y = torch.from_numpy(X_hist), torch.from_numpy(y_hist)
    new_t, new_y = torch.from_numpy(X_new), torch.from_numpy(y_new)

    skcal_times, hand_times = [], []
    for _ in range(args.repeats + 1):  # the first pair warms up and is dropped
        net = ContinualActiveClassifier(MLP, **params).fit(X_hist, y_hist)
        start = time.perf_counter()
        net.partial_fit(X_new, y_new)
        skcal_times.append(time.perf_counter() - start)

        module = MLP(n_features, 10, (n_hidden, n_hidden))
        start = time.perf_counter()
        hand_written_round(
            module, hist_t, hist_y, new_t, new_y, args.epochs, args.batch_size, args.replay_size, 0.01, rng
        )
        hand_times.append(time.perf_counter() - start)
    skcal_times, hand_times = skcal_times[1:], hand_times[1:]
    n_batches = args.epochs * -(-args.new // args.batch_size)
    paired = statistics.median(s / h for s, h in zip(skcal_times, hand_times, strict=True))
    skcal_median, hand_median = statistics.median(skcal_times), statistics.median(hand_times)
    print(
        f"MLP {n_features}-{n_hidden}-{n_hidden}-10: hand-written {hand_median * 1e3:7.1f} ms, "
        f"skcal {skcal_median * 1e3:7.1f} ms, ratio of medians {skcal_median / hand_median:.3f}, "
        f"median paired ratio {paired:.3f}, overhead {(skcal_median - hand_median) / n_batches * 1e6:.0f} us/batch"
    )


def time_plain_skorch(args, n_features, n_hidden):
    """Time skorch's own per-batch cost: NeuralNetClassifier vs a bare loop, same steps, no replay."""
    from skorch import NeuralNetClassifier

    rng = np.random.default_rng(0)
    rows = args.new * (args.batch_size + args.replay_size) // args.batch_size
    X = torch.from_numpy(rng.standard_normal((rows, n_features)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, rows))
    batch = args.batch_size + args.replay_size
    skorch_times, hand_times = [], []
    for _ in range(args.repeats + 1):
        net = NeuralNetClassifier(
            MLP,
            module__n_features=n_features,
            module__n_classes=10,
            module__hidden=(n_hidden, n_hidden),
            criterion=torch.nn.CrossEntropyLoss,
            lr=0.01,
            batch_size=batch,
            max_epochs=args.epochs,
            train_split=None,
            verbose=0,
            iterator_train__shuffle=True,
        ).initialize()
        start = time.perf_counter()
        net.partial_fit(X, y)
        skorch_times.append(time.perf_counter() - start)

        module = MLP(n_features, 10, (n_hidden, n_hidden))
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
        criterion = torch.nn.CrossEntropyLoss()
        start = time.perf_counter()
        for _ in range(args.epochs):
            for index in torch.randperm(rows).split(batch):
                optimizer.zero_grad()
                criterion(module(X[index]), y[index]).backward()
                optimizer.step()
        hand_times.append(time.perf_counter() - start)
    skorch_median, hand_median = statistics.median(skorch_times[1:]), statistics.median(hand_times[1:])
    n_batches = args.epochs * -(-rows // batch)
    print(
        f"  reference, plain skorch NeuralNetClassifier (no replay, same steps) vs bare loop: "
        f"ratio {skorch_median / hand_median:.3f}, overhead {(skorch_median - hand_median) / n_batches * 1e6:.0f} "
        "us/batch"
    )


def time_history_append(sizes, n_new=1000):
    """Time appends over one whole doubling cycle, starting from a full buffer.

    The first append after the history reaches its capacity copies it (O(size));
    every other append writes only the new rows. Over the cycle (size / n_new
    appends, until the capacity doubles again) the mean is the amortised cost.
    """
    print(f"\nHistory append of {n_new} points (100 float32 features), over one doubling cycle per size")
    rng = np.random.default_rng(0)
    block = torch.from_numpy(rng.standard_normal((n_new, 100)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, n_new))
    logits = torch.zeros(n_new, 10)
    baseline = None
    for size in sizes:
        history = LabelledHistory()
        history.stage(torch.zeros(size, 100), torch.zeros(size, dtype=torch.int64))
        history.commit(torch.zeros(size, 10), 0)
        times = []
        for round_id in range(1, size // n_new + 1):
            start = time.perf_counter()
            history.stage(block, labels)
            history.commit(logits, round_id)
            times.append(time.perf_counter() - start)
        median, mean = statistics.median(times), statistics.mean(times)

        history.reserve(len(history) + 20 * n_new)
        reserved = []
        for round_id in range(20):
            start = time.perf_counter()
            history.stage(block, labels)
            history.commit(logits, round_id)
            reserved.append(time.perf_counter() - start)
        reserved_median = statistics.median(reserved)

        stacked = np.zeros((size, 100), dtype=np.float32)
        restack = []
        for _ in range(3):  # what modAL's teach does: a new array holding everything
            start = time.perf_counter()
            stacked = np.vstack([stacked, block.numpy()])
            restack.append(time.perf_counter() - start)
        restack_median = statistics.median(restack)

        baseline = baseline or (median, mean, reserved_median)
        print(
            f"  history {size:>9,}: median {median * 1e3:6.3f} ms ({median / baseline[0]:4.2f}x), "
            f"amortised mean {mean * 1e3:6.3f} ms ({mean / baseline[1]:4.2f}x), "
            f"slowest (the doubling copy) {max(times) * 1e3:6.1f} ms; "
            f"after reserve() {reserved_median * 1e3:6.3f} ms ({reserved_median / baseline[2]:4.2f}x); "
            f"re-stacking (modAL) {restack_median * 1e3:7.2f} ms"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--replay-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print(
        f"One CAL-ER round: {args.new} new points, history {args.history}, {args.epochs} epochs, "
        f"m={args.batch_size}, m'={args.replay_size}, {args.repeats} interleaved repeats (target ratio <= 1.15)"
    )
    for n_features, n_hidden in ((100, 256), (784, 512)):
        time_cal_er_round(args, n_features, n_hidden)
        time_plain_skorch(args, n_features, n_hidden)
    time_history_append([int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
    main()
