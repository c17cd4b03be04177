"""CAL campaigns under Hugging Face Accelerate, run on every process of a launch; each process reports what it holds.

Launched by tests/test_accelerate.py; also the measurement in docs/scaling.md::

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/accelerate_worker.py parallel OUT
    python tests/accelerate_worker.py single OUT          # one process: plain vs accelerated
    python tests/accelerate_worker.py bf16 OUT            # one process, bf16 mixed precision
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/accelerate_worker.py measure OUT [--freeze]
    python tests/accelerate_worker.py measure OUT [--freeze]   # the same campaign on one process

Each process writes OUT/<scenario>-rank<r>.json: SHA-256 fingerprints of its
weights, optimizer state, labelled history, ``rounds_`` and generator, and
whatever the scenario checks. Nothing here is compared: the test compares
the files of the processes.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs
from sklearn.datasets import load_digits
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin

from skcal import ContinualActiveClassifier
from skcal.accelerate import AcceleratedContinualActiveClassifier
from skcal.replay import ExperienceReplay
from skcal.round import RoundFailedOnAnotherProcess

torch.set_num_threads(1)


class MLP(torch.nn.Module):
    """A small MLP returning logits; remembers whether training forwards ran under autocast."""

    def __init__(self, n_in=64, n_hidden=32, n_out=10):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, n_hidden)
        self.out = torch.nn.Linear(n_hidden, n_out)
        self.autocast_seen = []

    def forward(self, X):
        if self.training:
            self.autocast_seen.append((len(X), torch.is_autocast_enabled("cpu")))
        elif FAULT["kind"] == "logits" and int(os.environ.get("RANK", "0")) == FAULT["rank"]:
            raise RuntimeError("injected failure computing the logits")  # after training, one process only
        return self.out(torch.relu(self.hidden(X)))


class UserNet(AccelerateMixin, ContinualActiveClassifier):
    """The composition skorch documents for NeuralNet, declared by a user."""


class CountingAccelerator(Accelerator):
    """Accelerate's Accelerator, counting the backward passes and autocast contexts it is asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_backward = 0
        self.n_autocast = 0

    def backward(self, loss, **kwargs):
        self.n_backward += 1
        return super().backward(loss, **kwargs)

    def autocast(self, *args, **kwargs):
        self.n_autocast += 1
        return super().autocast(*args, **kwargs)


# -- fault injection: armed by the scenario, fires on one process only ------
FAULT = {"kind": None, "round": None, "rank": None, "step": 2, "epoch": 2}
REPLAYED = []  # (round, rank, positions) of the first replay batch of each round


def _armed(net, kind):
    round_ = net.round_
    return (
        FAULT["kind"] == kind
        and round_ is not None
        and round_.index == FAULT["round"]
        and net.accelerator.process_index == FAULT["rank"]
    )


class ProbedER(ExperienceReplay):
    """ER that records its first replay draw of each round and can fail or diverge on cue."""

    name = "er"

    def begin_round(self, net, history, n_new):
        super().begin_round(net, history, n_new)
        self.steps_ = 0

    def select_replay(self, net, draw):
        positions = super().select_replay(net, draw)
        if self.steps_ == 0:
            REPLAYED.append((net.round_.index, net.processes().rank, positions.tolist()))
        return positions

    def loss(self, net, y_pred, y_true, replay_pred, replay):
        self.steps_ += 1
        loss = super().loss(net, y_pred, y_true, replay_pred, replay)
        if self.steps_ == FAULT["step"] and _armed(net, "raise"):
            raise RuntimeError("injected failure in a replay step")
        if self.steps_ == FAULT["step"] and _armed(net, "nan"):
            return loss * float("nan")
        return loss


class Faults(Callback):
    """Fails, or stops the round, from a callback on one process."""

    def on_batch_end(self, net, **kwargs):
        if _armed(net, "batch_end") and net.round_.epochs + 1 == FAULT["epoch"]:
            raise RuntimeError("injected failure in on_batch_end")

    def on_train_end(self, net, **kwargs):
        if _armed(net, "train_end"):
            raise RuntimeError("injected failure in on_train_end")

    def on_epoch_end(self, net, **kwargs):
        if _armed(net, "epoch_end") and net.round_.epochs == FAULT["epoch"]:
            raise RuntimeError("injected failure in on_epoch_end")
        if _armed(net, "stop") and net.round_.epochs == FAULT["epoch"]:
            raise KeyboardInterrupt  # skorch's way for a callback to end training


