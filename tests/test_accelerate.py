"""Data-parallel CAL rounds with Hugging Face Accelerate (skorch's AccelerateMixin), on CPU processes.

Three launches of tests/accelerate_worker.py, each process writing what it
holds (SHA-256 of weights, optimizer state, labelled history, ``rounds_``,
generator) to a file; the tests compare the files:

- two processes (``torch.distributed.run``, gloo): seed + 3 CAL rounds on
  digits, failures injected on one process, a callback stopping one
  process, every strategy, a checkpoint saved and loaded;
- one process: the accelerated estimator against the plain one;
- one process with bf16 mixed precision.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from skorch.hf import AccelerateMixin

from skcal import ContinualActiveClassifier
from skcal.accelerate import AcceleratedContinualActiveClassifier
from skcal.round import process_generator

WORKER = Path(__file__).with_name("accelerate_worker.py")
REPOSITORY = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT = 600  # seconds; a deadlock inside fails sooner (the worker's process-group timeout is 120 s)
ACCURACY_NOISE = 0.03  # seed-to-seed spread of this campaign's test accuracy is about +-0.007 (docs/scaling.md)


def launch(scenario, out, processes):
    """Run the worker on ``processes`` processes; return each process's report."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: keep gloo on the loopback interface
    if processes == 1:
        command = [sys.executable, str(WORKER), scenario, str(out)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command += [str(WORKER), scenario, str(out)]
    child = subprocess.Popen(
        command, cwd=REPOSITORY, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = child.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the launcher and the processes it started
        output, _ = child.communicate()
        pytest.fail(f"{scenario} on {processes} processes did not finish in {LAUNCH_TIMEOUT} s:\n{output[-6000:]}")
    assert child.returncode == 0, f"{scenario} on {processes} processes failed:\n{output[-8000:]}"
    return [json.loads((out / f"{scenario}-rank{rank}.json").read_text()) for rank in range(processes)]


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    return launch("parallel", tmp_path_factory.mktemp("parallel"), processes=2)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return launch("single", tmp_path_factory.mktemp("single"), processes=1)[0]


@pytest.fixture(scope="module")
def bf16(tmp_path_factory):
    return launch("bf16", tmp_path_factory.mktemp("bf16"), processes=1)[0]


# -- two processes -------------------------------------------------------------
def test_after_seed_and_three_rounds_every_process_holds_the_same_campaign(parallel):
    first, second = parallel
    assert (first["rank"], second["rank"], first["world_size"]) == (0, 1, 2)
    for part in ("weights", "optimizer", "history", "rounds", "rng"):
        assert first["main"]["fingerprints"][part] == second["main"]["fingerprints"][part], part
    records = first["main"]["rounds"]
    assert records == second["main"]["rounds"]
    assert [r["strategy"] for r in records] == ["seed", "er", "er", "er"]
    assert [r["n_new"] for r in records] == [200, 100, 100, 100]
    assert [r["n_history"] for r in records] == [0, 200, 300, 400]


def test_each_process_trains_on_its_share_with_the_accelerator(parallel, single):
    for report in parallel:
        main = report["main"]
        # every step, seed and replay rounds alike, went through accelerator.autocast and accelerator.backward
        assert main["n_backward"] == main["n_autocast"] == main["steps"] > 0
        for seen in main["probe"]:
            assert seen == {
                "module": "DistributedDataParallel",
                "optimizer": "AcceleratedOptimizer",
                "device": "cpu",
                "batch_size": 32,
                "replay_size": 32,
            }
        assert main["module_between_rounds"] == "MLP"  # unwrapped after every round (picklable)
    # each process ran about half the steps one process runs (the last batch of an epoch may be padded)
    alone = single["accelerated"]["steps"]
    assert alone / 2 <= parallel[0]["main"]["steps"] < alone
    # the work of both processes is counted once in rounds_: at least the single process's
    for together, one in zip(parallel[0]["main"]["rounds"], single["accelerated"]["rounds"], strict=True):
        assert together["samples_backpropagated"] >= one["samples_backpropagated"]
        assert together["epochs"] == one["epochs"]


def test_each_process_draws_its_own_replay_batches_from_the_same_history(parallel):
    draws = {}
    for report in parallel:
        for round_id, rank, positions in report["main"]["replayed"]:
            assert rank == report["rank"]
            draws.setdefault(round_id, {})[rank] = positions
    assert sorted(draws) == [1, 2, 3]
    for round_id, by_rank in draws.items():
        n_history = 200 + 100 * (round_id - 1)
        assert by_rank[0] != by_rank[1], f"round {round_id}: both processes replayed the same points"
        for positions in by_rank.values():
            assert len(positions) == 32 == len(set(positions)) and max(positions) < n_history


def test_two_processes_match_one_process_accuracy_within_noise(parallel, single):
    together = parallel[0]["main"]["accuracy"]
    assert together == parallel[1]["main"]["accuracy"]
    assert abs(together - single["plain"]["accuracy"]) <= ACCURACY_NOISE
    assert together > 0.9


@pytest.mark.parametrize("kind", ["raise", "nan", "batch_end", "epoch_end", "train_end", "logits"])
def test_a_round_failing_on_one_process_fails_everywhere_without_corrupting_state(parallel, kind):
    healthy, failing = (report["failures"][kind] for report in parallel)
    own_error = {
        "raise": "RuntimeError: injected failure in a replay step",
        "nan": "FloatingPointError: Round 2, epoch",
        "batch_end": "RuntimeError: injected failure in on_batch_end",
        "epoch_end": "RuntimeError: injected failure in on_epoch_end",
        "train_end": "RuntimeError: injected failure in on_train_end",
        "logits": "RuntimeError: injected failure computing the logits",
    }[kind]
    assert failing["error"].startswith(own_error)
    assert healthy["error"] == "RoundFailedOnAnotherProcess: ranks [1]"
    for report, case in zip(parallel, (healthy, failing), strict=True):
        assert case["unchanged_by_failure"], f"process {report['rank']} changed"
        # retrying the round, then one more, gives exactly the campaign that never failed
        assert case["n_rounds"] == 4
        assert case["final"] == report["failure_reference"]
    assert parallel[0]["failure_reference"] == parallel[1]["failure_reference"]


def test_processes_given_different_data_fail_the_round_on_all_and_keep_their_state(parallel):
    # before: each process silently committed its own history, with logits gathered from the other's points
    first, second = (report["different_data"] for report in parallel)
    for case in (first, second):
        assert all(error and "processes were given different data" in error for error in case["errors"]), case
        assert case["unchanged"] and case["n_rounds"] == 2
    assert first["errors"] == second["errors"]
    assert first["final"] == second["final"]


def test_rounds_with_fewer_new_points_than_processes_stay_identical(parallel):
    first, second = (report["few_points"] for report in parallel)
    assert first == second  # the padding the accelerator adds is trained on, but never committed
    assert first["history"] == 64 and first["logits"] == [64, 10] and first["n_new"] == [60, 1, 3]


def test_a_callback_stopping_one_process_ends_the_round_on_all(parallel):
    first, second = (report["stop"] for report in parallel)
    assert first == second
    assert first["record"]["epochs"] == 2 and first["record"]["stopped_by"] == "callback"


def test_every_strategy_and_option_keeps_the_processes_identical(parallel):
    first, second = (report["strategies"] for report in parallel)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name]["fingerprint"] != second[name]["fingerprint"]]
    assert not different, f"the processes differ after: {different}"
    for name, case in first.items():
        assert case["rounds"] == second[name]["rounds"], name
    # the stopping rules read accuracies summed over both processes, so they stop both alike
    assert [r["stopped_by"] for r in first["auto-epochs"]["rounds"]][1:] != [None, None]


