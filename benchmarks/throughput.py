"""Training throughput of the paper's networks through skcal, against the bare module in the same run.

For ResNet-18 (CIFAR form, 3x28x28 images: DermaMNIST's shape) and ACTINN
(sparse counts shaped like the HCL atlas: ~28k genes, a few percent of them
detected per cell), two kinds of training are timed, each against a
hand-written PyTorch loop over the same module doing the same work (same
optimizer and learning rate, same batch and replay sizes, uniform replay
draws without replacement as ER makes them, and the eval forward over the round's points whose logits skcal
stores):

* the seed round, ``fit``: plain training on the labelled points;
* one CAL-ER round, ``partial_fit``: each batch of new points with as many
  replayed points.

Printed per case: samples backpropagated per second, median over repeats
(the first, warm-up, repeat dropped), and skcal's ratio to the bare loop.

For the sparse ACTINN data the script also prices densification: skcal keeps
the history as CSR and densifies one batch at a time. It times skcal and the
bare loop on CSR, the bare loop on a dense copy of the matrix, and one
batch's ``X[rows].toarray()`` against one training step.

Run: ``python benchmarks/throughput.py`` (about four minutes on 2 CPU cores);
``--device cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from skcal import ContinualActiveClassifier, LabelledHistory
from skcal.models import ACTINN, ResNet18


@dataclass
class Case:
    """One workload: a module class, its data (labelled history and new points) and step sizes."""

    name: str
    module: Callable[..., torch.nn.Module]
    n_classes: int
    X_history: object
    y_history: np.ndarray
    X_new: object
    y_new: np.ndarray
    epochs: int
    batch_size: int
    replay_size: int


def dense_rows(X: object, rows: np.ndarray) -> torch.Tensor:
    """Rows of a tensor, or of a CSR matrix densified, as skcal gathers a batch."""
    if sp.issparse(X):
        return torch.from_numpy(X[rows].toarray())
    return X[torch.from_numpy(rows)]


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def bare_round(case: Case, X_train, y_train, X_replay, y_replay, device: str, rng: np.random.Generator) -> int:
    """Train a fresh module as a hand-written loop would; return the samples backpropagated."""
    module = case.module(n_classes=case.n_classes).to(device)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    criterion = torch.nn.CrossEntropyLoss()
    targets_all = torch.from_numpy(y_train)
    replay_targets = None if y_replay is None else torch.from_numpy(y_replay)
    n, backpropagated = len(y_train), 0
    module.train()
    for _ in range(case.epochs):
        for batch in torch.randperm(n).split(case.batch_size):
            rows = batch.numpy()
            inputs, targets = dense_rows(X_train, rows), targets_all[batch]
            if X_replay is not None:
                replay = rng.choice(len(y_replay), min(case.replay_size, len(y_replay)), replace=False)
                inputs = torch.cat([inputs, dense_rows(X_replay, replay)])
                targets = torch.cat([targets, replay_targets[torch.from_numpy(replay)]])
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            criterion(module(inputs), targets).backward()
            optimizer.step()
            backpropagated += len(targets)
    module.eval()
    with torch.no_grad():  # skcal stores the round's end-of-round logits
        for batch in np.array_split(np.arange(n), -(-n // case.batch_size)):
            module(dense_rows(X_train, batch).to(device))
    synchronize(device)
    return backpropagated


def skcal_estimator(case: Case, device: str, seed: int) -> ContinualActiveClassifier:
    return ContinualActiveClassifier(
        case.module,
        classes=np.arange(case.n_classes),
        replay="er",
        lr=0.01,
        batch_size=case.batch_size,
        replay_size=case.replay_size,
        max_epochs=case.epochs,
        round_epochs=case.epochs,
        device=device,
        verbose=0,
        random_state=seed,
    )


def time_case(case: Case, args: argparse.Namespace, bare_X_history=None, bare_X_new=None) -> dict:
    """Median samples/s of skcal's fit and CAL-ER round, and of the bare loop, interleaved."""
    bare_X_history = case.X_history if bare_X_history is None else bare_X_history
    bare_X_new = case.X_new if bare_X_new is None else bare_X_new
    rates: dict[str, list[float]] = {"skcal fit": [], "bare fit": [], "skcal CAL-ER": [], "bare CAL-ER": []}
    for repeat in range(args.repeats + 1):  # the first repeat warms up and is dropped
        net = skcal_estimator(case, args.device, repeat)
        start = time.perf_counter()  # the whole call: validation and history appends are the user's cost too
        net.fit(case.X_history, case.y_history)
        skcal_fit = time.perf_counter() - start
        start = time.perf_counter()
        net.partial_fit(case.X_new, case.y_new)
        skcal_cal = time.perf_counter() - start
        seed_round, cal_round = net.rounds_
        rng = np.random.default_rng(repeat)
        start = time.perf_counter()
        fit_samples = bare_round(case, bare_X_history, case.y_history, None, None, args.device, rng)
        bare_fit = time.perf_counter() - start
        start = time.perf_counter()
        cal_samples = bare_round(case, bare_X_new, case.y_new, bare_X_history, case.y_history, args.device, rng)
        bare_cal = time.perf_counter() - start
        assert fit_samples == seed_round["samples_backpropagated"], "the bare loop must do skcal's work"
        assert cal_samples == cal_round["samples_backpropagated"], "the bare loop must do skcal's work"
        if repeat:
            rates["skcal fit"].append(seed_round["samples_backpropagated"] / skcal_fit)
            rates["bare fit"].append(fit_samples / bare_fit)
            rates["skcal CAL-ER"].append(cal_round["samples_backpropagated"] / skcal_cal)
            rates["bare CAL-ER"].append(cal_samples / bare_cal)
    return {key: statistics.median(values) for key, values in rates.items()}