class Probe(Callback):
    """Records, per round, what the round trains with."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.seen_.append(
            {
                "module": type(net.module_).__name__,
                "optimizer": type(net.optimizer_).__name__,
                "device": str(net.round_.device),
                "batch_size": net.round_.batch_size,
                "replay_size": net.round_.replay_size,
            }
        )


# -- data and fingerprints ---------------------------------------------------
def digits_split():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X = (X[order] / 16.0).astype(np.float32)
    y = y[order]
    return X[:1200], y[:1200], X[1200:], y[1200:]  # pool, test (597 points)


def digest(*values):
    h = hashlib.sha256()

    def add(value):
        if isinstance(value, torch.Tensor):
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
            h.update(str((value.dtype, tuple(value.shape))).encode())
        elif isinstance(value, np.ndarray):
            add(torch.from_numpy(np.ascontiguousarray(value)))
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                h.update(str(key).encode())
                add(value[key])
        elif isinstance(value, (list, tuple)):
            h.update(str(len(value)).encode())
            for item in value:
                add(item)
        elif isinstance(value, np.generic):
            add(value.item())
        else:
            h.update(repr(value).encode())

    for value in values:
        add(value)
    return h.hexdigest()


def without_seconds(rounds):
    return [{k: v for k, v in record.items() if k != "train_seconds"} for record in rounds]


def fingerprints(net):
    history = net.labelled_history_
    optimizer = net.optimizer_.state_dict()
    parts = {
        "weights": digest(net.unwrapped_module().state_dict()),
        "optimizer": digest(optimizer["state"], [dict(g.items()) for g in optimizer["param_groups"]]),
        "history": digest(
            [len(history), history.X, history.y, history.logits, history.rounds],
            None if history.retained is None else history.retained.tolist(),
        ),
        "rounds": digest(without_seconds(net.rounds_)),
        "rng": digest(net.rng_.bit_generator.state),
    }
    parts["all"] = digest(parts)
    return parts


# -- campaigns -----------------------------------------------------------------
def make_net(accelerator, cls=AcceleratedContinualActiveClassifier, **params):
    defaults = dict(
        module=MLP,
        accelerator=accelerator,
        lr=0.05,
        optimizer=torch.optim.Adam,
        batch_size=32,
        max_epochs=30,
        round_epochs=10,
        replay=ProbedER,
        verbose=0,
        random_state=0,
        callbacks=[("faults", Faults()), ("probe", Probe())],
    )
    defaults.update(params)
    return cls(**defaults)


def campaign_rounds(n_seed, n_round, n_rounds):
    """Positions in the pool labelled by each round: the seed set, then ``n_rounds`` rounds."""
    order = np.random.default_rng(1).permutation(1200)
    bounds = [0, n_seed] + [n_seed + n_round * (i + 1) for i in range(n_rounds)]
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def run_campaign(net, rounds, pool, on_round=None):
    X, y = pool
    times = []
    for i, positions in enumerate(rounds):
        start = time.perf_counter()
        if i == 0:
            net.fit(X[positions], y[positions])
        else:
            net.partial_fit(X[positions], y[positions])
        times.append(time.perf_counter() - start)
        if on_round is not None:
            on_round(i, net)
    return times


def accuracy(net, X_test, y_test):
    return float(np.mean(net.predict(X_test) == y_test))


def steps_taken(net):
    return int(sum(epoch.get("train_batch_count", 0) for epoch in net.history))


def main_campaign(accelerator, X, y, X_test, y_test, **params):
    net = make_net(accelerator, **params)
    times = run_campaign(net, campaign_rounds(200, 100, 3), (X, y))
    return net, {
        "fingerprints": fingerprints(net),
        "accuracy": accuracy(net, X_test, y_test),
        "seconds": sum(times),
        "rounds": without_seconds(net.rounds_),
        "steps": steps_taken(net),
    }


FAILURE_CAMPAIGN = dict(max_epochs=10, round_epochs=4)


def failure_reference(accelerator, X, y):
    """The failure cases' campaign without a failure."""
    reference = make_net(accelerator, **FAILURE_CAMPAIGN)
    run_campaign(reference, campaign_rounds(150, 60, 3), (X, y))
    return fingerprints(reference)["all"]


