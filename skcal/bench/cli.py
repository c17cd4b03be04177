"""``skcal bench``: its arguments, and the run (:func:`add_bench_parser`, :func:`run_bench`).

Every argument of ``skcal bench`` is checked before any training: a bad one
ends the command with an argparse ``error:`` line naming the flag, exit
status 2 and no traceback. The argument types apply the library's rules
(:mod:`skcal.bench.arguments`), and a
:class:`~skcal.exceptions.BenchmarkInputError` raised by the library's own
checks names its flag (its ``parameter``). The output folder is created and
tested for writing before the first model trains, so results are never lost
to a bad ``--out``. Each finished campaign is stored under ``--out`` at
once; the same command run again loads the finished ones and trains only
the rest (stored campaigns of other settings are an ``--out`` error unless
``--no-resume``). Progress goes to stderr unless ``--quiet``:
bars with ETAs on a terminal, one plain line per campaign anywhere else (a
log file, a pipe). The packages of the ``bench`` extra (and of the extras
the chosen datasets need) are checked first: a missing one ends the command
before anything is loaded, with the ``pip install 'skcal[...]'`` line to
run.
With ``--scheduler ADDRESS`` each campaign runs as a task on that Dask
cluster (:mod:`skcal.bench.runners`), with the accuracies of a local run.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import torch

from ..exceptions import BenchmarkInputError
from ..plasticity import PLASTICITY
from ..utils.params import describe, is_satisfied
from .arguments import (
    FRACTION,
    POSITIVE_INTEGER,
    QUERY_STRATEGIES,
    apply_epochs,
    apply_plasticity,
    check_arguments,
    check_device,
    check_strategy,
    fraction_problem,
    prepare_output,
)
from .data import MODELS, check_model
from .loading import load_benchmark_data
from .methods import METHODS
from .plan import plan_benchmark
from .progress import BenchmarkProgress
from .report import format_table, summarize, write_results
from .run import check_mlflow, run_benchmark
from .runners import campaign_threads, check_scheduler
from .store import CampaignStore, campaign_config

#: Datasets that read cached sentence embeddings.
EMBEDDING_DATASETS = ("sentiment", "wordnet")

DEFAULT_METHODS = "retrain,warmstart,finetune,er,mir,der,sd,sds2"
DEFAULT_BUDGETS = (0.1, 0.2, 0.3, 0.4, 0.5)
QUICK_BUDGETS = (0.1, 0.2, 0.3)
DEFAULT_DATA_ROOT = "~/.medmnist"
DEFAULT_MEDMNIST_FLAG = "dermamnist"
#: The documentation site; help texts link to its pages.
DOCUMENTATION_URL = "https://skcal.github.io/skcal/"


def _fraction_of(label: str) -> Callable[[str], float]:
    """Return the argument type of one fraction of the pool (``--initial``, ``--query``), by the library's rule."""

    def fraction(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a fraction of the pool, {describe([FRACTION])}; got {text!r}"
            ) from None
        problem = fraction_problem(label, value, shown=text)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return fraction


def _fractions(text: str) -> list[float]:
    """Parse comma-separated budgets, fractions of the pool; an empty entry is an error, not a default."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions such as 0.1,0.2, got {text!r}")
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got an empty entry in {text!r}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {part!r} in {text!r}") from None
        problem = fraction_problem("budget", value, shown=part)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        values.append(value)
    return values


def _check_count(value: int) -> int:
    """Return ``value`` if it is a count (:data:`~skcal.bench.arguments.POSITIVE_INTEGER`); else fail as argparse."""
    if not is_satisfied([POSITIVE_INTEGER], value):
        raise argparse.ArgumentTypeError(f"must be at least {POSITIVE_INTEGER.left}, got {value}")
    return value


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (an argparse type).

    Parameters
    ----------
    text : str

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        ``expected a whole number, got '1.5'`` or ``must be at least 1, got 0``.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return _check_count(value)


def _round_epochs(text: str) -> int | str:
    """Parse a whole number of at least 1, or ``auto`` (passed through to the estimator)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'auto', got {text!r}") from None
    return _check_count(value)


