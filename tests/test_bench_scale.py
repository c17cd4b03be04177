"""``skcal bench`` at scale: Fashion-MNIST, sentiment and full WordNet, subsampling, resuming, reporting."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from skcal.bench import (
    AugmentedResNet18,
    BenchmarkResult,
    CampaignStore,
    apply_epochs,
    campaign_config,
    campaign_split,
    confidence_interval,
    format_table,
    load_benchmark_data,
    plan_benchmark,
    random_flip_crop,
    run_benchmark,
    summarize,
    time_to_target,
)
from skcal.cli import build_parser, main

FIGURES = ("speedup_vs_accuracy", "speedup_vs_budget", "forgetting", "entropy_correlation")
OUTPUTS = ("rounds.csv", "rounds.json", "summary.json", "summary.csv", "table.txt", "table.md")


def require(dataset):
    """Load a built-in dataset's loader once; skip where its data is not installed (fail under SKCAL_REQUIRE_DATA)."""
    from skcal import datasets

    loaders = {
        "fashion-mnist": lambda: datasets.load_fashion_mnist(split="test", download_if_missing=False),
        "sentiment": lambda: datasets.load_sentiment_sentences(download_if_missing=False),
        "wordnet": lambda: datasets.load_wordnet_glosses(pos=("verb",)),
    }
    try:
        loaders[dataset]()
        if dataset in ("sentiment", "wordnet"):
            from skcal.text_embedding import resolve_model_path

            resolve_model_path()
    except FileNotFoundError as error:
        if os.environ.get("SKCAL_REQUIRE_DATA"):
            pytest.fail(f"{dataset} is not installed: {error}")
        pytest.skip(f"{dataset} is not installed: {error}")


def bench(out, *arguments, quiet=True):
    """Run ``skcal bench`` in this process; return its exit status."""
    return main(["bench", "--out", str(out), *(["--quiet"] if quiet else []), *arguments])


def check_every_output(folder, methods, seeds):
    """Every table, JSON, CSV and figure is there; one campaign file per method and seed."""
    for name in OUTPUTS:
        assert (folder / name).stat().st_size > 0, name
    for name in FIGURES:
        image = np.asarray(Image.open(folder / f"{name}.png").convert("L"))
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 10, name  # not a blank canvas
    stored = sorted(path.name for path in (folder / "campaigns").iterdir())
    assert stored == sorted(f"{method}-seed{seed}.json" for method in methods for seed in range(seeds))
    summary = json.loads((folder / "summary.json").read_text())
    import pandas as pd

    frame = pd.read_csv(folder / "summary.csv")
    assert len(frame) == len(summary["table"]) == len(methods) * len(summary["budgets"])
    expected = {"accuracy_ci95", "time_speedup", "samples_speedup", "target_accuracy", "time_to_target_seconds"}
    assert expected <= set(frame.columns)
    return summary


TINY = ["--methods", "retrain,er", "--budgets", "0.1,0.2", "--max-epochs", "3", "--round-epochs", "1"]


def test_fashion_mnist_uses_the_published_split_subsampled(tmp_path):
    require("fashion-mnist")
    data = load_benchmark_data("fashion-mnist")
    assert data.X.shape == (60_000, 784) and data.X_test.shape == (10_000, 784)  # MLP on flattened pixels
    assert data.model == "mlp" and data.pool_size is None and data.test_size is None
    pool, test = campaign_split(data, 0)
    assert np.array_equal(pool, np.arange(60_000)) and np.array_equal(test, np.arange(10_000))
    pool, test = campaign_split(data, 3, pool_size=200, test_size=100)
    assert np.bincount(data.y[pool]).tolist() == [20] * 10 and np.bincount(data.y_test[test]).tolist() == [10] * 10
    again, _ = campaign_split(data, 3, pool_size=200, test_size=100)
    other, _ = campaign_split(data, 4, pool_size=200, test_size=100)
    assert np.array_equal(pool, again) and not np.array_equal(pool, other)  # seeded, per seed
    plan = plan_benchmark(data, ["retrain", "er"], [0.1, 0.2], pool_size=200, test_size=100)
    assert (plan.n_pool, plan.n_test, plan.initial_count, plan.query_count) == (200, 100, 10, 10)
    quick = load_benchmark_data("fashion-mnist", quick=True)
    assert (quick.pool_size, quick.test_size) == (10_000, None)  # the whole test split
    assert plan_benchmark(quick, ["retrain"], [0.1]).n_pool == 10_000