def failure_case(accelerator, X, y, kind):
    """Seed, round 1, round 2 failing on process 1 (``kind``), round 2 again, round 3."""
    rounds = campaign_rounds(150, 60, 3)
    net = make_net(accelerator, **FAILURE_CAMPAIGN)
    run_campaign(net, rounds[:2], (X, y))
    before = fingerprints(net)
    FAULT.update(kind=kind, round=2, rank=1)
    error = None
    try:
        net.partial_fit(X[rounds[2]], y[rounds[2]])
    except RoundFailedOnAnotherProcess as failure:
        error = f"{type(failure).__name__}: ranks {failure.ranks}"
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
    finally:
        FAULT.update(kind=None)
    after_failure = fingerprints(net)
    net.partial_fit(X[rounds[2]], y[rounds[2]])
    net.partial_fit(X[rounds[3]], y[rounds[3]])
    return {
        "error": error,
        "unchanged_by_failure": before == after_failure,
        "before": before["all"],
        "after_failure": after_failure["all"],
        "final": fingerprints(net)["all"],
        "n_rounds": len(net.rounds_),
    }


def different_data_case(accelerator, X, y):
    """Round 1 given other labels, then one point more, on process 1; then the same round on both."""
    rounds = campaign_rounds(120, 40, 1)
    net = make_net(accelerator, max_epochs=4, round_epochs=2)
    run_campaign(net, rounds[:1], (X, y))
    before = fingerprints(net)["all"]
    new = rounds[1]
    other_labels = (y[new] + net.accelerator.process_index) % 10
    one_more = rounds[1][: len(new) - 1 + net.accelerator.process_index]
    errors = []
    for X_round, y_round in ((X[new], other_labels), (X[one_more], y[one_more])):
        try:
            net.partial_fit(X_round, y_round)
            errors.append(None)
        except ValueError as error:
            errors.append(str(error))
    unchanged = fingerprints(net)["all"] == before
    net.partial_fit(X[new], y[new])
    return {"errors": errors, "unchanged": unchanged, "final": fingerprints(net)["all"], "n_rounds": len(net.rounds_)}


def fewer_points_than_processes_case(accelerator, X, y):
    """Rounds of one point and of three points (batch size 2) on two processes: some shards are padding."""
    net = make_net(accelerator, max_epochs=4, round_epochs=2, replay="der", batch_size=2)
    net.fit(X[:60], y[:60])
    net.partial_fit(X[60:61], y[60:61])
    net.partial_fit(X[61:64], y[61:64])
    history = net.labelled_history_
    return {
        "fingerprint": fingerprints(net)["all"],
        "history": len(history),
        "logits": list(history.logits.shape),
        "n_new": [record["n_new"] for record in net.rounds_],
    }


def stop_case(accelerator, X, y):
    """A callback ends round 1 at epoch 2 on process 1 only."""
    FAULT.update(kind="stop", round=1, rank=1, epoch=2)
    try:
        net = make_net(accelerator, max_epochs=10, round_epochs=6)
        run_campaign(net, campaign_rounds(150, 60, 1), (X, y))
    finally:
        FAULT.update(kind=None)
    return {"fingerprint": fingerprints(net)["all"], "record": without_seconds(net.rounds_)[1]}


def strategy_cases(accelerator, X, y):
    configs = {
        "der": dict(replay="der"),
        "sd": dict(replay="sd"),
        "mir": dict(replay="mir", replay__n_candidates=48),
        "sds2": dict(replay="sds2", replay__n_candidates=48),
        "retrain": dict(replay="retrain", train_accuracy_stop=0.95),
        "warmstart": dict(replay="warmstart"),
        "finetune": dict(replay="finetune"),
        "er-bounded-memory": dict(replay="er", replay__memory_size=120, replay__retention="class_balanced"),
        "er-balanced-sampling": dict(replay="er", replay__sampling="class_balanced"),
        "auto-epochs": dict(replay="er", round_epochs="auto", max_epochs=12),
        "no-random-state": dict(replay="er", random_state=None),
        # skorch's mixin would print the epoch table at verbose=0 (its "auto" sink ignores verbose)
        "user-composed-class": dict(cls=UserNet, callbacks__print_log__sink=print),
        "keep-wrapped": dict(unwrap_after_train=False, reset_optimizer=False),
    }
    results = {}
    for name, params in configs.items():
        params = {"max_epochs": 6, "round_epochs": 3, **params}
        net = make_net(accelerator, **params)
        run_campaign(net, campaign_rounds(120, 60, 2), (X, y))
        results[name] = {"fingerprint": fingerprints(net)["all"], "rounds": without_seconds(net.rounds_)}
    return results