def report(name: str, rates: dict) -> None:
    for kind in ("fit", "CAL-ER"):
        skcal, bare = rates[f"skcal {kind}"], rates[f"bare {kind}"]
        print(
            f"  {name:<28} {kind:<7} bare {bare:9.1f} samples/s, skcal {skcal:9.1f} samples/s, ratio {skcal / bare:.3f}"
        )


def image_case(args: argparse.Namespace) -> Case:
    rng = np.random.default_rng(0)
    n_history, n_new = args.images, args.images // 2
    X = rng.random((n_history + n_new, 3, 28, 28), dtype=np.float32)
    y = rng.integers(0, 7, len(X))
    return Case(
        "ResNet-18, 3x28x28",
        lambda n_classes: ResNet18(in_channels=3, n_classes=n_classes),
        7,
        torch.from_numpy(X[:n_history]),
        y[:n_history],
        torch.from_numpy(X[n_history:]),
        y[n_history:],
        epochs=1,
        batch_size=64,
        replay_size=64,
    )


def counts_matrix(rng: np.random.Generator, n_cells: int, n_genes: int, detected: int) -> sp.csr_matrix:
    """log1p counts with ``detected`` expressed genes per cell, as CSR float32."""
    indices = np.concatenate([np.sort(rng.choice(n_genes, detected, replace=False)) for _ in range(n_cells)])
    values = np.log1p(rng.poisson(2.0, n_cells * detected) + 1).astype(np.float32)
    indptr = np.arange(0, n_cells * detected + 1, detected)
    return sp.csr_matrix((values, indices, indptr), shape=(n_cells, n_genes))


def cell_case(args: argparse.Namespace) -> Case:
    rng = np.random.default_rng(0)
    n_history, n_new = args.cells, args.cells // 2
    X = counts_matrix(rng, n_history + n_new, args.genes, args.detected)
    y = rng.integers(0, 20, X.shape[0])
    return Case(
        f"ACTINN, CSR {args.genes} genes",
        lambda n_classes: ACTINN(n_features=args.genes, n_classes=n_classes),
        20,
        X[:n_history],
        y[:n_history],
        X[n_history:],
        y[n_history:],
        epochs=args.cell_epochs,
        batch_size=128,
        replay_size=128,
    )


