"""The ``skcal`` command line: ``skcal bench`` reproduces the paper's tables and plots, ``skcal serve`` labels.

``skcal bench`` lives in :mod:`skcal.bench.cli` (its arguments and its run);
``skcal serve``, the Label Studio ML backend, here. A bad argument of either
ends the command with an argparse ``error:`` line naming the flag, exit
status 2 and no traceback; so does a missing optional package, with the
``pip install 'skcal[...]'`` line that installs it, before any work.
``skcal --version`` prints the version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__
from .bench.cli import DOCUMENTATION_URL, add_bench_parser, non_empty, positive_int, run_bench


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``skcal`` command.

    Returns
    -------
    argparse.ArgumentParser
        The ``bench`` and ``serve`` subcommands' parsers are its
        ``bench_parser`` and ``serve_parser`` attributes.
    """
    parser = argparse.ArgumentParser(
        prog="skcal",
        description="Continual Active Learning tools.",
        epilog=f"Documentation: {DOCUMENTATION_URL}",
    )
    parser.add_argument("--version", action="version", version=f"skcal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    parser.bench_parser = add_bench_parser(commands)
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
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def _seconds(text: str) -> float:
    """Parse a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _add_serve_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``skcal serve``, the Label Studio ML backend (the documentation site's labelstudio page)."""
    import os

    serve = commands.add_parser(
        "serve",
        help="serve a CAL model as a Label Studio ML backend",
        description="Speak Label Studio's ML-backend protocol (/health, /setup, /predict, /webhook): predict "
        "with a score for uncertainty sampling, and run a CAL round every --train-every new annotations, "
        f"checkpointed in --state-dir. The guide: {DOCUMENTATION_URL}labelstudio.html",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=9090, help="port (default 9090)")
    serve.add_argument(
        "--state-dir",
        type=non_empty,
        default="skcal-serve-state",
        help="folder of the journal of annotations and the checkpointed campaign; a restart on it resumes "
        "(default ./skcal-serve-state)",
    )
    serve.add_argument(
        "--factory",
        type=non_empty,
        default="auto",
        help="the model: auto (text for <Text>, image for <Image>), text (all-MiniLM-L6-v2 + MLP), image "
        "(small CNN), image-resnet18, or package.module:function returning a Pipeline ending in a "
        "ContinualActiveClassifier",
    )
    serve.add_argument(
        "--train-every", type=positive_int, default=10, help="new labels per CAL round (default 10; first = seed)"
    )
    serve.add_argument(
        "--uncertainty",
        choices=("confidence", "margin", "entropy"),
        default="confidence",
        help="prediction score: confidence (max probability) or margin, sort ascending for uncertainty sampling; "
        "entropy (normalised), sort descending (default confidence)",
    )
    serve.add_argument("--control", type=non_empty, help="the <Choices> control to answer (default: the first)")
    serve.add_argument(
        "--basic-auth",
        type=_basic_auth,
        metavar="USER:PASSWORD",
        help="require HTTP basic auth, as Label Studio sends it (default $SKCAL_SERVE_BASIC_AUTH)",
    )
    serve.add_argument(
        "--token",
        type=non_empty,
        default=os.environ.get("SKCAL_SERVE_TOKEN") or None,
        help="accept 'Authorization: Bearer TOKEN' (or 'Token TOKEN') as credentials (default $SKCAL_SERVE_TOKEN)",
    )
    serve.add_argument(
        "--label-studio-url",
        type=non_empty,
        default=os.environ.get("LABEL_STUDIO_URL") or None,
        help="Label Studio's address, to fetch images stored there and refresh predictions after each round "
        "(default $LABEL_STUDIO_URL)",
    )
    serve.add_argument(
        "--label-studio-token",
        type=non_empty,
        default=os.environ.get("LABEL_STUDIO_API_KEY") or None,
        help="a Label Studio personal access token (or legacy token) (default $LABEL_STUDIO_API_KEY)",
    )
    serve.add_argument(
        "--no-refresh",
        dest="refresh",
        action="store_false",
        help="do not ask Label Studio to retrieve predictions after each round",
    )
    serve.add_argument("--threads", type=positive_int, help="torch CPU threads")
    serve.add_argument(
        "--max-connections", type=positive_int, default=256, help="connections open at once; more get a 503 "
        "(default 256, kept below the open-file limit)"
    )  # fmt: skip
    serve.add_argument(
        "--header-timeout", type=_seconds, default=10.0, help="seconds for a request's head to arrive (default 10)"
    )
    serve.add_argument(
        "--body-timeout", type=_seconds, default=30.0, help="seconds for a request's body to arrive; then 408 "
        "(default 30)"
    )  # fmt: skip
    serve.add_argument(
        "--shutdown-timeout", type=_seconds, default=30.0, help="on SIGTERM or Ctrl-C, seconds for the round in "
        "progress to finish and commit before it is abandoned to the next start (default 30)"
    )  # fmt: skip
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
        from .serve.faults import StorageError
        from .serve.labelconfig import LabellingConfigError
        from .serve.labelstudio import LabelStudioClient
        from .serve.server import ServerLimits
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
    except (CampaignStateError, LabellingConfigError, StorageError, OSError) as error:
        parser.error(f"argument --state-dir: {error}")
    limits = ServerLimits(
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        shutdown_timeout=args.shutdown_timeout,
    )
    run_server(backend, args.host, args.port, credentials, args.log_level, limits)
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
    return run_bench(args, parser.bench_parser, argv)