def test_a_checkpoint_is_written_once_and_continues_on_every_process(parallel):
    first, second = (report["checkpoint"] for report in parallel)
    assert first["files"] == ["checkpoint.pt"]  # written by process 0 alone, no temporaries left
    assert first["path"] == second["path"]
    for case in (first, second):
        assert case["loaded_equals_saved"]
        assert case["continued"] == case["continued_original"]
    assert first["continued"] == second["continued"]


# -- one process ---------------------------------------------------------------
def test_one_accelerated_process_trains_exactly_like_the_plain_estimator(single):
    # skcal's own batch loop shuffles differently from a torch DataLoader, which an accelerator needs
    assert single["plain_dataloader"]["fingerprints"] == single["accelerated"]["fingerprints"]
    assert single["plain_dataloader"]["accuracy"] == single["accelerated"]["accuracy"]


def test_gradient_accumulation_steps_the_optimizer_each_round_rebuilds(single):
    # the last round: 80 new points in batches of 40 for 4 epochs, 8 batches, one optimizer step per 2
    assert single["accumulation"] == {"adam_steps": [4], "batches": 24}


def test_mixed_precision_covers_the_joint_forward_pass_of_replay_steps(bf16):
    seen = bf16["autocast_seen"]
    assert bf16["n_backward"] == bf16["n_autocast"] > 0
    for replay in ("er", "sd", "mir"):
        assert all(flag for _, flag in seen[f"{replay}-round0"])  # the seed round
        joint = {n: flag for n, flag in seen[f"{replay}-round1"] if n in (64, 50)}  # 32 + 32 and 18 + 32 points
        assert joint == {64: True, 50: True}, replay
    # MIR scores its candidates with a virtual step outside autocast; ER and SD forward only the joint batch
    assert all(flag for _, flag in seen["er-round1"] + seen["sd-round1"])


# -- in this process -------------------------------------------------------------
def test_subclasses_with_the_mixin_first_keep_the_round_step():
    class Net(AccelerateMixin, ContinualActiveClassifier):
        pass

    class OwnStep(AccelerateMixin, ContinualActiveClassifier):
        def train_step_single(self, batch, **fit_params):
            return AccelerateMixin.train_step_single(self, batch, **fit_params)

    for cls in (Net, AcceleratedContinualActiveClassifier):
        assert cls.train_step_single is ContinualActiveClassifier.train_step_single
        assert cls._initialize_accelerator is ContinualActiveClassifier._initialize_accelerator
    assert OwnStep.train_step_single is not ContinualActiveClassifier.train_step_single


def test_replay_generators_differ_by_process_and_repeat_by_seed():
    draws = [process_generator(7, rank).integers(1000, size=8).tolist() for rank in (0, 1, 0)]
    assert draws[0] == draws[2] != draws[1]


def test_the_plain_estimator_never_imports_accelerate():
    code = (
        "import sys, numpy as np, skcal, skcal.models\n"
        "X = np.random.RandomState(0).randn(40, 4).astype('float32'); y = (X[:, 0] > 0).astype(int)\n"
        "net = skcal.ContinualActiveClassifier(skcal.models.MLP, max_epochs=2, round_epochs=2, verbose=0)\n"
        "net.fit(X[:20], y[:20]).partial_fit(X[20:], y[20:]).predict(X)\n"
        "print(sorted(m for m in ('accelerate', 'skcal.accelerate') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
