"""The ``skcal`` command line: ``skcal bench`` reproduces the paper's tables and plots."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from .replay import REPLAY_STRATEGIES

DEFAULT_METHODS = "retrain,warmstart,finetune,er,mir,der,sd,sds2"


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``skcal`` command."""
    parser = argparse.ArgumentParser(prog="skcal", description="Continual Active Learning tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench",
        help="run the paper's AL-vs-CAL benchmark on real data",
        description="Run every method on the same simulated AL campaign; print the paper's table "
        "(accuracy and speedup over standard AL per labelled fraction) and write CSV, JSON and plots.",
    )
    bench.add_argument(
        "--dataset",
        default="digits",
        help="comma-separated: digits, pbmc68k, wordnet, or a path to .h5ad, MedMNIST .npz or text .csv",
    )
    bench.add_argument("--label-key", help="obs column with the labels, for .h5ad files")
    bench.add_argument("--data-root", default="~/.medmnist", help="folder with MedMNIST's <flag>.npz files")
    bench.add_argument("--medmnist-flag", default="dermamnist", help="which MedMNIST dataset (default: the paper's)")
    bench.add_argument(
        "--methods", default=DEFAULT_METHODS, help=f"comma-separated, from {','.join(REPLAY_STRATEGIES)} (default: all)"
    )
    bench.add_argument("--budgets", type=_floats, help="labelled fractions to report (default 0.1,...,0.5)")
    bench.add_argument("--seeds", type=int, help="repeats with different splits and seed sets (default 3)")
    bench.add_argument("--initial", type=float, default=0.05, help="seed-set fraction of the pool")
    bench.add_argument("--query", type=float, default=0.05, help="fraction labelled per round")
    bench.add_argument("--out", default="results", help="output folder (one subfolder per dataset)")
    bench.add_argument("--round-epochs", type=int, help="epochs of a CAL round (default: the dataset's)")
    bench.add_argument("--max-epochs", type=int, help="epoch cap of seed/AL rounds (default: the dataset's)")
    bench.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    bench.add_argument("--threads", type=int, help="torch CPU threads")
    bench.add_argument("--quick", action="store_true", help="one seed, budgets 0.1-0.3: about a minute per dataset")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def bench(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Run ``skcal bench``."""
    import torch
    from tqdm import tqdm

    from .bench import check_arguments, format_table, load_benchmark_data, run_benchmark, summarize, write_results

    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    budgets = args.budgets or ([0.1, 0.2, 0.3] if args.quick else [0.1, 0.2, 0.3, 0.4, 0.5])
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if seeds < 1:
        parser.error(f"--seeds must be at least 1, got {seeds}")
    try:
        check_arguments(methods, budgets, args.initial, args.query)
        data_sets = [
            load_benchmark_data(name.strip(), args.label_key, args.data_root, args.medmnist_flag)
            for name in args.dataset.split(",")
        ]
    except (ValueError, KeyError, FileNotFoundError) as error:
        parser.error(str(error))
    for data in data_sets:
        for name in ("round_epochs", "max_epochs"):
            value = getattr(args, name)
            if value is not None:
                if value < 1:
                    parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
                data.estimator_params[name] = value
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "skcal " + " ".join(shlex.quote(arg) for arg in argv)
    for data in data_sets:
        print(f"\n{data.description}: methods {','.join(methods)}, budgets {budgets}, {seeds} seed(s)")
        with tqdm(total=seeds * len(methods), disable=args.no_progress, unit="campaign", file=sys.stderr) as bar:

            def advance(description: str, bar: tqdm = bar) -> None:
                bar.set_postfix_str(description)
                bar.update()

            try:
                result = run_benchmark(
                    data,
                    methods,
                    budgets,
                    seeds=seeds,
                    initial=args.initial,
                    query=args.query,
                    device=args.device,
                    progress=advance,
                )
            except ValueError as error:
                parser.error(str(error))
        paths = write_results(result, f"{args.out}/{data.name}", command=command)
        print(format_table(summarize(result)))
        print(f"wrote {', '.join(str(path) for path in paths.values())}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcal`` console script and ``python -m skcal``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    return bench(args, parser, argv)
