"""Fixed 5/10/20-epoch CAL rounds against ``round_epochs="auto"``: is "auto" on the frontier.

For each dataset, each CAL method (ER, DER, SD by default) and each round-length
setting, the paper's protocol runs through ``skcal.bench`` (resumable: every
finished campaign is stored, and a rerun loads it), with AL (retrain) as the
reference. For each budget the script then compares, per method, the "auto"
setting with every fixed one on two axes: mean test accuracy over seeds and
mean cumulative samples backpropagated. "auto" is **dominated** at a budget
when some fixed setting is both cheaper and more accurate by more than the
standard error of the paired accuracy difference over seeds.

Run (about 40 minutes on 2 cores with the default pool sizes)::

    python benchmarks/round_epochs.py --threads 2 --out docs/results/round-epochs

The tables and the verdicts go to ``OUT/README.md``; campaigns to
``OUT/<dataset>/<setting>/campaigns``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from skcal.bench import BenchmarkProgress, apply_epochs, load_benchmark_data, run_benchmark

POOL_SIZES = {"digits": None, "pbmc68k": None, "fashion-mnist": 10_000, "sentiment": 10_000, "wordnet": 10_000}
TEST_SIZES = {"fashion-mnist": 5_000, "sentiment": 3_000, "wordnet": 3_000}


def per_seed(result, method: str, budget: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy, cumulative samples backpropagated and training seconds of each seed at ``budget``."""
    index = result.budget_rounds[budget]
    rows = sorted((r for r in result.rounds if r["method"] == method and r["round"] == index), key=lambda r: r["seed"])
    return (
        np.array([r["accuracy"] for r in rows]),
        np.array([r["cumulative_samples_backpropagated"] for r in rows], dtype=float),
        np.array([r["cumulative_train_seconds"] for r in rows]),
    )


def verdict(auto: tuple, fixed: dict) -> tuple[bool, str]:
    """Whether some fixed setting is cheaper and more accurate than auto by more than the paired SE."""
    accuracy, samples, _ = auto
    beaten_by = []
    for setting, (other_accuracy, other_samples, _) in fixed.items():
        difference = other_accuracy - accuracy
        se = difference.std(ddof=1) / math.sqrt(len(difference)) if len(difference) > 1 else 0.0
        if other_samples.mean() < samples.mean() and difference.mean() > se:
            beaten_by.append(
                f"{setting} (+{100 * difference.mean():.1f} pts, {other_samples.mean() / samples.mean():.2f}x samples)"
            )
    return (not beaten_by), "; ".join(beaten_by)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="digits,pbmc68k,fashion-mnist,sentiment,wordnet")
    parser.add_argument("--methods", default="er,der,sd")
    parser.add_argument("--settings", default="auto,5,10,20")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", default="0.1,0.2,0.3,0.4,0.5")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="docs/results/round-epochs")
    parser.add_argument("--pool-size", type=int, help="override every dataset's pool size")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    methods = args.methods.split(",")
    settings = [value if value == "auto" else int(value) for value in args.settings.split(",")]
    budgets = [float(b) for b in args.budgets.split(",")]
    progress = BenchmarkProgress(enabled=not args.quiet)
    report = {}
    started = time.perf_counter()
    for dataset in args.datasets.split(","):
        pool_size = args.pool_size if args.pool_size is not None else POOL_SIZES.get(dataset)
        results = {}
        for setting in settings:
            data = apply_epochs(load_benchmark_data(dataset), round_epochs=setting)
            folder = out / dataset / str(setting)
            first = out / dataset / str(settings[0]) / "campaigns"
            if setting != settings[0] and first.exists():  # AL ignores the round length: reuse its campaigns
                (folder / "campaigns").mkdir(parents=True, exist_ok=True)
                for stored in first.glob("retrain-seed*.json"):
                    if not (folder / "campaigns" / stored.name).exists():
                        shutil.copy(stored, folder / "campaigns" / stored.name)
            results[setting] = run_benchmark(
                data,
                ["retrain", *methods],
                budgets,
                seeds=args.seeds,
                test_size=TEST_SIZES.get(dataset),
                pool_size=pool_size,
                out=folder,
                progress=progress,
            )
            progress.log(f"{dataset} round_epochs={setting}: done ({time.perf_counter() - started:.0f} s so far)")
        report[dataset] = {"pool_size": pool_size, "results": results}
    progress.close()
    write_report(report, methods, settings, budgets, out, args)


def write_report(report: dict, methods: list, settings: list, budgets: list, out: Path, args) -> None:
    lines = [
        '# Round length: fixed 5/10/20-epoch CAL rounds against `round_epochs="auto"`',
        "",
        f"Command: `python benchmarks/round_epochs.py --datasets {args.datasets} --methods {args.methods} "
        f"--settings {args.settings} --seeds {args.seeds} --threads {args.threads} --out {args.out}`",
        "",
        "Per dataset, method and budget: test accuracy (mean over seeds) and cumulative samples "
        "backpropagated (thousands, mean over seeds) for each round length; AL (retrain) for reference. "
        "**auto dominated** means a fixed setting was both cheaper and more accurate by more than the "
        "standard error of the paired accuracy difference over seeds.",
        "",
    ]
    summary = {}
    for dataset, entry in report.items():
        results = entry["results"]
        pool = entry["pool_size"] or "full"
        lines += [f"## {dataset} (pool: {pool})", ""]
        header = (
            "| method | budget | " + " | ".join(f"{s}: acc / k samples" for s in settings) + " | auto on the frontier |"
        )
        lines += [header, "|" + " --- |" * (len(settings) + 3)]
        any_result = next(iter(results.values()))
        for budget in budgets:
            accuracy, samples, _ = per_seed(any_result, "retrain", budget)
            lines.append(
                f"| AL | {budget:.0%} | "
                + " | ".join([f"{100 * accuracy.mean():.1f} / {samples.mean() / 1e3:.0f}"] * len(settings))
                + " | |"
            )
        for method in methods:
            for budget in budgets:
                points = {setting: per_seed(results[setting], method, budget) for setting in settings}
                cells = [f"{100 * a.mean():.1f} / {s.mean() / 1e3:.0f}" for a, s, _ in points.values()]
                ok, why = verdict(points["auto"], {k: v for k, v in points.items() if k != "auto"})
                summary.setdefault(dataset, []).append(ok)
                lines.append(
                    f"| {method} | {budget:.0%} | " + " | ".join(cells) + f" | {'yes' if ok else 'no: ' + why} |"
                )
        lines.append("")
    lines += ["## Verdict", ""]
    for dataset, oks in summary.items():
        lines.append(f"- {dataset}: auto on the frontier at {sum(oks)} of {len(oks)} (method, budget) points.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text("\n".join(lines) + "\n")
    (out / "verdict.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(lines[-len(summary) - 2 :]))
    print(f"report: {out / 'README.md'}")


if __name__ == "__main__":
    main()
