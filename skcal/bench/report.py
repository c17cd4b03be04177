"""What a benchmark run reports: per method and budget, accuracy over seeds, speedups and time to AL's accuracy.

:func:`summarize` turns a :class:`~skcal.bench.run.BenchmarkResult` into
rows, :func:`format_table` into the paper's appendix-A table, and
:func:`write_results` writes rounds, summary, tables and figures
(:mod:`skcal.bench.plots`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..utils.params import Interval, validate_params
from . import plots
from .campaign import jsonable
from .methods import method_label

if TYPE_CHECKING:
    from .run import BenchmarkResult


def at_budget(result: BenchmarkResult, budget: float) -> list:
    """Return the records, one per campaign, of the round reporting ``budget``."""
    return [record for record in result.rounds if record["round"] == result.budget_rounds[budget]]


@validate_params({"level": [Interval(Real, 0, 1, closed="neither")]})
def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None]:
    """Return the mean of ``values`` and the half-width of its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : sequence of float
        One value per seed.
    level : float, default=0.95

    Returns
    -------
    mean : float
    half_width : float or None
        ``t_{(1 + level) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample
        standard deviation; None for a single value, which has no spread.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    quantile = stats.t.ppf((1 + level) / 2, len(values) - 1)
    return mean, float(quantile * values.std(ddof=1) / math.sqrt(len(values)))


@validate_params({"target": [Interval(Real, 0, 1, closed="both")]})
def time_to_target(records: Sequence[dict], target: float) -> dict | None:
    """When a method first reaches ``target`` accuracy: the first round whose mean accuracy over seeds does.

    Parameters
    ----------
    records : sequence of dict
        One method's round records (``round``, ``accuracy``,
        ``cumulative_train_seconds``, ``cumulative_samples_backpropagated``,
        ``labelled_fraction``), of one or several seeds.
    target : float
        The accuracy to reach.

    Returns
    -------
    dict or None
        ``round``, ``labelled_fraction``, ``seconds`` (the mean cumulative
        training time up to and including that round) and ``samples``
        (likewise, samples backpropagated); None if no round reaches it.
    """
    by_round: dict[int, list] = {}
    for record in records:
        by_round.setdefault(record["round"], []).append(record)
    for round_index in sorted(by_round):
        chosen = by_round[round_index]
        if np.mean([r["accuracy"] for r in chosen]) >= target - 1e-12:
            return {
                "round": round_index,
                "labelled_fraction": float(np.mean([r["labelled_fraction"] for r in chosen])),
                "seconds": float(np.mean([r["cumulative_train_seconds"] for r in chosen])),
                "samples": float(np.mean([r["cumulative_samples_backpropagated"] for r in chosen])),
            }
    return None


def summarize(result: BenchmarkResult) -> list:
    """Summarise a benchmark per method and budget: accuracy with a 95% interval over seeds, speedups, time to AL's.

    Parameters
    ----------
    result : BenchmarkResult
        What :func:`run_benchmark` measured.

    Returns
    -------
    list of dict
        Keys ``method``, ``budget``, ``labelled_fraction`` (the actual one),
        ``accuracy_mean``, ``accuracy_std``, ``accuracy_ci95`` (half-width
        of the 95% t-interval over seeds, None for one seed),
        ``accuracy_ci_low``, ``accuracy_ci_high``, the same four for
        ``balanced_accuracy`` (mean per-class recall), ``train_seconds``
        and ``samples_backpropagated`` (cumulative, mean over seeds),
        ``time_speedup``, ``samples_speedup`` (retrain's cumulative cost
        divided by the method's), ``target_accuracy`` (retrain's mean
        accuracy at this budget), ``time_to_target_seconds``,
        ``time_to_target_samples``, ``time_to_target_fraction``,
        ``time_to_target_round`` (when the method's mean accuracy first
        reaches the target, in any round of the campaign; None if never),
        ``time_to_target_speedup``, ``samples_to_target_speedup`` (retrain's
        cost to reach the target divided by the method's), ``n_seeds``.
    """
    rows = []
    all_records = {method: [r for r in result.rounds if r["method"] == method] for method in result.methods}
    for budget in result.budgets:
        records = at_budget(result, budget)
        by_method = {method: [r for r in records if r["method"] == method] for method in result.methods}
        reference = by_method["retrain"]
        reference_seconds = np.mean([r["cumulative_train_seconds"] for r in reference])
        reference_samples = np.mean([r["cumulative_samples_backpropagated"] for r in reference])
        target = float(np.mean([r["accuracy"] for r in reference]))
        reference_reach = time_to_target(all_records["retrain"], target)
        for method, chosen in by_method.items():
            row = {"method": method, "budget": budget}
            row["labelled_fraction"] = float(np.mean([r["labelled_fraction"] for r in chosen]))
            for metric in ("accuracy", "balanced_accuracy"):
                values = np.array([r[metric] for r in chosen])
                mean, half = confidence_interval(values)
                row[f"{metric}_mean"] = mean
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                row[f"{metric}_ci95"] = half
                row[f"{metric}_ci_low"] = None if half is None else mean - half
                row[f"{metric}_ci_high"] = None if half is None else mean + half
            seconds = float(np.mean([r["cumulative_train_seconds"] for r in chosen]))
            samples = float(np.mean([r["cumulative_samples_backpropagated"] for r in chosen]))
            reach = time_to_target(all_records[method], target)
            row.update(
                train_seconds=seconds,
                samples_backpropagated=samples,
                time_speedup=float(reference_seconds / seconds),
                samples_speedup=float(reference_samples / samples),
                target_accuracy=target,
                time_to_target_seconds=None if reach is None else reach["seconds"],
                time_to_target_samples=None if reach is None else reach["samples"],
                time_to_target_fraction=None if reach is None else reach["labelled_fraction"],
                time_to_target_round=None if reach is None else reach["round"],
                time_to_target_speedup=None if reach is None else reference_reach["seconds"] / reach["seconds"],
                samples_to_target_speedup=None if reach is None else reference_reach["samples"] / reach["samples"],
                n_seeds=len(chosen),
            )
            rows.append(row)
    return rows


def _percent(row: dict, metric: str) -> str:
    """``mean ± half-width of the 95% interval`` in percent; the mean alone from a single seed."""
    mean = f"{100 * row[f'{metric}_mean']:.1f}"
    half = row.get(f"{metric}_ci95")
    return mean if half is None else f"{mean} ± {100 * half:.1f}"


def _render(headers: list, lines: list, markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
            "| " + " | ".join(line) + " |" for line in lines
        ]
    widths = [max(len(str(item)) for item in column) for column in zip(headers, *lines, strict=True)]
    return [
        "  ".join(str(item).ljust(width) for item, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *lines]
    ]


def format_table(summary: list, markdown: bool = False) -> str:
    """Format the paper's appendix-A table, then the time each method needs to reach AL's final accuracy.

    The first table has, per budget, accuracy and balanced accuracy (mean
    per-class recall) in percent, as ``mean ± h`` with ``h`` the half-width
    of the 95% t-interval over seeds (the mean alone for one seed), then
    the speedups in training time and in samples backpropagated. The second
    has, per method, the training time and samples to the first round whose
    mean accuracy reaches AL's accuracy at the largest budget, the labelled
    fraction there, and the speedups over AL's own time to it.

    Parameters
    ----------
    summary : list of dict
        The rows :func:`summarize` returns.
    markdown : bool, default=False
        Markdown tables instead of plain text.

    Returns
    -------
    str
        The two tables.
    """
    budgets = sorted({row["budget"] for row in summary})
    methods = list(dict.fromkeys(row["method"] for row in summary))
    cell = {(row["method"], row["budget"]): row for row in summary}
    headers = (
        ["Method"]
        + [f"acc {b:.0%}" for b in budgets]
        + [f"bal acc {b:.0%}" for b in budgets]
        + [f"time× {b:.0%}" for b in budgets]
        + [f"samples× {b:.0%}" for b in budgets]
    )
    lines = []
    for method in methods:
        rows = [cell[(method, b)] for b in budgets]
        lines.append(
            [method_label(method)]
            + [_percent(r, "accuracy") for r in rows]
            + [_percent(r, "balanced_accuracy") for r in rows]
            + [f"{r['time_speedup']:.1f}x" for r in rows]
            + [f"{r['samples_speedup']:.1f}x" for r in rows]
        )
    text = _render(headers, lines, markdown)
    n_seeds = min(row["n_seeds"] for row in summary)
    if n_seeds > 1:
        text += ["", f"± : half-width of the 95% t-interval over {n_seeds} seeds."]
    final = [cell[(method, budgets[-1])] for method in methods]
    target = final[0]["target_accuracy"]
    headers = ["Method", "time (s)", "samples", "labelled", "time×", "samples×"]
    lines = []
    for row in final:
        if row["time_to_target_seconds"] is None:
            lines.append([method_label(row["method"]), "not reached", "", "", "", ""])
            continue
        lines.append(
            [
                method_label(row["method"]),
                f"{row['time_to_target_seconds']:.1f}",
                f"{row['time_to_target_samples']:.0f}",
                f"{row['time_to_target_fraction']:.0%}",
                f"{row['time_to_target_speedup']:.1f}x",
                f"{row['samples_to_target_speedup']:.1f}x",
            ]
        )
    text += [
        "",
        f"Training to AL's final accuracy ({100 * target:.1f}% at {budgets[-1]:.0%} labelled): "
        "the first round whose mean accuracy over seeds reaches it.",
        "",
    ]
    text += _render(headers, lines, markdown)
    return "\n".join(text)


def write_results(result: BenchmarkResult, out: str | Path, command: str = "") -> dict:
    """Write rounds (CSV, JSON), the summary (JSON, CSV), the tables and the plots under ``out``.

    Parameters
    ----------
    result : BenchmarkResult
        What :func:`run_benchmark` measured.
    out : str or Path
        The output folder, created if missing.
    command : str, default=""
        The command line that ran the benchmark, recorded with the results.

    Returns
    -------
    dict
        Output name to path.
    """
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    frame = pd.DataFrame(result.rounds)
    frame.assign(round_accuracies=frame["round_accuracies"].map(json.dumps)).to_csv(out / "rounds.csv", index=False)
    paths = {"rounds_csv": out / "rounds.csv", "rounds_json": out / "rounds.json", "summary": out / "summary.json"}
    paths["rounds_json"].write_text(json.dumps(jsonable(result.rounds), indent=1))
    plan = result.plan
    meta = {
        "dataset": result.data.description,
        "model": result.data.model,
        "command": command,
        "methods": result.methods,
        "budgets": result.budgets,
        "budget_rounds": {str(b): r for b, r in result.budget_rounds.items()},
        "seeds": result.seeds,
        "n_pool": None if plan is None else plan.n_pool,
        "n_test": None if plan is None else plan.n_test,
        "initial_count": None if plan is None else plan.initial_count,
        "query_count": None if plan is None else plan.query_count,
        "campaigns_run": [f"{m}-seed{s}" for m, s in result.campaigns_run],
        "campaigns_loaded": [f"{m}-seed{s}" for m, s in result.campaigns_loaded],
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    paths["summary"].write_text(json.dumps(jsonable({**meta, "table": summary}), indent=1))
    paths["summary_csv"] = out / "summary.csv"
    pd.DataFrame(summary).to_csv(paths["summary_csv"], index=False)
    paths["table"] = out / "table.txt"
    paths["table"].write_text(format_table(summary) + "\n")
    paths["table_md"] = out / "table.md"
    paths["table_md"].write_text(format_table(summary, markdown=True) + "\n")
    paths.update(plots.write_all(result, summary, out))
    return paths
