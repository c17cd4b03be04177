# ruff: noqa: D205, D400  (the docstring opens with the reST title sphinx-gallery reads)
"""ResNet-18 on MedMNIST with CAL: the paper's medical-imaging setting (DermaMNIST)
================================================================================

Loads a MedMNIST dataset through the ``medmnist`` package from the data cache
``--data-home`` (``<flag>.npz`` in its ``medmnist`` folder; by default
``$SKCAL_DATA/medmnist`` or ``~/.medmnist``, downloaded there if missing),
and runs standard AL and CAL-SD with the CIFAR-style ResNet-18 and Adam
(lr 1e-3, batch 128, m' = 128, as in the paper's appendix A.2.3), entropy
sampling, from 5% to 25% of the training split; prints test accuracy and
training time per round. On a CPU a full DermaMNIST run takes long: use
``--limit`` to subsample, or ``--device cuda``.

Run: ``python examples/medmnist_resnet.py --flag dermamnist [--data-home DIR] [--limit 2000]``
"""

import argparse

import numpy as np
import torch

from skcal import ContinualActiveClassifier
from skcal.datasets import load_medmnist
from skcal.models import ResNet18
from skcal.simulation import ActiveLearningSimulator


def main():
    parser = argparse.ArgumentParser(description="ResNet-18 on MedMNIST with CAL: standard AL vs CAL-SD.")
    parser.add_argument("--data-home", help="the data cache whose medmnist/ folder holds <flag>.npz")
    parser.add_argument("--flag", default="dermamnist")
    parser.add_argument("--limit", type=int, help="use at most this many training images")
    parser.add_argument("--round-epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(2)
    X, y = load_medmnist(args.flag, "train", data_home=args.data_home, return_X_y=True)
    X_test, y_test = load_medmnist(args.flag, "test", data_home=args.data_home, return_X_y=True)
    if args.limit:
        keep = np.random.default_rng(0).permutation(len(y))[: args.limit]
        X, y = X[keep], y[keep]
    print(f"{args.flag}: {len(y)} training images {X.shape[1:]}, {len(y_test)} test, {len(np.unique(y))} classes")
    for replay in ("retrain", "sd"):
        net = ContinualActiveClassifier(
            ResNet18,
            replay=replay,
            optimizer=torch.optim.Adam,
            lr=1e-3,
            batch_size=128,
            replay_size=128,
            max_epochs=20,
            train_accuracy_stop=0.99,
            round_epochs=args.round_epochs,
            device=args.device,
            verbose=0,
            random_state=0,
            classes=np.unique(y),
        )
        simulator = ActiveLearningSimulator(net, initial_size=0.05, query_size=0.05, budget=0.25, random_state=0)
        simulator.fit(X, y, eval_set=(X_test, y_test))
        print(
            f"{replay}: "
            + ", ".join(
                f"{r['labelled_fraction']:.0%} {r['accuracy']:.3f} ({r['cumulative_train_seconds']:.0f} s)"
                for r in simulator.records_
            )
        )


if __name__ == "__main__":
    main()