def _names(text: str) -> list[str]:
    """Parse a comma-separated list of names: no empty entries, no repeats."""
    names = [name.strip() for name in text.split(",")]
    if not any(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty entry in {text!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given more than once")
    return names


def non_empty(text: str) -> str:
    """Return ``text`` unless it is empty or blank (an argparse type).

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Raises
    ------
    argparse.ArgumentTypeError
        ``must not be empty``.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_bench_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the ``skcal`` command's subparsers.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The ``skcal`` parser's subparsers.

    Returns
    -------
    argparse.ArgumentParser
        The ``bench`` parser.
    """
    bench = commands.add_parser(
        "bench",
        help="run the paper's AL-vs-CAL benchmark on real data",
        description="Run every method on the same simulated AL campaign; print the paper's table "
        "(accuracy and speedup over standard AL per labelled fraction) and write CSV, JSON and plots. "
        f"The protocol: {DOCUMENTATION_URL}protocol.html; every option, dataset and output: "
        f"{DOCUMENTATION_URL}guide.html#skcal-bench",
    )
    bench.add_argument(
        "--dataset",
        type=_names,
        default=["digits"],
        help="comma-separated: digits, fashion-mnist, pbmc68k, sentiment, wordnet, medmnist, or a path to .h5ad, "
        "MedMNIST .npz or text .csv",
    )
    bench.add_argument(
        "--model",
        choices=list(MODELS),  # the one table of networks, skcal.bench.data.MODELS
        help="the network: mlp, cnn or resnet18 for images (default cnn; mlp for fashion-mnist), mlp for cells, "
        "mlp (on sentence embeddings or TF-IDF) or minilm (fine-tuned end to end, on a subsample) for text",
    )
    bench.add_argument("--label-key", type=non_empty, help="obs column with the labels, for .h5ad files")
    bench.add_argument(
        "--data-root", type=non_empty, help=f"folder with MedMNIST's <flag>.npz files (default {DEFAULT_DATA_ROOT})"
    )
    bench.add_argument(
        "--medmnist-flag",
        type=non_empty,
        help=f"which MedMNIST dataset (default the paper's, {DEFAULT_MEDMNIST_FLAG})",
    )
    bench.add_argument(
        "--methods",
        type=_names,
        default=DEFAULT_METHODS.split(","),
        help=f"comma-separated, from {','.join(METHODS)}; must include retrain (default: all but warmstart-sp)",
    )
    bench.add_argument("--budgets", type=_fractions, help="labelled fractions to report (default 0.1,...,0.5)")
    bench.add_argument("--seeds", type=positive_int, help="repeats with different splits and seed sets (default 3)")
    bench.add_argument("--initial", type=_fraction_of("initial"), default=0.05, help="seed-set fraction of the pool")
    bench.add_argument("--query", type=_fraction_of("query"), default=0.05, help="fraction labelled per round")
    bench.add_argument(
        "--strategy",
        choices=tuple(QUERY_STRATEGIES),
        default="entropy",
        help="query strategy: entropy (the paper's), margin, bald or batchbald (MC dropout; MLP networks)",
    )
    bench.add_argument(
        "--pool-size",
        type=positive_int,
        help="subsample each seed's pool to N points, stratified by class and drawn with the seed",
    )
    bench.add_argument(
        "--test-size",
        type=positive_int,
        help="subsample each seed's test set to N points (default: 25%% of the data, or a fixed test split)",
    )
    bench.add_argument("--out", type=non_empty, default="results", help="output folder (one subfolder per dataset)")
    bench.add_argument(
        "--no-resume",
        action="store_true",
        help="train every campaign again, replacing those stored in --out (default: load finished ones)",
    )
    bench.add_argument(
        "--embedding-cache",
        type=non_empty,
        help="folder of cached sentence embeddings, for sentiment and wordnet (default $SKCAL_DATA/embeddings)",
    )
    bench.add_argument(
        "--round-epochs", type=_round_epochs, help="epochs of a CAL round, or auto (default: the dataset's)"
    )
    bench.add_argument("--max-epochs", type=positive_int, help="epoch cap of seed/AL rounds (default: the dataset's)")
    bench.add_argument(
        "--plasticity",
        choices=("none", *PLASTICITY),
        help="remedy at the start of every CAL and warm-start round (default: the estimator's, none)",
    )
    bench.add_argument("--shrink", type=float, help="shrink_perturb's shrink, in (0, 1] (default 0.6)")
    bench.add_argument("--noise", type=float, help="shrink_perturb's noise, in [0, 1] (default 0.01)")
    bench.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps or xpu")
    bench.add_argument("--threads", type=positive_int, help="torch CPU threads (per campaign; on a cluster, default 1)")
    bench.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=non_empty,
        help="run each campaign as a task on the dask.distributed cluster of this scheduler (tcp://host:8786); "
        "needs skcal[dask]",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="one seed, budgets 0.1-0.3, smaller datasets (wordnet: 5 noun categories on TF-IDF; fashion-mnist: "
        "a 10,000-image pool; sentiment: 4,000 sentences)",
    )
    bench.add_argument(
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress (by default: bars on a terminal, one line per campaign in a log)",
    )
    bench.add_argument(
        "--mlflow",
        metavar="URI",
        type=non_empty,
        help="log each campaign trained as an MLflow run (experiment 'skcal bench') at this tracking URI: a folder "
        "such as ./mlruns, sqlite:///mlflow.db or http://host:5000; needs skcal[tracking]",
    )
    return bench


def missing_extras(args: argparse.Namespace) -> dict[str, list[str]]:
    """Return the packages ``skcal bench`` needs for ``args`` that are not installed, by the extra that has them.

    Every run needs the ``bench`` extra's matplotlib, pandas and tqdm (plots,
    tables, progress); ``pbmc68k`` and ``.h5ad`` data scanpy and anndata (also
    ``bench``); ``medmnist`` the ``medmnist`` extra; sentence embeddings
    (``sentiment``, full-size ``wordnet``) and ``--model minilm`` the ``text``
    extra's transformers; ``--scheduler`` the ``dask`` extra; ``--mlflow`` the
    ``tracking`` extra's mlflow.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`add_bench_parser`'s parser.

    Returns
    -------
    dict
        Extra name to the missing top-level modules it installs; empty when
        nothing is missing.
    """
    names = args.dataset
    needed = {"bench": ["matplotlib", "pandas", "tqdm"]}
    if "pbmc68k" in names:
        needed["bench"] += ["scanpy", "anndata"]
    if any(name.lower().endswith(".h5ad") for name in names) and "anndata" not in needed["bench"]:
        needed["bench"].append("anndata")
    if "medmnist" in names:
        needed["medmnist"] = ["medmnist"]
    if args.model == "minilm" or "sentiment" in names or ("wordnet" in names and not args.quick):
        needed["text"] = ["transformers"]
    if args.scheduler is not None:
        needed["dask"] = ["distributed"]
    if args.mlflow is not None:
        needed["tracking"] = ["mlflow"]
    missing = {
        extra: [module for module in modules if importlib.util.find_spec(module) is None]
        for extra, modules in needed.items()
    }
    return {extra: modules for extra, modules in missing.items() if modules}


def _argument_error(parser: argparse.ArgumentParser, error: Exception) -> NoReturn:
    """Exit as argparse does (status 2, usage, ``error:`` line), naming the flag of a BenchmarkInputError."""
    flag = "--" + getattr(error, "parameter", "").replace("_", "-")
    parser.error(f"argument {flag}: {error}" if flag != "--" else str(error))


def _check_dataset_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject options that no dataset of ``--dataset`` would use, then fill in their defaults."""
    names = args.dataset
    uses = {
        "label_key": any(name.lower().endswith(".h5ad") for name in names),
        "data_root": "medmnist" in names,
        "medmnist_flag": "medmnist" in names,
        "embedding_cache": any(name in EMBEDDING_DATASETS for name in names),
    }
    needed_by = {
        "label_key": "an .h5ad dataset",
        "data_root": "--dataset medmnist",
        "medmnist_flag": "--dataset medmnist",
        "embedding_cache": "--dataset sentiment or wordnet",
    }
    for option, used in uses.items():
        if getattr(args, option) is not None and not used:
            flag = "--" + option.replace("_", "-")
            parser.error(f"argument {flag}: only used with {needed_by[option]}, and --dataset has none")
    args.data_root = args.data_root if args.data_root is not None else DEFAULT_DATA_ROOT
    args.medmnist_flag = args.medmnist_flag if args.medmnist_flag is not None else DEFAULT_MEDMNIST_FLAG


def run_bench(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Run ``skcal bench``: check every argument, then train, then write the results.

    Finished campaigns stored under ``--out`` by an earlier run of the same
    command are loaded, not trained again; stored campaigns of other
    settings are an argument error (``--out``) unless ``--no-resume``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`add_bench_parser`'s parser.
    parser : argparse.ArgumentParser
        The parser that reports argument errors (exit status 2).
    argv : sequence of str
        The command line, recorded in ``summary.json``.

    Returns
    -------
    int
        0 on success.
    """
    missing = missing_extras(args)
    if missing:
        modules = [module for extra in missing.values() for module in extra]
        parser.error(
            f"skcal bench needs {', '.join(modules)}, not installed here; install "
            f"{'it' if len(modules) == 1 else 'them'} with: pip install 'skcal[{','.join(missing)}]'"
        )
    methods = args.methods
    budgets = args.budgets if args.budgets is not None else list(QUICK_BUDGETS if args.quick else DEFAULT_BUDGETS)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    _check_dataset_options(args, parser)
    client = None
    try:
        check_arguments(methods, budgets, args.initial, args.query)
        check_device(args.device)
        for name in args.dataset:
            check_model(name, args.model)
        prepare_output(args.out, keep=False)  # fail on a bad --out now, not after the training
        if args.mlflow is not None:
            check_mlflow(args.mlflow)
        client = check_scheduler(args.scheduler) if args.scheduler is not None else None  # before loading data
        data_sets = [
            load_benchmark_data(
                name,
                args.label_key,
                args.data_root,
                args.medmnist_flag,
                model=args.model,
                quick=args.quick,
                embedding_cache=args.embedding_cache,
                device=args.device,
            )
            for name in args.dataset
        ]
        plans = []
        for data in data_sets:
            apply_epochs(data, args.round_epochs, args.max_epochs)
            apply_plasticity(data, args.plasticity, args.shrink, args.noise)
            check_strategy(data, args.strategy)
            plan = plan_benchmark(data, methods, budgets, args.initial, args.query, args.test_size, args.pool_size)
            plans.append(plan)
        folders = [Path(args.out) / data.name for data in data_sets]
        if len(set(folders)) < len(folders):
            prepare_output(args.out, [data.name for data in data_sets], keep=False)  # names the clash
        if args.threads is not None and client is None:
            torch.set_num_threads(args.threads)  # before the stored campaigns' settings are compared
        threads = campaign_threads(args.threads, on_cluster=client is not None)
        finished = [
            {}
            if args.no_resume
            else CampaignStore(
                folder / "campaigns",
                campaign_config(check_strategy(data, args.strategy), plan, args.device, args.strategy, threads),
            ).finished(methods, seeds)
            for data, plan, folder in zip(data_sets, plans, folders, strict=True)
        ]
        folders = prepare_output(args.out, [data.name for data in data_sets])
    except BenchmarkInputError as error:
        if client is not None:
            client.close()
        _argument_error(parser, error)
    command = "skcal " + " ".join(shlex.quote(arg) for arg in argv)
    total = sum(
        (len(methods) * seeds - len(done)) * (plan.n_rounds + 1) for plan, done in zip(plans, finished, strict=True)
    )
    progress = BenchmarkProgress(total_rounds=total, enabled=not args.quiet)
    try:
        for data, plan, folder, done in zip(data_sets, plans, folders, finished, strict=True):
            progress.log(
                f"\n{data.description}: pool {plan.n_pool}, test set {plan.n_test}, "
                f"{plan.initial_count} seed labels + {plan.query_count} per round; "
                f"methods {','.join(methods)}, budgets {budgets}, {seeds} seed(s)"
            )
            if done:
                progress.log(f"loaded {len(done)} finished campaign(s) from {folder / 'campaigns'}")
            result = run_benchmark(
                data,
                methods,
                budgets,
                seeds=seeds,
                initial=args.initial,
                query=args.query,
                test_size=args.test_size,
                pool_size=args.pool_size,
                device=args.device,
                progress=progress,
                out=folder,
                resume=not args.no_resume,
                strategy=args.strategy,
                scheduler=client,
                threads=threads,
                mlflow=args.mlflow,
            )
            paths = write_results(result, folder, command=command)
            progress.log(
                f"{data.name}: {len(result.campaigns_run)} campaign(s) run, {len(result.campaigns_loaded)} loaded"
            )
            header = f"{data.description}: pool {plan.n_pool}, test set {plan.n_test}, {seeds} seed(s)"
            progress.write(f"\n{header}\n{format_table(summarize(result))}")  # stdout; bars on stderr stay intact
            progress.write(f"wrote {', '.join(str(path) for path in paths.values())}")
    finally:
        progress.close()
        if client is not None:
            client.close()
    return 0