def test_fashion_mnist_bench_writes_everything(tmp_path, capsys):
    require("fashion-mnist")
    sizes = ["--pool-size", "200", "--test-size", "100", "--seeds", "2"]
    assert bench(tmp_path, "--dataset", "fashion-mnist", *sizes, *TINY) == 0
    summary = check_every_output(tmp_path / "fashion-mnist", ["retrain", "er"], seeds=2)
    assert summary["n_pool"] == 200 and summary["n_test"] == 100 and summary["budget_rounds"] == {"0.1": 1, "0.2": 3}
    records = json.loads((tmp_path / "fashion-mnist" / "rounds.json").read_text())
    assert len(records) == 2 * 2 * 4
    assert all(r["n_labelled"] == 10 + 10 * r["round"] for r in records)
    assert all(abs(100 * r["accuracy"] - round(100 * r["accuracy"])) < 1e-9 for r in records)  # 100 test images
    printed = capsys.readouterr().out
    assert "CAL-ER" in printed and "Training to AL's final accuracy" in printed


def test_resume_loads_finished_campaigns_and_refuses_other_settings(tmp_path, capsys):
    require("fashion-mnist")

    def command(methods="retrain,er", round_epochs="1"):
        sizes = ["--pool-size", "120", "--test-size", "50", "--seeds", "2", "--budgets", "0.1,0.2"]
        epochs = ["--max-epochs", "3", "--round-epochs", round_epochs]
        return ["--dataset", "fashion-mnist", "--methods", methods, *sizes, *epochs]

    arguments = command()
    folder = tmp_path / "fashion-mnist"
    campaigns = folder / "campaigns"
    assert bench(tmp_path, *arguments) == 0
    first = {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()}
    first_table = (folder / "table.txt").read_text().split("\n\nTraining")[0]
    assert len(first) == 4

    assert bench(tmp_path, *arguments) == 0  # the same command again: nothing trained
    assert {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()} == first
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["campaigns_run"] == [] and len(summary["campaigns_loaded"]) == 4
    assert (folder / "table.txt").read_text().split("\n\nTraining")[0] == first_table

    deleted = json.loads((campaigns / "er-seed1.json").read_text())
    (campaigns / "er-seed1.json").unlink()
    assert bench(tmp_path, *arguments) == 0  # only the missing campaign is trained
    now = {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()}
    assert {name: time for name, time in now.items() if name != "er-seed1.json"} == {
        name: time for name, time in first.items() if name != "er-seed1.json"
    }
    rerun = json.loads((campaigns / "er-seed1.json").read_text())
    assert [r["accuracy"] for r in rerun["records"]] == [r["accuracy"] for r in deleted["records"]]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["campaigns_run"] == ["er-seed1"] and len(summary["campaigns_loaded"]) == 3

    # the library reports the same: a counter of campaigns trained, none here
    data = apply_epochs(load_benchmark_data("fashion-mnist"), round_epochs=1, max_epochs=3)
    result = run_benchmark(data, ["retrain", "er"], [0.1, 0.2], seeds=2, pool_size=120, test_size=50, out=folder)
    assert result.campaigns_run == [] and len(result.campaigns_loaded) == 4
    result = run_benchmark(data, ["retrain", "er"], [0.1, 0.2], seeds=3, pool_size=120, test_size=50, out=folder)
    assert result.campaigns_run == [("retrain", 2), ("er", 2)] and len(result.campaigns_loaded) == 4
    (campaigns / "retrain-seed2.json").unlink()
    (campaigns / "er-seed2.json").unlink()
    before = {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()}
    summary_before = (folder / "summary.json").read_text()
    capsys.readouterr()

    # other settings: an argument error naming --out and the setting; nothing trained or rewritten
    with pytest.raises(SystemExit) as exit_info:
        bench(tmp_path, *arguments, "--initial", "0.1")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "argument --out: " in err and "initial_count: 6 -> 12" in err and "--no-resume" in err
    with pytest.raises(SystemExit) as exit_info:
        bench(tmp_path, *command(round_epochs="2"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "estimator.round_epochs: 1 -> 2" in err and "er-seed0.json" in err
    assert {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()} == before
    assert (folder / "summary.json").read_text() == summary_before

    # CAL-round settings do not concern AL's campaigns: they are reused
    assert bench(tmp_path, *command(methods="retrain", round_epochs="2")) == 0
    assert json.loads((folder / "summary.json").read_text())["campaigns_run"] == []

    assert bench(tmp_path, *command(round_epochs="2"), "--no-resume") == 0  # --no-resume trains everything again
    after = {path.name: path.stat().st_mtime_ns for path in campaigns.iterdir()}
    assert all(after[name] > before[name] for name in before)
    stored = json.loads((campaigns / "er-seed0.json").read_text())["config"]
    assert stored["estimator"]["round_epochs"] == 2 and stored["n_pool"] == 120 and stored["pool_size"] == 120


def test_a_corrupt_campaign_file_is_an_argument_error(tmp_path, capsys):
    arguments = ["--dataset", "digits", "--seeds", "1", *TINY]
    assert bench(tmp_path, *arguments) == 0
    (tmp_path / "digits" / "campaigns" / "er-seed0.json").write_text('{"format": 1, "records": [')
    with pytest.raises(SystemExit) as exit_info:
        bench(tmp_path, *arguments)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "argument --out: " in err and "er-seed0.json cannot be read" in err


def test_sentiment_on_cached_embeddings_writes_everything(tmp_path):
    require("sentiment")
    cache = tmp_path / "embeddings"
    arguments = ["--dataset", "sentiment", "--pool-size", "40", "--test-size", "20", "--seeds", "1", *TINY]
    assert bench(tmp_path / "out", *arguments, "--embedding-cache", str(cache)) == 0
    summary = check_every_output(tmp_path / "out" / "sentiment", ["retrain", "er"], seeds=1)
    assert "sentence embeddings" in summary["dataset"] and summary["n_pool"] == 40 and summary["n_test"] == 20
    (cached,) = cache.glob("*.npy")
    assert np.load(cached).shape == (60, 384)  # only the sentences the campaign uses
    data = load_benchmark_data("sentiment", quick=True)
    assert (data.pool_size, data.test_size) == (4_000, 2_000)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # 41 classes, 41 test glosses
def test_full_wordnet_on_embeddings_and_the_quick_task(tmp_path):
    require("wordnet")
    data = load_benchmark_data("wordnet", embedding_cache=tmp_path / "embeddings")
    assert len(data.y) == 95_882 and len(data.classes) == 41 and data.encode is not None
    assert data.estimator_params["module__n_features"] == 384
    quick = load_benchmark_data("wordnet", quick=True)
    assert quick.X.shape == (2000, 5000) and len(quick.classes) == 5 and quick.encode is None  # TF-IDF

    arguments = ["--dataset", "wordnet", "--pool-size", "82", "--test-size", "41", "--seeds", "1", *TINY]
    assert bench(tmp_path / "out", *arguments, "--embedding-cache", str(tmp_path / "embeddings")) == 0
    summary = check_every_output(tmp_path / "out" / "wordnet", ["retrain", "er"], seeds=1)
    assert "41 lexicographer categories" in summary["dataset"] and summary["n_pool"] == 82
    (cached,) = (tmp_path / "embeddings").glob("*.npy")
    assert np.load(cached).shape == (123, 384)


def test_minilm_fine_tunes_on_a_subsample():
    require("sentiment")
    data = load_benchmark_data("sentiment", model="minilm")
    assert data.model == "minilm" and (data.pool_size, data.test_size) == (2_000, 1_000)
    assert data.estimator_params["lr"] == 5e-5 and data.estimator_params["round_epochs"] == 4
    apply_epochs(data, round_epochs=1, max_epochs=1)
    result = run_benchmark(data, ["retrain", "er"], [0.1], seeds=1, pool_size=20, test_size=10)
    assert len(result.campaigns_run) == 2 and len(result.rounds) == 2 * 2  # the seed round and one query round
    assert all(record["samples_backpropagated"] > 0 for record in result.rounds)


def test_resnet18_has_the_paper_settings_and_trains():
    require("fashion-mnist")
    data = load_benchmark_data("fashion-mnist", model="resnet18")
    params = data.estimator_params
    assert params["module"] is AugmentedResNet18 and params["optimizer"] is torch.optim.SGD
    assert (params["lr"], params["batch_size"], params["replay_size"]) == (0.01, 64, 128)
    assert params["optimizer__momentum"] == 0.9 and params["replay__n_candidates"] == 256
    assert data.X.shape[1:] == (1, 28, 28)
    apply_epochs(data, round_epochs=1, max_epochs=1)
    result = run_benchmark(data, ["retrain", "der"], [0.1], seeds=1, pool_size=20, test_size=10)
    assert len(result.rounds) == 2 * 2


def test_random_flip_crop_moves_whole_images():
    torch.manual_seed(0)
    X = torch.rand(64, 2, 12, 12)
    flipped_or_not = random_flip_crop(X, padding=0)
    same = (flipped_or_not == X).flatten(1).all(1)
    mirrored = (flipped_or_not == X.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()
    ones = random_flip_crop(torch.ones(200, 1, 12, 12), padding=2)
    assert ones.shape == (200, 1, 12, 12)
    areas = {int(image.sum()) for image in ones}  # a shifted block of ones: (12 - |dy|) x (12 - |dx|)
    assert areas <= {(12 - dy) * (12 - dx) for dy in range(3) for dx in range(3)} and len(areas) > 3
    network = AugmentedResNet18(in_channels=1, n_classes=3).eval()
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(network(images), network(images))  # no augmentation outside training


def hand_result(accuracies, times, budget_rounds):
    """A BenchmarkResult from hand-made records: ``accuracies[method][seed][round]``, same shape for times."""
    rounds = []
    for method, per_seed in accuracies.items():
        for seed, per_round in enumerate(per_seed):
            for index, accuracy in enumerate(per_round):
                seconds = times[method][seed][index]
                rounds.append(
                    {
                        "method": method,
                        "seed": seed,
                        "round": index,
                        "labelled_fraction": 0.1 * (index + 1),
                        "accuracy": accuracy,
                        "balanced_accuracy": accuracy,
                        "cumulative_train_seconds": seconds,
                        "cumulative_samples_backpropagated": 100 * seconds,
                    }
                )
    return BenchmarkResult(None, list(accuracies), sorted(budget_rounds), rounds=rounds, budget_rounds=budget_rounds)


def test_the_95_percent_interval_is_the_t_interval_over_seeds():
    values = [0.80, 0.84, 0.90]
    mean = sum(values) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    t_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (tables)
    assert confidence_interval(values) == pytest.approx((mean, t_975_2 * s / math.sqrt(3)))
    assert confidence_interval([0.7]) == (0.7, None)
    assert confidence_interval([0.5, 0.7])[1] == pytest.approx(12.706204736174705 * math.sqrt(0.02) / math.sqrt(2))

    result = hand_result(
        {"retrain": [[0.5, v] for v in values], "er": [[0.5, 0.8], [0.5, 0.8], [0.5, 0.8]]},
        {"retrain": [[1, 2]] * 3, "er": [[1, 1.5]] * 3},
        {0.2: 1},
    )
    rows = {row["method"]: row for row in summarize(result)}
    half = t_975_2 * s / math.sqrt(3)
    assert rows["retrain"]["accuracy_ci95"] == pytest.approx(half)
    assert rows["retrain"]["accuracy_ci_low"] == pytest.approx(mean - half)
    assert rows["retrain"]["accuracy_ci_high"] == pytest.approx(mean + half)
    assert rows["er"]["accuracy_ci95"] == pytest.approx(0.0)
    table = format_table(summarize(result))
    assert f"{100 * mean:.1f} ± {100 * half:.1f}" in table and "over 3 seeds" in table

    times = {"retrain": [[1, 2]], "er": [[1, 1.5]]}
    one_seed = hand_result({"retrain": [[0.5, 0.8]], "er": [[0.5, 0.7]]}, times, {0.2: 1})
    rows = {row["method"]: row for row in summarize(one_seed)}
    assert rows["retrain"]["accuracy_ci95"] is None and rows["retrain"]["accuracy_ci_low"] is None
    assert "±" not in format_table(summarize(one_seed))


def test_time_to_target_on_hand_made_records():
    records = [
        {"round": 0, "accuracy": 0.70, "labelled_fraction": 0.1, "cumulative_train_seconds": 1.0,
         "cumulative_samples_backpropagated": 100},
        {"round": 1, "accuracy": 0.80, "labelled_fraction": 0.2, "cumulative_train_seconds": 2.0,
         "cumulative_samples_backpropagated": 300},
        {"round": 2, "accuracy": 0.85, "labelled_fraction": 0.3, "cumulative_train_seconds": 4.0,
         "cumulative_samples_backpropagated": 600},
        {"round": 0, "accuracy": 0.72, "labelled_fraction": 0.1, "cumulative_train_seconds": 1.2,
         "cumulative_samples_backpropagated": 100},
        {"round": 1, "accuracy": 0.76, "labelled_fraction": 0.2, "cumulative_train_seconds": 2.4,
         "cumulative_samples_backpropagated": 310},
        {"round": 2, "accuracy": 0.83, "labelled_fraction": 0.3, "cumulative_train_seconds": 4.4,
         "cumulative_samples_backpropagated": 620},
    ]  # fmt: skip
    reached = time_to_target(records, 0.78)  # round 1's mean is exactly 0.78
    assert reached["round"] == 1 and reached["seconds"] == pytest.approx(2.2) and reached["samples"] == 305
    assert reached["labelled_fraction"] == pytest.approx(0.2)
    assert time_to_target(records, 0.781)["round"] == 2
    assert time_to_target(records, 0.70)["round"] == 0
    assert time_to_target(records, 0.9) is None

    # in the summary: AL's final accuracy as the target, CAL-ER faster to it, fine-tuning never there
    result = hand_result(
        {"retrain": [[0.6, 0.7, 0.8]], "er": [[0.6, 0.8, 0.79]], "finetune": [[0.6, 0.5, 0.5]]},
        {"retrain": [[1, 4, 10]], "er": [[1, 2, 3]], "finetune": [[1, 1.5, 2]]},
        {0.2: 1, 0.3: 2},
    )
    rows = {(row["method"], row["budget"]): row for row in summarize(result)}
    assert rows[("er", 0.3)]["target_accuracy"] == 0.8 and rows[("er", 0.3)]["time_to_target_seconds"] == 2
    assert rows[("er", 0.3)]["time_to_target_speedup"] == pytest.approx(10 / 2)
    assert rows[("retrain", 0.3)]["time_to_target_speedup"] == pytest.approx(1.0)
    assert rows[("finetune", 0.3)]["time_to_target_seconds"] is None
    assert rows[("er", 0.2)]["target_accuracy"] == 0.7 and rows[("er", 0.2)]["time_to_target_speedup"] == 2.0
    table = format_table(summarize(result))
    assert "AL's final accuracy (80.0% at 30% labelled)" in table
    assert [line.split()[:2] for line in table.splitlines() if line.startswith("Fine-tune")][-1] == ["Fine-tune", "not"]


def test_progress_bars_per_campaign_and_overall_and_quiet(tmp_path, capsys):
    arguments = ["--dataset", "digits", "--seeds", "1", *TINY]
    assert bench(tmp_path / "a", *arguments, quiet=False) == 0
    err = capsys.readouterr().err
    assert "digits AL seed 0" in err and "digits CAL-ER seed 0" in err and "\r" not in err  # not a terminal: lines
    assert "8/8" in err  # 2 campaigns of 4 rounds: the seed round, then budget 0.2 of 1347 is round 3
    assert bench(tmp_path / "b", *arguments) == 0
    assert capsys.readouterr().err == ""


def test_the_model_choices_are_the_models_bench_knows():
    from skcal import bench

    model = next(action for action in build_parser().bench_parser._actions if action.dest == "model")
    assert list(model.choices) == list(bench.MODELS)  # one table: the CLI keeps no copy
    assert {model for models in bench.MODELS_BY_KIND.values() for model in models} == set(bench.MODELS)


def test_round_epochs_accepts_auto_and_whole_numbers():
    parser = build_parser()
    assert parser.parse_args(["bench", "--round-epochs", "auto"]).round_epochs == "auto"
    assert parser.parse_args(["bench", "--round-epochs", "AUTO"]).round_epochs == "auto"
    assert parser.parse_args(["bench", "--round-epochs", "7"]).round_epochs == 7
    data = apply_epochs(load_benchmark_data("digits"), round_epochs="auto")
    assert data.estimator_params["round_epochs"] == "auto"


def run_bad(capsys, arguments, out):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--out", str(out), "--quiet", *arguments])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and "skcal bench: error: argument --" in err, err
    return err


@pytest.mark.parametrize(
    ("arguments", "flag", "message"),
    [
        (["--pool-size", "0"], "--pool-size", "must be at least 1, got 0"),
        (["--pool-size", "ten"], "--pool-size", "expected a whole number"),
        (["--test-size", "-5"], "--test-size", "must be at least 1, got -5"),
        (["--test-size", "0.5"], "--test-size", "expected a whole number, got '0.5'"),
        (["--model", "vit"], "--model", "invalid choice: 'vit'"),
        (["--model", "minilm"], "--model", "minilm does not apply to digits (image data)"),
        (["--dataset", "pbmc68k", "--model", "cnn"], "--model", "cnn does not apply to pbmc68k (cells data)"),
        (["--round-epochs", "automatic"], "--round-epochs", "expected a whole number or 'auto'"),
        (["--round-epochs", "-2"], "--round-epochs", "must be at least 1, got -2"),
        (["--pool-size", "5"], "--pool-size", "cannot hold each of digits's 10 classes"),
        (["--pool-size", "1500"], "--pool-size", "a pool of 1500 and a test set of 450 (25% by default"),
        (["--pool-size", "5000"], "--pool-size", "a pool of 5000 is too large: digits has 1797 samples"),
        (["--test-size", "5"], "--test-size", "cannot hold each of digits's 10 classes"),
        (["--test-size", "1797"], "--test-size", "too large"),
        (["--pool-size", "100", "--test-size", "100", "--budgets", "1", "--initial", "0.6", "--query", "0.6"],
         "--budgets", "more labels than the pool of 100"),
        (["--embedding-cache", "/tmp/x"], "--embedding-cache", "only used with --dataset sentiment or wordnet"),
        (["--embedding-cache", " ", "--dataset", "sentiment"], "--embedding-cache", "must not be empty"),
    ],
)  # fmt: skip
def test_bad_new_flags_are_argument_errors(arguments, flag, message, capsys, tmp_path):
    out = tmp_path / "out"
    err = run_bad(capsys, arguments, out)
    assert f"argument {flag}: " in err and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("arguments", "flag", "message"),
    [
        (["--pool-size", "60001"], "--pool-size", "fashion-mnist's training split has 60000 samples"),
        (["--test-size", "10001"], "--test-size", "fashion-mnist's test split has 10000 samples"),
        (["--test-size", "9"], "--test-size", "cannot hold each of fashion-mnist's 10 classes"),
        (["--model", "minilm"], "--model", "does not apply to fashion-mnist"),
    ],
)
def test_bad_fashion_mnist_sizes_are_argument_errors(arguments, flag, message, capsys, tmp_path):
    require("fashion-mnist")
    out = tmp_path / "out"
    err = run_bad(capsys, ["--dataset", "fashion-mnist", *arguments], out)
    assert f"argument {flag}: " in err and message in err, err
    assert not out.exists()


def test_the_console_command_rejects_a_new_flag_without_a_traceback(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "skcal", "bench", "--quiet", "--out", str(out), "--pool-size", "-1"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "skcal bench: error: argument --pool-size: must be at least 1, got -1" in finished.stderr
    assert not out.exists()


def test_campaign_files_are_written_atomically_with_their_configuration(tmp_path):
    data = load_benchmark_data("digits")
    plan = plan_benchmark(data, ["retrain", "er"], [0.1])
    store = CampaignStore(tmp_path / "campaigns", campaign_config(data, plan))
    path = store.save({"method": "er", "seed": 0, "records": [{"round": 0, "accuracy": 0.5}], "final_entropy": None})
    assert path == tmp_path / "campaigns" / "er-seed0.json" and sorted(p.name for p in path.parent.iterdir()) == [
        "er-seed0.json"
    ]  # no temporary file left behind
    assert store.load("er", 0)["records"] == [{"round": 0, "accuracy": 0.5}] and store.load("er", 1) is None
    assert "round_epochs" in store.config_for("er")["estimator"]
    assert "round_epochs" not in store.config_for("retrain")["estimator"]
    assert json.loads(path.read_text())["config"]["estimator"]["module"] == "skcal.models.SmallCNN"


def test_bench_with_bald_queries_on_an_mlp_and_a_clear_error_on_a_cnn(tmp_path):
    from skcal.cli import main

    out = tmp_path / "bald"
    code = main(
        [
            "bench",
            "--dataset",
            "pbmc68k",
            "--methods",
            "retrain,er",
            "--seeds",
            "1",
            "--budgets",
            "0.1,0.15",
            "--strategy",
            "bald",
            "--max-epochs",
            "3",
            "--round-epochs",
            "2",
            "--quiet",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    campaign = json.loads(next((out / "pbmc68k" / "campaigns").glob("er-seed0.json")).read_text())
    assert campaign["config"]["query_strategy"] == "bald_sampling"
    assert campaign["config"]["estimator"]["module__dropout"] == 0.2
    with pytest.raises(SystemExit) as raised:
        main(["bench", "--dataset", "digits", "--strategy", "bald", "--quiet", "--out", str(tmp_path / "cnn")])
    assert raised.value.code == 2 and not (tmp_path / "cnn").exists()