def checkpoint_case(accelerator, net, X, y, directory):
    """Save on the main process, load on every process, and both continue with the same round."""
    path = net.save_checkpoint(directory)
    loaded = make_net(accelerator)
    loaded.load_checkpoint(directory)
    same_on_load = {k: v for k, v in fingerprints(loaded).items() if k in ("weights", "history", "rounds", "rng")}
    expected = {k: v for k, v in fingerprints(net).items() if k in same_on_load}
    extra = campaign_rounds(500, 60, 1)[1]
    net.partial_fit(X[extra], y[extra])
    loaded.partial_fit(X[extra], y[extra])
    return {
        "path": str(path),
        "files": sorted(p.name for p in Path(directory).iterdir()),
        "loaded_equals_saved": same_on_load == expected,
        "continued": fingerprints(loaded)["weights"],
        "continued_original": fingerprints(net)["weights"],
    }


# -- scenarios -------------------------------------------------------------------
def freeze_garbage():
    """Make the full garbage collection that ends every accelerated round cheap (``gc.freeze``).

    Every round calls accelerate's ``free_memory()``, which collects garbage:
    with the ~400k objects torch and scikit-learn leave once a first campaign
    has run, that costs ~0.2 s a round and dominates these tiny campaigns.
    """
    gc.collect()
    gc.freeze()


def _accelerator(**kwargs):
    timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=120))  # a deadlock fails instead of hanging
    return CountingAccelerator(cpu=True, kwargs_handlers=[timeout], **kwargs)


def parallel(out):
    accelerator = _accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    X, y, X_test, y_test = digits_split()
    REPLAYED.clear()
    net, main = main_campaign(accelerator, X, y, X_test, y_test)
    freeze_garbage()
    main["n_backward"], main["n_autocast"] = accelerator.n_backward, accelerator.n_autocast
    main["probe"] = dict(net.callbacks_)["probe"].seen_
    main["replayed"] = [entry for entry in REPLAYED]
    main["module_between_rounds"] = type(net.module_).__name__
    result = {"rank": rank, "world_size": world, "main": main}
    clock = {"main": time.perf_counter()}
    result["checkpoint"] = checkpoint_case(accelerator, net, X, y, Path(out) / "checkpoint")
    clock["checkpoint"] = time.perf_counter()
    result["failure_reference"] = failure_reference(accelerator, X, y)
    result["failures"] = {
        kind: failure_case(accelerator, X, y, kind)
        for kind in ("raise", "nan", "batch_end", "epoch_end", "train_end", "logits")
    }
    result["different_data"] = different_data_case(accelerator, X, y)
    result["few_points"] = fewer_points_than_processes_case(accelerator, X, y)
    clock["failures"] = time.perf_counter()
    result["stop"] = stop_case(accelerator, X, y)
    result["strategies"] = strategy_cases(accelerator, X, y)
    clock["strategies"] = time.perf_counter()
    result["clock"] = clock
    return result


def plain_campaign(X, y, X_test, y_test, **params):
    """The main campaign with the plain estimator (one process, no accelerator)."""
    plain = ContinualActiveClassifier(
        module=MLP, lr=0.05, optimizer=torch.optim.Adam, batch_size=32, max_epochs=30, round_epochs=10,
        replay=ProbedER, verbose=0, random_state=0, callbacks=[("faults", Faults()), ("probe", Probe())],
    )  # fmt: skip
    plain.set_params(**params)
    times = run_campaign(plain, campaign_rounds(200, 100, 3), (X, y))
    return {
        "fingerprints": fingerprints(plain),
        "accuracy": accuracy(plain, X_test, y_test),
        "seconds": sum(times),
        "rounds": without_seconds(plain.rounds_),
    }


