"""The rules of the benchmark's arguments, and the checks that apply them before any training.

The numeric rules are declared once, in scikit-learn's constraint language
(:mod:`skcal.utils.params`): :data:`POSITIVE_INTEGER` (seeds, threads,
epochs, pool and test sizes), :data:`FRACTION` (``initial``, ``query``,
budgets) and :data:`TEST_FRACTION`. The library checks them with
:func:`check_input` and :func:`fraction_problem`, ``skcal bench``'s argument
parser with the same rules (:mod:`skcal.bench.cli`). A bad argument raises
:class:`~skcal.exceptions.BenchmarkInputError`, whose ``parameter`` names it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..estimator import ContinualActiveClassifier
from ..exceptions import BenchmarkInputError
from ..models import ACTINN, MLP
from ..plasticity import make_plasticity
from ..query import bald_sampling, batchbald_sampling, entropy_sampling, margin_sampling
from ..utils.params import Interval, StrOptions, describe, is_satisfied
from .methods import METHODS

if TYPE_CHECKING:
    from .data import BenchmarkData

#: Query strategies ``skcal bench --strategy`` takes; BALD and BatchBALD use MC dropout.
QUERY_STRATEGIES = {
    "entropy": entropy_sampling,
    "margin": margin_sampling,
    "bald": bald_sampling,
    "batchbald": batchbald_sampling,
}
BAYESIAN_STRATEGIES = ("bald", "batchbald")


#: A count of at least one: seeds, threads, epochs, pool and test sizes.
POSITIVE_INTEGER = Interval(Integral, 1, None, closed="left")
#: A fraction of the pool: the seed set (``initial``), the labels per round (``query``), every budget.
FRACTION = Interval(Real, 0, 1, closed="right")
#: A test set given as a fraction of the data rather than a count.
TEST_FRACTION = Interval(Real, 0, 1, closed="neither")


def check_input(parameter: str, value: Any, constraints: list) -> None:
    """Check one benchmark argument against its rule, as :func:`~skcal.utils.params.validate_params` words it.

    Parameters
    ----------
    parameter : str
        The argument, as :class:`~skcal.exceptions.BenchmarkInputError` names it.
    value : object
    constraints : list
        Accepted constraints (:data:`POSITIVE_INTEGER`, ``None``, ``StrOptions``...).

    Raises
    ------
    BenchmarkInputError
        ``seeds must be a positive integer; got 0.``, with ``parameter``.
    """
    if not is_satisfied(constraints, value):
        raise BenchmarkInputError(parameter, f"{parameter} must be {describe(constraints)}; got {value!r}.")


def fraction_problem(label: str, value: Any, shown: str | None = None) -> str | None:
    """Say why ``value`` is not a fraction of the pool (:data:`FRACTION`); None if it is one.

    Parameters
    ----------
    label : str
        What the value is (``"initial"``, ``"budget"``).
    value : object
    shown : str, optional
        The value as the user typed it; by default ``str(value)``.

    Returns
    -------
    str or None
        ``budget 1.5 is outside (0, 1]; it must be a fraction of the pool.``
    """
    if is_satisfied([FRACTION], value):
        return None
    bounds = describe([FRACTION]).rpartition(" in ")[2]  # "(0, 1]" of "a number in (0, 1]"
    return f"{label} {value if shown is None else shown} is outside {bounds}; it must be a fraction of the pool."


def check_arguments(methods: Sequence[str], budgets: Sequence[float], initial: float, query: float) -> None:
    """Reject unknown, repeated or missing methods, and budgets outside (0, 1] or below the seed set.

    Parameters
    ----------
    methods : sequence of str
        Replay aliases; ``"retrain"`` must be one of them (speedups are measured against it).
    budgets : sequence of float
        Labelled fractions of the pool to report at.
    initial, query : float
        Seed-set size and labels per round, as fractions of the pool.

    Raises
    ------
    BenchmarkInputError
        With a message naming the bad value; ``parameter`` is ``"methods"``,
        ``"budgets"``, ``"initial"`` or ``"query"``.
    """
    if not methods:
        raise BenchmarkInputError("methods", f"Give at least one method; choose from {METHODS}.")
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise BenchmarkInputError("methods", f"Unknown method(s) {unknown}; choose from {METHODS}.")
    repeated = sorted({method for method in methods if list(methods).count(method) > 1})
    if repeated:
        raise BenchmarkInputError("methods", f"Method(s) {repeated} given more than once.")
    if "retrain" not in methods:
        raise BenchmarkInputError("methods", "Speedups are measured against 'retrain'; include it in the methods.")
    if not budgets:
        raise BenchmarkInputError("budgets", "Give at least one budget.")
    for parameter, label, value in [
        ("initial", "initial", initial),
        ("query", "query", query),
        *(("budgets", "budget", budget) for budget in budgets),
    ]:
        problem = fraction_problem(label, value)
        if problem is not None:
            raise BenchmarkInputError(parameter, problem)
    repeated = sorted({budget for budget in budgets if list(budgets).count(budget) > 1})
    if repeated:
        raise BenchmarkInputError("budgets", f"Budget(s) {repeated} given more than once.")
    if min(budgets) < initial:
        raise BenchmarkInputError("budgets", f"Budget {min(budgets)} is below the seed set's fraction {initial}.")


#: Device types ``skcal bench`` can train on, and how torch says whether one is usable.
_DEVICE_BACKENDS = {
    "cuda": lambda: torch.cuda,
    "xpu": lambda: getattr(torch, "xpu", None),
    "mps": lambda: getattr(torch.backends, "mps", None),
}


def check_device(device: str) -> str:
    """Check that torch can train on ``device`` here, before any data is loaded.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"xpu[:N]"``.

    Returns
    -------
    str
        ``device``, unchanged.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="device"``: a string torch does not parse, a device
        type that cannot train a model, a torch build without that backend,
        no such device visible, or a device index out of range.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise BenchmarkInputError(
            "device", f"{device!r} is not a torch device string; use cpu, cuda, cuda:N, mps or xpu."
        ) from None
    if parsed.type == "cpu":
        return device
    if parsed.type not in _DEVICE_BACKENDS:
        raise BenchmarkInputError(
            "device", f"{device!r} is not a device skcal bench can train on; use cpu, cuda, cuda:N, mps or xpu."
        )
    if parsed.type == "cuda" and torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        raise BenchmarkInputError(
            "device",
            f"{device!r}: this torch build ({torch.__version__}) has no CUDA support; "
            "use --device cpu, or install a CUDA build of torch.",
        )
    backend = _DEVICE_BACKENDS[parsed.type]()
    if backend is None or not backend.is_available():
        raise BenchmarkInputError(
            "device", f"{device!r}: no {parsed.type} device is available on this machine (torch {torch.__version__})."
        )
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise BenchmarkInputError(
            "device",
            f"{device!r}: there is no {parsed.type} device {parsed.index}; {count} visible (0 to {count - 1}).",
        )
    return device


