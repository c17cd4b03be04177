import json

import numpy as np
import pytest
from PIL import Image

from skcal.bench import format_table, load_benchmark_data, run_benchmark, summarize
from skcal.cli import main


def test_cli_quick_run_writes_tables_and_plots(tmp_path, capsys):
    code = main(
        [
            "bench",
            "--dataset",
            "digits",
            "--methods",
            "retrain,finetune,er,sd",
            "--budgets",
            "0.1,0.15",
            "--seeds",
            "2",
            "--max-epochs",
            "5",
            "--round-epochs",
            "2",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    out = tmp_path / "digits"
    printed = capsys.readouterr().out
    assert "CAL-SD" in printed and "acc 15%" in printed and "bal acc 15%" in printed

    summary = json.loads((out / "summary.json").read_text())
    assert summary["budget_rounds"] == {"0.1": 1, "0.15": 2}
    rows = {(row["method"], row["budget"]): row for row in summary["table"]}
    assert len(rows) == 8 and rows[("retrain", 0.1)]["time_speedup"] == pytest.approx(1.0)
    assert all(row["n_seeds"] == 2 and 0 <= row["accuracy_mean"] <= 1 for row in rows.values())
    er_at_15 = [r["balanced_accuracy"] for r in json.loads((out / "rounds.json").read_text()) if r["method"] == "er"]
    assert rows[("er", 0.15)]["balanced_accuracy_mean"] == pytest.approx(np.mean(er_at_15[2::3]))

    records = json.loads((out / "rounds.json").read_text())
    assert len(records) == 2 * 4 * 3  # seeds x methods x rounds (seed + 2 queries)
    import pandas as pd

    frame = pd.read_csv(out / "rounds.csv")
    assert len(frame) == len(records) and {"accuracy", "cumulative_train_seconds"} <= set(frame.columns)
    assert (out / "table.md").read_text().count("\n") == 2 + 4
    assert "±" in (out / "table.md").read_text()  # two seeds: mean ± std

    for name in ("speedup_vs_accuracy", "forgetting", "entropy_correlation"):
        image = np.asarray(Image.open(out / f"{name}.png").convert("L"))
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 10  # not a blank canvas


def test_speedups_are_ratios_of_cumulative_training_time():
    data = load_benchmark_data("digits")
    data.estimator_params.update(max_epochs=3, round_epochs=1)
    result = run_benchmark(data, ["retrain", "er"], [0.1], seeds=1)
    rows = {row["method"]: row for row in summarize(result)}
    retrain = next(r for r in result.rounds if r["method"] == "retrain" and r["round"] == 1)
    er = next(r for r in result.rounds if r["method"] == "er" and r["round"] == 1)
    assert rows["er"]["time_speedup"] == pytest.approx(
        retrain["cumulative_train_seconds"] / er["cumulative_train_seconds"]
    )
    expected = retrain["cumulative_samples_backpropagated"] / er["cumulative_samples_backpropagated"]
    assert rows["er"]["samples_speedup"] == pytest.approx(expected)
    table = format_table(summarize(result), markdown=True)
    er_line = next(line for line in table.splitlines() if line.startswith("| CAL-ER"))
    assert f"| {100 * rows['er']['accuracy_mean']:.1f} |" in er_line
    assert "±" not in table  # one seed: no spread to report


def test_pbmc68k_loads_as_cells_by_genes():
    data = load_benchmark_data("pbmc68k")
    assert data.X.shape == (700, 765) and len(np.unique(data.y)) == 10


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dataset", "cifar"], "Unknown dataset 'cifar'"),
        (["--methods", "retrain,ewc"], r"Unknown method\(s\) \['ewc'\]"),
        (["--methods", "er,sd"], "include it"),
        (["--budgets", "0.1,1.5"], r"budget 1.5 is outside \(0, 1\]"),
        (["--budgets", "0,0.2"], r"budget 0.0 is outside \(0, 1\]"),
        (["--budgets", "0.9", "--initial", "0.5", "--query", "0.5"], "more labels than the pool"),
        (["--budgets", "a,b"], "comma-separated fractions"),
        (["--dataset", "missing.h5ad", "--label-key", "cell_type"], "No AnnData file"),
        (["--dataset", "cells.h5ad"], "--label-key"),
        (["--seeds", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_clear_errors(arguments, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--out", str(tmp_path), "--no-progress", *arguments])
    assert exit_info.value.code == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(capsys.readouterr().err)


def test_wordnet_benchmark_data():
    from pathlib import Path

    if not Path("/usr/share/wordnet/data.noun").exists():
        pytest.skip("Debian's wordnet-base is not installed")
    data = load_benchmark_data("wordnet")
    assert data.X.shape[0] == 2000 and len(np.unique(data.y)) == 5
    data.estimator_params.update(max_epochs=3, round_epochs=1)
    result = run_benchmark(data, ["retrain", "sd"], [0.1], seeds=1)
    assert {row["method"] for row in summarize(result)} == {"retrain", "sd"}