def single(out):
    """One process: the plain estimator and the accelerated one, same campaign."""
    X, y, X_test, y_test = digits_split()
    accelerator = _accelerator()
    plain_result = plain_campaign(X, y, X_test, y_test)
    # skcal's own batch loop draws its shuffle differently from a torch DataLoader, which accelerate needs:
    # pin_memory (a no-op on CPU) makes the plain estimator use a DataLoader too
    plain_loader = plain_campaign(X, y, X_test, y_test, iterator_train__pin_memory=False)
    _, accelerated = main_campaign(accelerator, X, y, X_test, y_test)
    freeze_garbage()
    # gradient accumulation: the accelerator steps the round's (prepared) optimizer every second batch
    accumulating = Accelerator(cpu=True, gradient_accumulation_steps=2)
    net = make_net(accumulating, replay="er", max_epochs=4, round_epochs=4, batch_size=40)
    run_campaign(net, campaign_rounds(160, 80, 1), (X, y))
    adam_steps = [int(state["step"]) for state in net.optimizer_.state_dict()["state"].values()]
    return {
        "plain": plain_result,
        "plain_dataloader": plain_loader,
        "accelerated": accelerated,
        "accumulation": {"adam_steps": sorted(set(adam_steps)), "batches": steps_taken(net)},
    }


def bf16(out):
    """One process with bf16 autocast: every training forward of every round runs under it."""
    accelerator = _accelerator(mixed_precision="bf16")
    X, y, _, _ = digits_split()
    freeze_garbage()
    seen = {}
    for replay in ("er", "sd", "mir"):
        net = make_net(accelerator, replay=replay, max_epochs=3, round_epochs=2)
        rounds = campaign_rounds(100, 50, 1)

        def record(i, net, replay=replay):
            module = net.unwrapped_module()
            seen[f"{replay}-round{i}"] = [[int(n), bool(flag)] for n, flag in module.autocast_seen]
            module.autocast_seen.clear()

        run_campaign(net, rounds, (X, y), on_round=record)
    return {"autocast_seen": seen, "n_backward": accelerator.n_backward, "n_autocast": accelerator.n_autocast}


def timed(estimator, seed, accuracy, times):
    return {"estimator": estimator, "seed": seed, "accuracy": accuracy, "seconds": sum(times), "round_seconds": times}


def measure(out, seeds=(0, 1, 2)):
    """The main campaign, accelerated on this launch's processes and (on one process) plain, per seed.

    A first campaign warms up (imports, allocator) and is not timed; with
    ``--freeze`` the garbage left by then is frozen (:func:`freeze_garbage`).
    """
    accelerator = _accelerator()
    X, y, X_test, y_test = digits_split()
    run_campaign(make_net(accelerator, replay="er", callbacks=None), campaign_rounds(200, 100, 3), (X, y))
    if "--freeze" in sys.argv:
        freeze_garbage()
    runs = []
    for seed in seeds:
        if accelerator.num_processes == 1:
            plain = ContinualActiveClassifier(
                module=MLP, lr=0.05, optimizer=torch.optim.Adam, batch_size=32, max_epochs=30, round_epochs=10,
                replay="er", verbose=0, random_state=seed,
            )  # fmt: skip
            times = run_campaign(plain, campaign_rounds(200, 100, 3), (X, y))
            runs.append(timed("plain", seed, accuracy(plain, X_test, y_test), times))
        net = make_net(accelerator, replay="er", random_state=seed, callbacks=None)
        times = run_campaign(net, campaign_rounds(200, 100, 3), (X, y))
        runs.append(timed(f"accelerated x{accelerator.num_processes}", seed, accuracy(net, X_test, y_test), times))
    if accelerator.is_main_process:
        for run in runs:
            print(json.dumps({**run, "freeze": "--freeze" in sys.argv}))
    return {"runs": runs}


SCENARIOS = {"parallel": parallel, "single": single, "bf16": bf16, "measure": measure}


if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    result = SCENARIOS[scenario](out)
    rank = int(os.environ.get("RANK", "0"))
    # write atomically: the test reads the files only after every process exited
    handle, temporary = tempfile.mkstemp(dir=out, suffix=".tmp")
    with os.fdopen(handle, "w") as file:
        json.dump(result, file, indent=1, default=str)
    os.replace(temporary, out / f"{scenario}-rank{rank}.json")
    # The report is written; leave without the interpreter's teardown. torch's gloo threads, torn down
    # at exit, abort a process now and then ("terminate called without an active exception", SIGABRT),
    # after its work is done, even with the process group destroyed first.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
