import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
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
    main_table = (out / "table.md").read_text().split("\n\n")[0]
    assert main_table.count("\n") == 2 + 4 - 1  # header, rule, one line per method
    assert "±" in main_table  # two seeds: mean ± 95% interval
    assert "half-width of the 95% t-interval over 2 seeds" in (out / "table.md").read_text()

    for name in ("speedup_vs_accuracy", "speedup_vs_budget", "forgetting", "entropy_correlation"):
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


def run_bad(capsys, arguments, out):
    """Run ``skcal bench`` with bad arguments; return stderr after checking it is a clean argument error."""
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--out", str(out), "--no-progress", *arguments])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err
    assert "skcal bench: error: argument --" in err, err
    return err


def no_cuda_device() -> str:
    """A CUDA device string that cannot be trained on here, whatever the machine has."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


@pytest.mark.parametrize(
    ("arguments", "flag", "message"),
    [
        (["--device", "bogus"], "--device", "'bogus' is not a torch device"),
        (["--device", ""], "--device", "is not a torch device"),
        (["--device", "meta"], "--device", "not a device skcal bench can train on"),
        (["--device", no_cuda_device()], "--device", "cuda"),
        (["--threads", "-1"], "--threads", "must be at least 1, got -1"),
        (["--threads", "0"], "--threads", "must be at least 1, got 0"),
        (["--threads", "1.5"], "--threads", "expected a whole number, got '1.5'"),
        (["--threads", "two"], "--threads", "expected a whole number"),
        (["--seeds", "0"], "--seeds", "at least 1"),
        (["--seeds", "-3"], "--seeds", "at least 1"),
        (["--seeds", "2.5"], "--seeds", "whole number"),
        (["--round-epochs", "0"], "--round-epochs", "at least 1"),
        (["--max-epochs", "-1"], "--max-epochs", "at least 1"),
        (["--max-epochs", "ten"], "--max-epochs", "whole number"),
        (["--initial", "0"], "--initial", "outside (0, 1]"),
        (["--initial", "nan"], "--initial", "outside (0, 1]"),
        (["--query", "1.5"], "--query", "outside (0, 1]"),
        (["--query", "x"], "--query", "expected a fraction"),
        (["--budgets", ","], "--budgets", "expected comma-separated fractions"),
        (["--budgets", ""], "--budgets", "expected comma-separated fractions"),
        (["--budgets", "0.1,,0.2"], "--budgets", "empty entry"),
        (["--budgets", "0.1,1.5"], "--budgets", "budget 1.5 is outside (0, 1]"),
        (["--budgets", "0,0.2"], "--budgets", "budget 0 is outside (0, 1]"),
        (["--budgets", "inf"], "--budgets", "outside (0, 1]"),
        (["--budgets", "a,b"], "--budgets", "comma-separated fractions"),
        (["--budgets", "0.2,0.2"], "--budgets", "given more than once"),
        (["--budgets", "0.02"], "--budgets", "below the seed set's fraction"),
        (["--budgets", "0.1,0.11"], "--budgets", "both reported by round 1"),
        (["--budgets", "0.9", "--initial", "0.5", "--query", "0.5"], "--budgets", "more labels than the pool"),
        (["--methods", "retrain,ewc"], "--methods", "Unknown method(s) ['ewc']"),
        (["--methods", "er,sd"], "--methods", "include it"),
        (["--methods", "retrain,er,er"], "--methods", "er given more than once"),
        (["--methods", ","], "--methods", "expected comma-separated names"),
        (["--methods", "retrain,,er"], "--methods", "empty entry"),
        (["--dataset", "cifar"], "--dataset", "Unknown dataset 'cifar'"),
        (["--dataset", "digits,digits"], "--dataset", "digits given more than once"),
        (["--dataset", ""], "--dataset", "expected comma-separated names"),
        (["--dataset", "missing.h5ad", "--label-key", "cell_type"], "--dataset", "No such file: missing.h5ad"),
        (["--dataset", "missing.npz"], "--dataset", "No such file: missing.npz"),
        (["--dataset", "cells.h5ad"], "--label-key", "needs --label-key"),
        (["--label-key", "cell_type"], "--label-key", "only used with an .h5ad dataset"),
        (["--dataset", "x.h5ad", "--label-key", " "], "--label-key", "must not be empty"),
        (["--data-root", "/tmp"], "--data-root", "only used with --dataset medmnist"),
        (["--medmnist-flag", "pathmnist"], "--medmnist-flag", "only used with --dataset medmnist"),
    ],
)
def test_bad_arguments_are_clear_errors_before_any_work(arguments, flag, message, capsys, tmp_path):
    out = tmp_path / "out"
    err = run_bad(capsys, arguments, out)
    assert f"argument {flag}: " in err and message in err, err
    assert not out.exists()  # nothing trained, nothing written


def write_npz(path, n_train=30, n_test=10, image_shape=(28, 28), labels=None, **replace):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *image_shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 3, (n, 1)) if labels is None else labels(n)
    arrays.update(replace)
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return path


def write_npy(path):
    with open(path, "wb") as stream:
        np.save(stream, np.zeros(3))


def write_zip_without_arrays(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not numpy")
    return path


def write_foreign_zip_member(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name in ("train_images", "train_labels", "test_images", "test_labels"):
            archive.writestr(f"{name}.npy", b"not an npy file")
    return path


BAD_NPZ = {
    "not a zip": (lambda p: p.write_bytes(b"garbage, not a zip archive"), "not an .npz archive"),
    "a .npy under an .npz name": (write_npy, "not an .npz archive"),
    "a zip of other files": (write_zip_without_arrays, "lacks the array(s)"),
    "missing test arrays": (lambda p: write_npz(p, test_images=None, test_labels=None), "lacks the array(s)"),
    "members that are not .npy": (write_foreign_zip_member, "is not a numpy array"),
    "flat images": (lambda p: write_npz(p, image_shape=(784,)), "expected (n, height, width)"),
    "channels first": (lambda p: write_npz(p, image_shape=(3, 28, 28)), "1 to 4 channels"),
    "zero-size images": (lambda p: write_npz(p, image_shape=(0, 28)), "zero size"),
    "text images": (lambda p: write_npz(p, train_images=np.array(["a"] * 30)), "expected numbers"),
    "pickled objects": (
        lambda p: write_npz(p, train_labels=np.array([object()] * 30, dtype=object)),
        "cannot read the arrays",
    ),
    "NaN pixels": (lambda p: write_npz(p, test_images=np.full((10, 28, 28), np.nan)), "NaN or infinity"),
    "fewer labels than images": (lambda p: write_npz(p, train_labels=np.zeros((29, 1), int)), "29 labels for 30"),
    "multi-label": (lambda p: write_npz(p, labels=lambda n: np.zeros((n, 14), int)), "multi-label"),
    "3-D labels": (lambda p: write_npz(p, labels=lambda n: np.zeros((n, 1, 1), int)), "expected (n,) or (n, 1)"),
    "fractional labels": (lambda p: write_npz(p, labels=lambda n: np.full(n, 0.5)), "not class numbers"),
    "different image sizes": (
        lambda p: write_npz(p, test_images=np.zeros((10, 32, 32), np.uint8)),
        "different image shapes",
    ),
    "one class": (lambda p: write_npz(p, labels=lambda n: np.zeros(n, int)), "needs at least 2"),
    "a class of one image": (
        lambda p: write_npz(p, train_labels=np.r_[np.zeros(29, int), 1], test_labels=np.zeros(10, int)),
        "cannot be split into a stratified pool",
    ),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_malformed_npz_is_an_argument_error(case, capsys, tmp_path):
    write, message = BAD_NPZ[case]
    path = tmp_path / "images.npz"
    write(path)
    out = tmp_path / "out"
    err = run_bad(capsys, ["--dataset", str(path), "--budgets", "0.2"], out)
    assert "argument --dataset: " in err and message in err, err
    assert not out.exists()


def test_a_valid_npz_passes_the_checks(tmp_path):
    from skcal.bench import check_npz, plan_benchmark

    path = write_npz(tmp_path / "grey.npz", n_train=60, n_test=20, labels=lambda n: (np.arange(n) % 3).astype(float))
    check_npz(path)
    data = load_benchmark_data(str(path))
    assert data.X.shape == (80, 1, 28, 28) and set(data.y) == {0, 1, 2}
    plan = plan_benchmark(data, ["retrain", "er"], [0.2, 0.4], initial=0.1, query=0.1)
    assert plan.n_pool == 60 and plan.initial_count == plan.query_count == 6
    assert plan.budget_rounds == {0.2: 1, 0.4: 3}


@pytest.fixture
def cells(tmp_path):
    import anndata
    import pandas as pd

    types = np.array(["B", "T", "NK"] * 20)
    obs = pd.DataFrame({"cell_type": types}, index=[f"cell{i}" for i in range(len(types))])
    adata = anndata.AnnData(np.random.default_rng(0).random((len(types), 8)).astype(np.float32), obs=obs)
    adata.obs["partial"] = adata.obs["cell_type"].where(np.arange(len(types)) > 2)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    return tmp_path / "cells.h5ad"


def test_h5ad_errors_name_the_file_or_the_label_key(cells, capsys, tmp_path):
    garbage = tmp_path / "garbage.h5ad"
    garbage.write_bytes(b"\x00 this is not HDF5 " * 10)
    out = tmp_path / "out"
    err = run_bad(capsys, ["--dataset", str(garbage), "--label-key", "cell_type"], out)
    assert "argument --dataset: cannot read garbage.h5ad as an AnnData .h5ad file" in err
    err = run_bad(capsys, ["--dataset", str(cells), "--label-key", "celltype"], out)
    assert "argument --label-key: cells.h5ad has no obs column 'celltype'" in err and "'cell_type'" in err
    err = run_bad(capsys, ["--dataset", str(cells), "--label-key", "partial"], out)
    assert "argument --label-key: 3 cells of cells.h5ad have no 'partial' label" in err
    folder = tmp_path / "folder.h5ad"
    folder.mkdir()
    err = run_bad(capsys, ["--dataset", str(folder), "--label-key", "cell_type"], out)
    assert "argument --dataset: " in err and "is not a file" in err
    assert not out.exists()


def test_csv_without_its_columns_is_an_argument_error(capsys, tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text("sentence,target\nhello,a\n")
    err = run_bad(capsys, ["--dataset", str(path)], tmp_path / "out")
    assert "argument --dataset: cannot read texts.csv" in err and "lacks column(s)" in err
    assert not (tmp_path / "out").exists()


def test_medmnist_errors_name_the_data_root_or_the_flag(capsys, tmp_path):
    pytest.importorskip("medmnist")
    out = tmp_path / "out"
    err = run_bad(capsys, ["--dataset", "medmnist", "--data-root", str(tmp_path / "none")], out)
    assert "argument --data-root: " in err and "is not a folder" in err
    err = run_bad(capsys, ["--dataset", "medmnist", "--data-root", str(tmp_path)], out)
    assert "argument --data-root: No dermamnist.npz in" in err
    (tmp_path / "dermamnist.npz").write_bytes(b"truncated download")
    err = run_bad(capsys, ["--dataset", "medmnist", "--data-root", str(tmp_path)], out)
    assert "argument --data-root: dermamnist.npz: not an .npz archive" in err
    err = run_bad(capsys, ["--dataset", "medmnist", "--medmnist-flag", "dermmnist"], out)
    assert "argument --medmnist-flag: Unknown MedMNIST flag 'dermmnist'" in err
    err = run_bad(capsys, ["--dataset", "medmnist", "--medmnist-flag", "chestmnist"], out)
    assert "argument --medmnist-flag: " in err and "one label per image" in err
    assert not out.exists()


def test_bad_out_fails_before_training(capsys, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    err = run_bad(capsys, ["--methods", "retrain,er"], a_file)
    assert f"argument --out: {a_file} is a file, not a folder" in err
    err = run_bad(capsys, ["--methods", "retrain,er"], a_file / "results")
    assert f"argument --out: {a_file} is a file, not a folder" in err
    assert a_file.read_text() == "keep me"
    # a place nobody, root included, can create a folder in
    err = run_bad(capsys, ["--methods", "retrain,er"], "/proc/skcal-results")
    assert "argument --out: cannot create or write to the folder /proc/skcal-results" in err
    assert not Path("/proc/skcal-results").exists()
    err = run_bad(capsys, [], "")
    assert "argument --out: must not be empty" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]


def test_a_dataset_folder_that_is_a_file_fails_before_the_first_dataset_trains(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "digits").write_text("not a folder")
    arguments = ["--dataset", "pbmc68k,digits", "--methods", "retrain,er", "--quick", "--max-epochs", "1"]
    err = run_bad(capsys, arguments, out)
    assert f"argument --out: {out / 'digits'} is a file, not a folder" in err
    assert sorted(path.name for path in out.iterdir()) == ["digits"]  # pbmc68k was not trained nor written


def test_datasets_sharing_a_folder_are_an_error(capsys, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write_npz(tmp_path / "a" / "x.npz"), write_npz(tmp_path / "b" / "x.npz")
    out = tmp_path / "out"
    err = run_bad(capsys, ["--dataset", f"{first},{second}", "--budgets", "0.2"], out)
    assert "argument --out: two datasets would write to the same folder" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [(["--device", "bogus"], "--device"), (["--budgets", ","], "--budgets"), (["--threads", "-1"], "--threads")],
)
def test_the_console_command_exits_2_without_a_traceback(arguments, flag, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "skcal", "bench", "--no-progress", "--out", str(out), *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr
    assert f"skcal bench: error: argument {flag}: " in finished.stderr
    assert finished.stderr.startswith("usage: skcal bench")
    assert not out.exists()


def test_library_checks_raise_before_training(tmp_path):
    from skcal.bench import BenchmarkInputError, check_device, prepare_output

    data = load_benchmark_data("digits")
    with pytest.raises(BenchmarkInputError, match="seeds must be a positive integer") as info:
        run_benchmark(data, ["retrain"], [0.1], seeds=0)
    assert info.value.parameter == "seeds" and isinstance(info.value, ValueError)
    with pytest.raises(BenchmarkInputError, match="not a torch device") as info:
        run_benchmark(data, ["retrain"], [0.1], seeds=1, device="bogus")
    assert info.value.parameter == "device"
    assert check_device("cpu") == "cpu"
    with pytest.raises(BenchmarkInputError) as info:
        check_device(no_cuda_device())
    assert info.value.parameter == "device"

    folders = prepare_output(tmp_path / "new" / "results", ["digits"], keep=False)
    assert folders == [tmp_path / "new" / "results" / "digits"] and not (tmp_path / "new").exists()
    folders = prepare_output(tmp_path / "results", ["digits", "cells"])
    assert all(folder.is_dir() and not any(folder.iterdir()) for folder in folders)


def test_wordnet_benchmark_data():
    if not Path("/usr/share/wordnet/data.noun").exists():
        pytest.skip("Debian's wordnet-base is not installed")
    data = load_benchmark_data("wordnet", quick=True)  # the 5-category quick task, on TF-IDF
    assert data.X.shape[0] == 2000 and len(np.unique(data.y)) == 5
    data.estimator_params.update(max_epochs=3, round_epochs=1)
    result = run_benchmark(data, ["retrain", "sd"], [0.1], seeds=1)
    assert {row["method"] for row in summarize(result)} == {"retrain", "sd"}
