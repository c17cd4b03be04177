"""The ``skcal`` command line: ``skcal bench`` reproduces the paper's tables and plots.

Every argument of ``skcal bench`` is checked before any training: a bad one
ends the command with an argparse ``error:`` line naming the flag, exit
status 2 and no traceback. The output folder is created and tested for
writing before the first model trains, so results are never lost to a bad
``--out``. Each finished campaign is stored under ``--out`` at once; the
same command run again loads the finished ones and trains only the rest
(stored campaigns of other settings are an ``--out`` error unless
``--no-resume``). Progress bars with ETAs go to stderr unless ``--quiet``.
With ``--scheduler ADDRESS`` each campaign runs as a task on that Dask
cluster (:mod:`skcal.campaigns`), with the accuracies of a local run.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from .replay import REPLAY_STRATEGIES

#: ``--model`` choices, the keys of ``skcal.bench.MODELS`` (a test checks; that module loads only when a run starts).
MODELS = ("mlp", "cnn", "resnet18", "minilm")
#: Datasets that read cached sentence embeddings.
EMBEDDING_DATASETS = ("sentiment", "wordnet")

DEFAULT_METHODS = "retrain,warmstart,finetune,er,mir,der,sd,sds2"
DEFAULT_BUDGETS = (0.1, 0.2, 0.3, 0.4, 0.5)
QUICK_BUDGETS = (0.1, 0.2, 0.3)
DEFAULT_DATA_ROOT = "~/.medmnist"
DEFAULT_MEDMNIST_FLAG = "dermamnist"


def _fraction(text: str) -> float:
    """Parse one fraction in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise argparse.ArgumentTypeError(f"{text} is outside (0, 1]; it is a fraction of the pool")
    return value


def _fractions(text: str) -> list[float]:
    """Parse comma-separated fractions in (0, 1]; an empty entry is an error, not a default."""
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
        if not (math.isfinite(value) and 0 < value <= 1):
            raise argparse.ArgumentTypeError(f"budget {part} is outside (0, 1]; budgets are fractions of the pool")
        values.append(value)
    return values