def densification_cost(case: Case, args: argparse.Namespace) -> None:
    """One batch's CSR-to-dense conversion against one training step on that batch."""
    rng = np.random.default_rng(1)
    module = case.module(n_classes=case.n_classes).to(args.device)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    densify, step = [], []
    batch = min(case.batch_size + case.replay_size, case.X_history.shape[0])
    for _ in range(30):
        rows = rng.choice(case.X_history.shape[0], batch, replace=False)
        targets = torch.from_numpy(case.y_history[rows]).to(args.device)
        start = time.perf_counter()
        inputs = dense_rows(case.X_history, rows).to(args.device)
        synchronize(args.device)
        densify.append(time.perf_counter() - start)
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(inputs), targets).backward()
        optimizer.step()
        synchronize(args.device)
        step.append(time.perf_counter() - start)
    densify_ms, step_ms = statistics.median(densify[5:]) * 1e3, statistics.median(step[5:]) * 1e3
    print(
        f"  one batch of {batch} cells: X[rows].toarray() {densify_ms:.2f} ms, "
        f"training step {step_ms:.2f} ms: densifying is {densify_ms / (densify_ms + step_ms):.0%} of a step"
    )


def history_transfer_cost(args: argparse.Namespace, n_points: int = 4096, replay_size: int = 128) -> None:
    """Time fetching one replay batch from a history in host memory against one on the training device.

    ``history_device="cpu"`` keeps the labelled history in (pinned, on CUDA)
    host memory and moves one replay batch per step; this prices that move:
    the median time of ``history.batch(positions, device)`` for each layout.
    On a CPU-only machine both layouts are host memory and the difference is
    the cost of nothing; the figure that matters comes from ``--device cuda``.
    """
    rng = np.random.default_rng(2)
    X = torch.from_numpy(rng.standard_normal((n_points, 3, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, n_points))
    times = {}
    for layout, where in (("history on the training device", args.device), ("history_device='cpu'", "cpu")):
        history = LabelledHistory(where)
        history.stage(X, y)
        history.commit(torch.zeros(n_points, 10), 0)
        if where == "cpu" and torch.device(args.device).type == "cuda":
            history.to("cpu", pin=True)
        fetches = []
        for _ in range(60):
            positions = history.sample(replay_size, rng)
            start = time.perf_counter()
            batch = history.batch(positions, device=args.device)
            batch.X.sum()  # the batch is used, so an asynchronous copy is complete
            synchronize(args.device)
            fetches.append(time.perf_counter() - start)
        times[layout] = statistics.median(fetches[10:]) * 1e3
    on_device, on_host = times.values()
    print(
        f"  replay batch of {replay_size} 3x28x28 images: {on_device:.3f} ms from a history on {args.device}, "
        f"{on_host:.3f} ms from host memory: the transfer costs {on_host - on_device:+.3f} ms per step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=256, help="labelled images (the CAL round adds half as many)")
    parser.add_argument("--cells", type=int, default=4000, help="labelled cells (the CAL round adds half as many)")
    parser.add_argument("--genes", type=int, default=28000)
    parser.add_argument("--detected", type=int, default=800, help="expressed genes per cell")
    parser.add_argument("--cell-epochs", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated: resnet, actinn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} threads, {args.repeats} repeats")
    skip = set(filter(None, args.skip.split(",")))

    if "resnet" not in skip:
        case = image_case(args)
        print(f"\n{case.name}: fit on {len(case.y_history)} images, then a CAL-ER round on {len(case.y_new)}")
        report(case.name, time_case(case, args))

    if "actinn" not in skip:
        case = cell_case(args)
        density = case.X_history.nnz / np.prod(case.X_history.shape)
        dense_mib = np.prod(case.X_history.shape) * 4 / 2**20
        csr_mib = (case.X_history.data.nbytes + case.X_history.indices.nbytes + case.X_history.indptr.nbytes) / 2**20
        print(
            f"\n{case.name}: fit on {len(case.y_history)} cells, then a CAL-ER round on {len(case.y_new)}; "
            f"density {density:.1%}; history {csr_mib:.0f} MiB as CSR, {dense_mib:.0f} MiB dense"
        )
        report(case.name + " (CSR)", time_case(case, args))
        dense_history = torch.from_numpy(case.X_history.toarray())
        dense_new = torch.from_numpy(case.X_new.toarray())
        rates = time_case(case, args, bare_X_history=dense_history, bare_X_new=dense_new)
        report("ACTINN, skcal CSR; bare dense", rates)
        densification_cost(case, args)

    print("\nHistory off the training device (history_device='cpu'):")
    history_transfer_cost(args)


if __name__ == "__main__":
    main()
