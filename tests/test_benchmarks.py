"""Every benchmark script runs end to end at toy sizes (the figures themselves live in docs/benchmarks.md).

Nothing here asserts on timings; the point is that a script a user runs to
check a claim still works, and that its own consistency checks (e.g. the
throughput script asserting that skcal and the bare loop did the same work)
pass.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RESULTS = BENCHMARKS.parent / "docs" / "results"

TOY_RUNS = {
    "cal_targets.py": ([str(RESULTS / "sentiment")], "a CAL method within 0.3 points of AL at >= 3x"),
    "class_balanced_replay.py": (
        [
            "--dataset",
            "pbmc68k",
            "--methods",
            "er",
            "--seeds",
            "1",
            "--budgets",
            "0.1",
            "--quiet",
            "--out",
            str(Path(tempfile.mkdtemp()) / "class-balanced"),
        ],
        "| CAL-ER | class_balanced |",
    ),
    "overhead.py": (
        ["--history", "300", "--new", "64", "--epochs", "1", "--repeats", "1", "--sizes", "1000,2000"],
        "ratio of medians",
    ),
    "replay_cost.py": (
        ["--history", "300", "--new", "64", "--epochs", "1", "--repeats", "1", "--sizes", "50,200"],
        "same set: True",
    ),
    "query_throughput.py": (["--pool", "5000", "--repeats", "1", "--diversity-rows", "2000"], "badge"),
    "round_epochs.py": (
        [
            "--datasets",
            "digits",
            "--methods",
            "er",
            "--settings",
            "auto,2",
            "--seeds",
            "2",
            "--budgets",
            "0.1,0.15",
            "--quiet",
            "--out",
            str(Path(tempfile.mkdtemp()) / "round-epochs"),
        ],
        "auto on the frontier at",
    ),
    "defaults.py": (
        ["--phase", "design", "--seeds", "1", "--problems", "clean4", "--settings", "er-off-auto,er-sp0.9-10",
         "--quiet", "--out", str(Path(tempfile.mkdtemp()) / "defaults")],
        "winner: er-",
    ),  # fmt: skip
    "defaults_report.py": (["--out", tempfile.mkdtemp()], "Defaults study, held-out phase"),
    "serve_load.py": (["fuzz", "--bodies", "30"], "fuzz: ok"),
    "soak.py": (["--history", "1000", "--rounds", "4", "--new", "50", "--every", "2"], "last/first median round time"),
    "stopping.py": (
        ["--datasets", "digits", "--seeds", "1", "--budget", "0.3", "--max-epochs", "2", "--round-epochs", "1"],
        "accuracy at stop vs full budget",
    ),
    "throughput.py": (
        [
            "--repeats",
            "1",
            "--images",
            "8",
            "--cells",
            "100",
            "--genes",
            "300",
            "--detected",
            "20",
            "--cell-epochs",
            "1",
        ],
        "the transfer costs",
    ),
}


def test_every_benchmark_script_has_a_toy_run():
    assert sorted(TOY_RUNS) == sorted(path.name for path in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("script", sorted(TOY_RUNS))
def test_benchmark_runs_at_toy_size(script):
    arguments, expected = TOY_RUNS[script]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--threads", "1", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout


def _campaign_rounds(method, accuracies, seconds, samples):
    return [
        {"dataset": "sentiment", "method": method, "seed": seed, "round": 1, "labelled_fraction": 0.5,
         "accuracy": accuracy, "cumulative_train_seconds": seconds, "cumulative_samples_backpropagated": samples}
        for seed, accuracy in enumerate(accuracies)
    ]


@pytest.mark.parametrize(
    ("cal_accuracies", "cal_samples", "met"),
    [([0.80, 0.82], 100, True), ([0.79, 0.81], 100, False), ([0.80, 0.82], 400, False)],
)
def test_cal_targets_verdict_follows_the_campaigns(tmp_path, cal_accuracies, cal_samples, met):
    rounds = (
        _campaign_rounds("retrain", [0.80, 0.82], 30.0, 1000)
        + _campaign_rounds("warmstart", [0.80, 0.82], 20.0, 800)
        + _campaign_rounds("er", cal_accuracies, 5.0, cal_samples)
    )
    (tmp_path / "rounds.json").write_text(json.dumps(rounds))
    (tmp_path / "summary.json").write_text(json.dumps({"budget_rounds": {"0.5": 1}}))
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cal_targets.py"), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = "**met** (CAL-ER)" if met else "**NOT met** (none)"
    assert f"AL at >= 3x time and samples: {verdict}" in done.stdout