def _positive_int(text: str) -> int:
    """Parse a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _round_epochs(text: str) -> int | str:
    """Parse a whole number of at least 1, or ``auto`` (passed through to the estimator)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``skcal`` command.

    Returns
    -------
    argparse.ArgumentParser
        The ``bench`` subcommand's parser is its ``bench_parser`` attribute.
    """
    parser = argparse.ArgumentParser(prog="skcal", description="Continual Active Learning tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench",
        help="run the paper's AL-vs-CAL benchmark on real data",
        description="Run every method on the same simulated AL campaign; print the paper's table "
        "(accuracy and speedup over standard AL per labelled fraction) and write CSV, JSON and plots. "
        "The protocol is described in docs/protocol.md.",
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
        choices=list(MODELS),
        help="the network: mlp, cnn or resnet18 for images (default cnn; mlp for fashion-mnist), mlp for cells, "
        "mlp (on sentence embeddings or TF-IDF) or minilm (fine-tuned end to end, on a subsample) for text",
    )
    bench.add_argument("--label-key", type=_non_empty, help="obs column with the labels, for .h5ad files")
    bench.add_argument(
        "--data-root", type=_non_empty, help=f"folder with MedMNIST's <flag>.npz files (default {DEFAULT_DATA_ROOT})"
    )
    bench.add_argument(
        "--medmnist-flag",
        type=_non_empty,
        help=f"which MedMNIST dataset (default the paper's, {DEFAULT_MEDMNIST_FLAG})",
    )
    bench.add_argument(
        "--methods",
        type=_names,
        default=DEFAULT_METHODS.split(","),
        help=f"comma-separated, from {','.join(REPLAY_STRATEGIES)}; must include retrain (default: all)",
    )
    bench.add_argument("--budgets", type=_fractions, help="labelled fractions to report (default 0.1,...,0.5)")
    bench.add_argument("--seeds", type=_positive_int, help="repeats with different splits and seed sets (default 3)")
    bench.add_argument("--initial", type=_fraction, default=0.05, help="seed-set fraction of the pool")
    bench.add_argument("--query", type=_fraction, default=0.05, help="fraction labelled per round")
    bench.add_argument(
        "--strategy",
        choices=("entropy", "margin", "bald", "batchbald"),
        default="entropy",
        help="query strategy: entropy (the paper's), margin, bald or batchbald (MC dropout; MLP networks)",
    )
    bench.add_argument(
        "--pool-size",
        type=_positive_int,
        help="subsample each seed's pool to N points, stratified by class and drawn with the seed",
    )
    bench.add_argument(
        "--test-size",
        type=_positive_int,
        help="subsample each seed's test set to N points (default: 25%% of the data, or a fixed test split)",
    )
    bench.add_argument("--out", type=_non_empty, default="results", help="output folder (one subfolder per dataset)")
    bench.add_argument(
        "--no-resume",
        action="store_true",
        help="train every campaign again, replacing those stored in --out (default: load finished ones)",
    )
    bench.add_argument(
        "--embedding-cache",
        type=_non_empty,
        help="folder of cached sentence embeddings, for sentiment and wordnet (default $SKCAL_DATA/embeddings)",
    )
    bench.add_argument(
        "--round-epochs", type=_round_epochs, help="epochs of a CAL round, or auto (default: the dataset's)"
    )
    bench.add_argument("--max-epochs", type=_positive_int, help="epoch cap of seed/AL rounds (default: the dataset's)")
    bench.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps or xpu")
    bench.add_argument(
        "--threads", type=_positive_int, help="torch CPU threads (per campaign; on a cluster, default 1)"
    )
    bench.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=_non_empty,
        help="run each campaign as a task on the dask.distributed cluster of this scheduler (tcp://host:8786); "
        "needs skcal[dask]",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="one seed, budgets 0.1-0.3, smaller datasets (wordnet: 5 noun categories on TF-IDF; fashion-mnist: "
        "a 10,000-image pool; sentiment: 4,000 sentences)",
    )
    bench.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bars")
    parser.bench_parser = bench
    parser.serve_parser = _add_serve_parser(commands)
    return parser


def _basic_auth(text: str) -> tuple[str, str]:
    """Parse ``USER:PASSWORD`` (both non-empty)."""
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD, both non-empty")
    return user, password


def _port(text: str) -> int:
    """Parse a TCP port, 1 to 65535."""
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def _add_serve_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``skcal serve``, the Label Studio ML backend (docs/labelstudio.md)."""
    import os

    serve = commands.add_parser(
        "serve",
        help="serve a CAL model as a Label Studio ML backend",
        description="Speak Label Studio's ML-backend protocol (/health, /setup, /predict, /webhook): predict "
        "with a score for uncertainty sampling, and run a CAL round every --train-every new annotations, "
        "checkpointed in --state-dir. See docs/labelstudio.md.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=9090, help="port (default 9090)")
    serve.add_argument(
        "--state-dir",
        type=_non_empty,
        default="skcal-serve-state",
        help="folder of the journal of annotations and the checkpointed campaign; a restart on it resumes "
        "(default ./skcal-serve-state)",
    )
    serve.add_argument(
        "--factory",
        type=_non_empty,
        default="auto",
        help="the model: auto (text for <Text>, image for <Image>), text (all-MiniLM-L6-v2 + MLP), image "
        "(small CNN), image-resnet18, or package.module:function returning a Pipeline ending in a "
        "ContinualActiveClassifier",
    )
    serve.add_argument(
        "--train-every", type=_positive_int, default=10, help="new labels per CAL round (default 10; first = seed)"
    )
    serve.add_argument(
        "--uncertainty",
        choices=("confidence", "margin", "entropy"),
        default="confidence",
        help="prediction score: confidence (max probability) or margin, sort ascending for uncertainty sampling; "
        "entropy (normalised), sort descending (default confidence)",
    )
    serve.add_argument("--control", type=_non_empty, help="the <Choices> control to answer (default: the first)")
    serve.add_argument(
        "--basic-auth",
        type=_basic_auth,
        metavar="USER:PASSWORD",
        help="require HTTP basic auth, as Label Studio sends it (default $SKCAL_SERVE_BASIC_AUTH)",
    )
    serve.add_argument(
        "--token",
        type=_non_empty,
        default=os.environ.get("SKCAL_SERVE_TOKEN") or None,
        help="accept 'Authorization: Bearer TOKEN' (or 'Token TOKEN') as credentials (default $SKCAL_SERVE_TOKEN)",
    )
    serve.add_argument(
        "--label-studio-url",
        type=_non_empty,
        default=os.environ.get("LABEL_STUDIO_URL") or None,
        help="Label Studio's address, to fetch images stored there and refresh predictions after each round "
        "(default $LABEL_STUDIO_URL)",
    )
    serve.add_argument(
        "--label-studio-token",
        type=_non_empty,
        default=os.environ.get("LABEL_STUDIO_API_KEY") or None,
        help="a Label Studio personal access token (or legacy token) (default $LABEL_STUDIO_API_KEY)",
    )
    serve.add_argument(
        "--no-refresh",
        dest="refresh",
        action="store_false",
        help="do not ask Label Studio to retrieve predictions after each round",
    )
    serve.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    serve.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info", help="default info"
    )
    return serve


def serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``skcal serve`` until interrupted.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`'s ``serve`` parser.
    parser : argparse.ArgumentParser
        Reports a bad factory, state folder or Label Studio URL (exit status 2).

    Returns
    -------
    int
        0 after a clean shutdown.
    """
    import logging
    import os

    import torch

    try:
        from .serve import Credentials, make_backend
        from .serve import serve as run_server
        from .serve.campaign import CampaignStateError
        from .serve.factories import resolve_factory
        from .serve.labelconfig import LabellingConfigError
        from .serve.labelstudio import LabelStudioClient
    except ImportError as error:
        parser.error(f"skcal serve needs the serve extra (pip install 'skcal[serve]'): {error}")
    if args.basic_auth is None and os.environ.get("SKCAL_SERVE_BASIC_AUTH"):
        try:
            args.basic_auth = _basic_auth(os.environ["SKCAL_SERVE_BASIC_AUTH"])
        except argparse.ArgumentTypeError as error:
            parser.error(f"$SKCAL_SERVE_BASIC_AUTH: {error}")
    user, password = args.basic_auth if args.basic_auth is not None else (None, None)
    credentials = Credentials(user, password, args.token)
    try:
        factory = resolve_factory(args.factory)
    except ValueError as error:
        parser.error(f"argument --factory: {error}")
    if args.label_studio_url:
        try:
            LabelStudioClient(args.label_studio_url)
        except ValueError as error:
            parser.error(f"argument --label-studio-url: {error}")
        if args.refresh and not args.label_studio_token:
            parser.error("argument --label-studio-token: needed with --label-studio-url (or pass --no-refresh)")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        backend = make_backend(
            args.state_dir,
            factory=factory,
            train_every=args.train_every,
            uncertainty=args.uncertainty,
            control=args.control,
            label_studio_url=args.label_studio_url,
            label_studio_token=args.label_studio_token,
            refresh_predictions=args.refresh,
        )
    except (CampaignStateError, LabellingConfigError, OSError) as error:
        parser.error(f"argument --state-dir: {error}")
    run_server(backend, args.host, args.port, credentials, args.log_level)
    return 0


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


def bench(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Run ``skcal bench``: check every argument, then train, then write the results.

    Finished campaigns stored under ``--out`` by an earlier run of the same
    command are loaded, not trained again; stored campaigns of other
    settings are an argument error (``--out``) unless ``--no-resume``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`'s ``bench`` parser.
    parser : argparse.ArgumentParser
        The parser that reports argument errors (exit status 2).
    argv : sequence of str
        The command line, recorded in ``summary.json``.

    Returns
    -------
    int
        0 on success.
    """
    from pathlib import Path

    import torch
    from tqdm import tqdm

    from .bench import (
        BenchmarkInputError,
        BenchmarkProgress,
        CampaignStore,
        apply_epochs,
        campaign_config,
        check_arguments,
        check_device,
        check_model,
        check_strategy,
        format_table,
        load_benchmark_data,
        plan_benchmark,
        prepare_output,
        run_benchmark,
        summarize,
        write_results,
    )
    from .campaigns import campaign_threads, check_scheduler

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
            )
            paths = write_results(result, folder, command=command)
            progress.log(
                f"{data.name}: {len(result.campaigns_run)} campaign(s) run, {len(result.campaigns_loaded)} loaded"
            )
            # tqdm.write keeps the bars on stderr intact while the table goes to stdout
            header = f"{data.description}: pool {plan.n_pool}, test set {plan.n_test}, {seeds} seed(s)"
            tqdm.write(f"\n{header}\n{format_table(summarize(result))}", file=sys.stdout)
            tqdm.write(f"wrote {', '.join(str(path) for path in paths.values())}", file=sys.stdout)
    finally:
        progress.close()
        if client is not None:
            client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcal`` console script and ``python -m skcal``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments; ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        The exit status (argument errors exit with status 2 through argparse).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args, parser.serve_parser)
    return bench(args, parser.bench_parser, argv)
