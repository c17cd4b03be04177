"""What a tracker stores of a campaign: parameters as short, stable text, a round's numbers as metrics.

:func:`describe` and :func:`loggable_params` write parameter values (classes,
functions, arrays, estimators) as text a tracker can store and a person can
read; :func:`record_metrics` picks a round's record's numbers. Part of
:mod:`skcal.tracking`, which re-exports them.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Iterable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

_MAX_PARAM_LENGTH = 500  # MLflow allows 6,000 characters; past a few hundred a value is unreadable anyway


def describe(value: Any) -> str:
    """Return a short, stable text for a parameter value: what a tracker can store and a person can read.

    Classes and functions are named by their dotted path, arrays by their
    values (or their shape, when large), objects with ``get_params`` (skorch
    callbacks, replay strategies) by their class and parameters, other
    objects by their class: never by a memory address, so that two
    campaigns with the same settings log the same text.

    Parameters
    ----------
    value : Any
        The parameter's value.

    Returns
    -------
    str
        At most 500 characters.
    """
    text = _describe(value)
    return text if len(text) <= _MAX_PARAM_LENGTH else text[: _MAX_PARAM_LENGTH - 3] + "..."


def _dotted_name(value: Any) -> str:
    return f"{getattr(value, '__module__', None) or '?'}.{getattr(value, '__qualname__', type(value).__name__)}"


def _describe(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return str(value)
    if isinstance(value, np.generic):
        return str(value.item())
    if isinstance(value, (Path, torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, type) or inspect.isroutine(value):
        return _dotted_name(value)
    if isinstance(value, functools.partial):
        arguments = [_describe(arg) for arg in value.args] + [f"{k}={_describe(v)}" for k, v in value.keywords.items()]
        return f"partial({', '.join([_dotted_name(value.func), *arguments])})"
    if isinstance(value, np.ndarray):
        return str(value.tolist()) if value.size <= 50 else f"array(shape={value.shape}, dtype={value.dtype})"
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_describe(k)}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        text = ", ".join(_describe(item) for item in items)
        return f"({text})" if isinstance(value, tuple) else f"[{text}]"
    if callable(getattr(value, "get_params", None)):
        try:
            params = value.get_params(deep=False)
        except Exception:  # an object whose get_params needs more than this: name its class only
            params = {}
        return f"{type(value).__qualname__}({', '.join(f'{k}={_describe(v)}' for k, v in params.items())})"
    return f"{_dotted_name(type(value))} instance"


def loggable_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return ``params`` as text a tracker can store: one entry per parameter, nested mappings flattened.

    Parameters
    ----------
    params : mapping
        Parameter names to values, such as an estimator's ``get_params(deep=False)``.
        Names starting with ``_`` (skorch's private entries) are left out.
    prefix : str, default=""
        Put before every name; a nested mapping's entries are named
        ``<name>__<key>``, as in scikit-learn.

    Returns
    -------
    dict of str to str
        Values as :func:`describe` writes them.
    """
    loggable = {}
    for key, value in params.items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            loggable.update(loggable_params(value, prefix=f"{name}__"))
        else:
            loggable[name] = describe(value)
    return loggable


def record_metrics(record: Mapping[str, Any], exclude: Iterable[str] = ("round",)) -> dict[str, float]:
    """Return the numbers of a round's record as metrics: every real value that is not a bool, nor None.

    Parameters
    ----------
    record : mapping
        One entry of ``ContinualActiveClassifier.rounds_`` or of
        ``ActiveLearningSimulator.records_``.
    exclude : iterable of str, default=("round",)
        Keys that are not metrics (the round index is the step).

    Returns
    -------
    dict of str to float
        The metrics, by name.
    """
    excluded = set(exclude)
    return {
        key: float(value)
        for key, value in record.items()
        if key not in excluded and isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return describe(value)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