def check_strategy(data: BenchmarkData, strategy: str) -> BenchmarkData:
    """Check the query strategy fits the dataset's network; for BALD, give an MLP dropout.

    Parameters
    ----------
    data : BenchmarkData
    strategy : str
        A key of :data:`QUERY_STRATEGIES`.

    Returns
    -------
    BenchmarkData
        ``data``, or a copy with ``module__dropout=0.2`` for BALD on an MLP.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="strategy"``.
    """
    check_input("strategy", strategy, [StrOptions(set(QUERY_STRATEGIES))])
    if strategy not in BAYESIAN_STRATEGIES:
        return data
    module = data.estimator_params.get("module")
    if module not in (MLP, ACTINN):
        name = getattr(module, "__name__", module)
        raise BenchmarkInputError(
            "strategy", f"{strategy} needs a network with dropout; {name} has none (use --model mlp)"
        )
    params = {**data.estimator_params, "module__dropout": data.estimator_params.get("module__dropout", 0.2)}
    return dataclasses.replace(data, estimator_params=params)


def apply_epochs(
    data: BenchmarkData, round_epochs: int | str | None = None, max_epochs: int | None = None
) -> BenchmarkData:
    """Override the dataset's epochs of CAL rounds and cap of AL rounds, and check the settings.

    Parameters
    ----------
    data : BenchmarkData
        Changed in place.
    round_epochs : int or str, optional
        Epochs of a CAL round, or ``"auto"`` (passed through to the
        estimator, which decides when a round has learned its points).
    max_epochs : int, optional
        Epoch cap of the seed round and the AL rounds.

    Returns
    -------
    BenchmarkData
        ``data``.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="round_epochs"`` or ``"max_epochs"`` if the
        estimator rejects the value.
    """
    for name, value in (("round_epochs", round_epochs), ("max_epochs", max_epochs)):
        if value is not None:
            data.estimator_params[name] = value
    try:
        ContinualActiveClassifier(**data.estimator_params).check_params()
    except ValueError as error:
        parameter = next((name for name in ("round_epochs", "max_epochs") if str(error).startswith(name)), "dataset")
        raise BenchmarkInputError(parameter, f"{error}") from None
    return data


