"""What each replay method costs, relative to ER measured in the same run.

1. One CAL round per method (same data, same MLP, same seeds), repeated and
   interleaved; printed: median round time, its ratio to ER's, and the
   samples forwarded/backpropagated from ``rounds_``. MIR pays for a
   virtual step and two forwards over its candidates, SDS2 for a forward
   over its candidates and the greedy selection.
2. Selecting m' = 128 of C candidates for SDS2's objective (equation (6)):
   lazy greedy against plain greedy, C in {100, 1000, 10000}, both returning
   the same set.

Run: ``python benchmarks/replay_cost.py`` (about three minutes on 2 CPU cores).
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skcal import ContinualActiveClassifier
from skcal.models import MLP
from skcal.submodular import (
    ConcaveOverModular,
    FacilityLocation,
    SumOfFunctions,
    gaussian_similarity,
    greedy,
    lazy_greedy,
)

METHODS = ("er", "mir", "der", "sd", "sds2", "finetune", "retrain")


def time_rounds(args):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 100)) * 2
    y = rng.integers(0, 10, args.history + args.new)
    X = (centres[y] + rng.standard_normal((len(y), 100))).astype(np.float32)
    X_hist, y_hist, X_new, y_new = X[: args.history], y[: args.history], X[args.history :], y[args.history :]
    times = {method: [] for method in METHODS}
    records = {}
    for repeat in range(args.repeats + 1):  # the first repeat warms up and is dropped
        for method in METHODS:
            net = ContinualActiveClassifier(
                MLP,
                module__n_features=100,
                module__n_classes=10,
                module__hidden=(256, 256),
                replay=method,
                lr=0.05,
                batch_size=args.batch_size,
                replay_size=args.replay_size,
                round_epochs=args.epochs,
                max_epochs=args.epochs,
                verbose=0,
                random_state=repeat,
            ).fit(X_hist, y_hist)
            start = time.perf_counter()
            net.partial_fit(X_new, y_new)
            times[method].append(time.perf_counter() - start)
            records[method] = net.rounds_[-1]
    er = statistics.median(times["er"][1:])
    print(
        f"One round: history {args.history}, {args.new} new points, {args.epochs} epochs, m={args.batch_size}, "
        f"m'={args.replay_size}, C=100 (MIR, SDS2), MLP 100-256-256-10, {args.repeats} interleaved repeats"
    )
    print(f"  {'method':<9} {'median s':>9} {'vs ER':>7} {'forwarded':>10} {'backprop':>9}")
    for method in METHODS:
        median = statistics.median(times[method][1:])
        record = records[method]
        print(
            f"  {method:<9} {median:9.3f} {median / er:6.2f}x {record['samples_forwarded']:>10} "
            f"{record['samples_backpropagated']:>9}"
        )
    print("  (retrain trains on all history + new points for the same number of epochs)")


def time_selection(sizes, k, repeats):
    print(f"\nSDS2 selection of m'={k} from C candidates (64-d embeddings, equation (6)), median of {repeats}")
    generator = torch.Generator().manual_seed(0)
    for size in sizes:
        embeddings = torch.randn(size, 64, generator=generator)
        uncertainty = torch.rand(size, generator=generator)
        objective = SumOfFunctions(
            FacilityLocation(gaussian_similarity(embeddings, embeddings, sigma=8.0)),
            ConcaveOverModular(uncertainty, 1.0),
        )
        results = {}
        for name, select in (("greedy", greedy), ("lazy", lazy_greedy)):
            elapsed = []
            for _ in range(repeats if size < 10000 else 1):
                start = time.perf_counter()
                results[name] = select(objective, k)
                elapsed.append(time.perf_counter() - start)
            results[name + "_s"] = statistics.median(elapsed)
        same = results["greedy"].tolist() == results["lazy"].tolist()
        print(
            f"  C={size:>6}: greedy {results['greedy_s'] * 1e3:9.1f} ms, lazy {results['lazy_s'] * 1e3:8.1f} ms, "
            f"speedup {results['greedy_s'] / results['lazy_s']:5.1f}x, same set: {same}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--replay-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    time_rounds(args)
    time_selection([int(size) for size in args.sizes.split(",")], k=128, repeats=3)


if __name__ == "__main__":
    main()
