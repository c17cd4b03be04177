"""Parameter rules, declared once in scikit-learn's constraint language, checked with skcal's messages.

Every skcal class with parameters declares them as scikit-learn does (see
``sklearn/utils/_param_validation.py``)::

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "round_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    }

and public functions use :func:`validate_params` the way scikit-learn's
functions use its decorator of the same name. What differs is the message:
skcal's names the parameter as the user wrote it (``replay__alpha=2``), its
value, and the accepted values in words (``a number in [0, 1]``), because a
grid search reports the message and nothing else. Two rules are stricter
than scikit-learn's: booleans are never numbers, and numbers must be finite.

The errors are :class:`sklearn.utils._param_validation.InvalidParameterError`,
which is both a ``ValueError`` and a ``TypeError``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import (
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    make_constraint,
)

__all__ = [
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "check_parameters",
    "describe",
    "is_satisfied",
    "make_component",
    "validate_params",
]

_FIXED_WORDS = {
    "boolean": "True or False",
    "random_state": "None, an integer or a numpy RandomState",
    "array-like": "an array-like",
    "sparse matrix": "a scipy sparse matrix",
    "verbose": "a verbosity level",
}


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _describe_interval(interval: Interval) -> str:
    left, right, closed = interval.left, interval.right, interval.closed
    integer = interval.type is Integral
    # infinity passes scikit-learn's unbounded intervals but not is_satisfied: say so
    kind = "integer" if integer else "number" if left is not None and right is not None else "finite number"
    if left is None and right is None:
        return f"{'an' if integer else 'a'} {kind}"
    if right is None:
        if left == 0:
            return f"a {'positive' if closed in ('right', 'neither') else 'non-negative'} {kind}"
        if integer and left == 1 and closed in ("left", "both"):
            return "a positive integer"
        above = "above" if closed in ("right", "neither") else "at least"
        return f"{'an' if integer else 'a'} {kind} {above} {_bound(left)}"
    opening = "[" if closed in ("left", "both") and left is not None else "("
    ending = "]" if closed in ("right", "both") and right is not None else ")"
    lower = "-inf" if left is None else _bound(left)
    upper = "inf" if right is None else _bound(right)
    return f"{'an' if integer else 'a'} {kind} in {opening}{lower}, {upper}{ending}"


def describe(constraints: list) -> str:
    """Say in words what a parameter's constraints accept (``'a non-negative integer or "auto"'``).

    Parameters
    ----------
    constraints : list
        Constraints in scikit-learn's language: ``Interval``, ``StrOptions``,
        ``Options``, a type, ``None``, ``callable``, ``"boolean"``,
        ``"random_state"``...; ``Hidden`` ones are left out.

    Returns
    -------
    str
    """
    words = []
    for constraint in constraints:
        if isinstance(constraint, Hidden):
            continue
        if isinstance(constraint, str) and constraint in _FIXED_WORDS:
            words.append(_FIXED_WORDS[constraint])
        elif constraint is None:
            words.append("None")
        elif constraint is callable:
            words.append("a callable")
        elif isinstance(constraint, Interval):
            words.append(_describe_interval(constraint))
        elif isinstance(constraint, (StrOptions, Options)):
            options = sorted(constraint.options - set(constraint.deprecated), key=str)
            shown = ", ".join(f'"{option}"' if isinstance(option, str) else repr(option) for option in options)
            words.append(shown if len(options) == 1 else f"one of {shown}")
        elif isinstance(constraint, type):
            words.append(f"an instance of {constraint.__name__}")
        else:
            words.append(str(constraint))
    return " or ".join(words)


def is_satisfied(constraints: list, value: Any) -> bool:
    """Whether ``value`` meets one of ``constraints`` (a boolean is no number; numbers must be finite).

    Parameters
    ----------
    constraints : list
        As for :func:`describe`.
    value : object

    Returns
    -------
    bool
    """
    for constraint in constraints:
        checked = make_constraint(constraint)
        if isinstance(checked, Interval):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
                continue
            if not math.isfinite(float(value)):
                continue
        if checked.is_satisfied_by(value):
            return True
    return False


def check_parameters(
    owner: Any,
    constraints: Mapping[str, list] | None = None,
    prefix: str = "",
    params: Mapping[str, Any] | None = None,
    named: bool = False,
) -> None:
    """Check an object's parameters against their declared constraints.

    Parameters
    ----------
    owner : object
        The object; its ``_parameter_constraints`` are used unless
        ``constraints`` is given, and its attributes are the values unless
        ``params`` is given.
    constraints : mapping, optional
        Parameter name to a list of accepted constraints.
    prefix : str, default=""
        How the user reaches the parameters (``"replay__"``,
        ``"callbacks__auto_stop__"``), repeated in the message.
    params : mapping, optional
        The values to check (default: the owner's attributes).
    named : bool, default=False
        Name the owner's class in the message (``... is not valid for
        DarkExperienceReplay: ...``).

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` and ``TypeError``, e.g. ``replay__alpha=2 is not
        valid for DarkExperienceReplay: it must be a number in [0, 1].``
    """
    constraints = type(owner)._parameter_constraints if constraints is None else constraints
    for name, accepted in constraints.items():
        if accepted == "no_validation":
            continue
        value = params[name] if params is not None else getattr(owner, name)
        if not is_satisfied(accepted, value):
            where = f" for {type(owner).__name__}" if named else ""
            raise InvalidParameterError(
                f"{prefix}{name}={value!r} is not valid{where}: it must be {describe(accepted)}."
            )


def validate_params(constraints: Mapping[str, list]) -> Callable:
    """Decorate a public function so that its arguments are checked first (scikit-learn's decorator, skcal's messages).

    Parameters
    ----------
    constraints : mapping
        Argument name to a list of accepted constraints; arguments not named are not checked.

    Returns
    -------
    callable
        The decorator. An argument out of range raises
        :class:`InvalidParameterError`: ``n_instances must be a positive
        integer; got 0.``
    """

    def decorator(function: Callable) -> Callable:
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise ValueError(f"validate_params names {sorted(unknown)}, which {function.__name__} does not take.")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, accepted in constraints.items():
                value = bound.arguments[name]
                if not is_satisfied(accepted, value):
                    raise InvalidParameterError(f"{name} must be {describe(accepted)}; got {value!r}.")
            return function(*args, **kwargs)

        wrapper.__signature__ = signature
        return wrapper

    return decorator


def make_component(
    value: Any,
    registry: Mapping[str, type],
    base: type,
    params: Mapping[str, Any] | None,
    prefix: str,
    noun: str,
    optional: bool = False,
) -> Any:
    """Build a fresh component named by an estimator parameter (``replay=``, ``plasticity=``) with its ``prefix__*``.

    Parameters
    ----------
    value : None, str, type or instance
        An alias from ``registry``, a subclass of ``base`` or an instance
        (cloned, not modified); None too when ``optional``.
    registry : mapping of str to type
        The built-in components by alias.
    base : type
        What every component is (a scikit-learn ``BaseEstimator`` with ``validate()``).
    params : mapping, optional
        Hyperparameters to set, e.g. ``{"alpha": 0.1}`` from ``replay__alpha``.
        A name the component lacks but another built-in one accepts is
        ignored, so one parameter grid can mix components; a name none
        accepts is an error.
    prefix : str
        The estimator parameter, named in messages (``"replay"``).
    noun : str
        What the component is called in messages (``"replay strategy"``).
    optional : bool, default=False
        Whether None (no component) is accepted.

    Returns
    -------
    object or None
        A new component, its hyperparameters set and checked (``validate()``).

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the valid ones) or
        hyperparameter, or a hyperparameter value out of range.
    TypeError
        For anything that is not a component.
    """
    params = params or {}
    none = "None, " if optional else ""
    if value is None and optional:
        component = None
    elif isinstance(value, str):
        try:
            component = registry[value.lower()]()
        except KeyError:
            valid = ", ".join(repr(name) for name in registry)
            raise ValueError(f"Unknown {noun} {value!r}; valid names are {none}{valid}.") from None
    elif isinstance(value, type) and issubclass(value, base):
        component = value()
    elif isinstance(value, base):
        component = clone(value)
    else:
        raise TypeError(f"{prefix} must be {none}a name, a {base.__name__} subclass or instance; got {value!r}.")
    own = set() if component is None else set(component.get_params())
    known_elsewhere = {name for cls in registry.values() for name in cls().get_params()}
    unknown = sorted(name for name in params if name not in own and name not in known_elsewhere)
    if unknown:
        owner = f"{prefix}=None" if component is None else type(component).__name__
        raise ValueError(f"Invalid {prefix}__ parameter(s) {unknown} for {owner}; its parameters are {sorted(own)}.")
    if component is not None:
        component.set_params(**{name: value for name, value in params.items() if name in own})
        component.validate()
    return component