def apply_plasticity(
    data: BenchmarkData, plasticity: str | None = None, shrink: float | None = None, noise: float | None = None
) -> BenchmarkData:
    """Set the plasticity remedy of the dataset's CAL and warm-start rounds (``skcal bench --plasticity``).

    Parameters
    ----------
    data : BenchmarkData
        Changed in place.
    plasticity : str, optional
        ``"none"`` or a remedy of :data:`skcal.plasticity.PLASTICITY`; None
        leaves the estimator's default.
    shrink, noise : float, optional
        ``plasticity__shrink`` and ``plasticity__noise`` of ``"shrink_perturb"``.

    Returns
    -------
    BenchmarkData
        ``data``.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="plasticity"`` if the remedy or a hyperparameter is bad.
    """
    settings: dict[str, Any] = {}
    if plasticity is not None:
        settings["plasticity"] = None if plasticity == "none" else plasticity
    for name, value in (("shrink", shrink), ("noise", noise)):
        if value is not None:
            settings[f"plasticity__{name}"] = value
    if not settings:
        return data
    params = {**data.estimator_params, **settings}
    try:
        make_plasticity(
            params.get("plasticity"),
            {k.split("__", 1)[1]: v for k, v in params.items() if k.startswith("plasticity__")},
        )
    except (TypeError, ValueError) as error:
        raise BenchmarkInputError("plasticity", str(error)) from None
    data.estimator_params.update(settings)
    return data


def prepare_output(out: str | Path, names: Sequence[str] = (), keep: bool = True) -> list[Path]:
    """Create the result folders ``out/<name>`` and check they are writable, before any training.

    Parameters
    ----------
    out : str or Path
        The output folder.
    names : sequence of str, default=()
        One subfolder per dataset; none checks ``out`` alone.
    keep : bool, default=True
        False removes again every folder this call created (a dry run that
        leaves the file system as it was).

    Returns
    -------
    list of Path
        The folders ``out/<name>`` (``[out]`` without names).

    Raises
    ------
    BenchmarkInputError
        With ``parameter="out"``: ``out`` or a subfolder is an existing
        file, two names share a folder, or a folder cannot be created or
        written (a file where a parent folder should be, no permission, a
        read-only file system).
    """
    root = Path(out)
    if str(out) == "":
        raise BenchmarkInputError("out", "the output folder is an empty path.")
    folders = [root / name for name in names] or [root]
    if len(set(folders)) < len(folders):
        raise BenchmarkInputError("out", f"two datasets would write to the same folder: {[str(f) for f in folders]}.")
    created: list[Path] = []
    try:
        for folder in folders:
            for existing in (folder, *folder.parents):
                if existing.exists() and not existing.is_dir():
                    raise BenchmarkInputError("out", f"{existing} is a file, not a folder; results need a folder.")
            missing = [path for path in (folder, *folder.parents) if not path.exists()]
            try:
                folder.mkdir(parents=True, exist_ok=True)
                created.extend(missing)  # deepest first
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as error:
                created.extend(path for path in missing if path.exists() and path not in created)
                raise BenchmarkInputError(
                    "out", f"cannot create or write to the folder {folder}: {error.strerror or error}."
                ) from None
    except BenchmarkInputError:
        _remove_empty(created)
        raise
    if not keep:
        _remove_empty(created)
    return folders


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this module created, deepest first, if they are still empty."""
    for folder in sorted(set(folders), key=lambda path: len(path.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass
