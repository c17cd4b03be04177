# ruff: noqa: D205, D400  (the docstring opens with the reST title sphinx-gallery reads)
"""Standard active learning vs CAL-ER on scikit-learn's digits, through modAL
==========================================================================

Each method runs the same modAL loop: a random seed set, then rounds of
entropy sampling (modAL's ``entropy_sampling``) and ``teach``. Standard AL
(``replay="retrain"``) re-initialises and trains on the whole labelled set to
99% training accuracy every round; CAL-ER trains a few epochs on the new
points, each minibatch joined by a replay batch from the history.

Run: ``python examples/digits_modal.py`` (about half a minute on 2 CPU cores).
"""

import argparse

import numpy as np
import torch
from modAL.uncertainty import entropy_sampling
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skcal import ContinualActiveClassifier
from skcal.modal import ContinualActiveLearner
from skcal.models import MLP


def run(replay, X_pool, y_pool, X_test, y_test, args):
    net = ContinualActiveClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        module__hidden=(128, 128),
        replay=replay,
        classes=np.unique(y_pool),  # a random seed set may miss a class
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        batch_size=32,
        replay_size=64,
        max_epochs=100,
        train_accuracy_stop=0.99,
        round_epochs=10,
        verbose=0,
        random_state=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    seed_idx = rng.choice(len(X_pool), args.query_size, replace=False)
    learner = ContinualActiveLearner(net, entropy_sampling, X_training=X_pool[seed_idx], y_training=y_pool[seed_idx])
    pool = np.setdiff1d(np.arange(len(X_pool)), seed_idx)
    rows = []
    for round_index in range(args.rounds + 1):
        if round_index:
            chosen, instances = learner.query(X_pool[pool], n_instances=args.query_size)
            learner.teach(instances, y_pool[pool[chosen]])
            pool = np.delete(pool, chosen)
        record = net.rounds_[-1]
        rows.append(
            (
                len(learner.y_training),
                learner.score(X_test, y_test),
                record["train_seconds"],
                record["samples_backpropagated"],
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description="Standard active learning vs CAL-ER on digits, through modAL.")
    parser.add_argument("--rounds", type=int, default=10, help="query rounds after the seed set")
    parser.add_argument("--query-size", type=int, default=50, help="points labelled per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=args.seed)

    # warm up torch's kernels so the first timed round is not charged for them
    run("er", X_pool, y_pool, X_test, y_test, argparse.Namespace(seed=args.seed, query_size=32, rounds=1))
    results = {replay: run(replay, X_pool, y_pool, X_test, y_test, args) for replay in ("retrain", "er")}
    print(f"digits: pool {len(X_pool)}, test {len(X_test)}, entropy sampling, {args.query_size} labels per round\n")
    print(f"{'round':>5} {'labelled':>8} | {'AL acc':>6} {'AL s':>6} | {'CAL-ER acc':>10} {'CAL-ER s':>8}")
    for round_index, (al, er) in enumerate(zip(results["retrain"], results["er"], strict=True)):
        print(f"{round_index:>5} {al[0]:>8} | {al[1]:>6.3f} {al[2]:>6.2f} | {er[1]:>10.3f} {er[2]:>8.2f}")
    totals = {name: (sum(r[2] for r in rows), sum(r[3] for r in rows)) for name, rows in results.items()}
    print(
        f"\ntotal training seconds: AL {totals['retrain'][0]:.2f}, CAL-ER {totals['er'][0]:.2f} "
        f"(speedup {totals['retrain'][0] / totals['er'][0]:.1f}x)"
    )
    print(
        f"samples backpropagated: AL {totals['retrain'][1]}, CAL-ER {totals['er'][1]} "
        f"(ratio {totals['retrain'][1] / totals['er'][1]:.1f}x)"
    )


if __name__ == "__main__":
    main()
