"""The network being trained: sizes from the data, fresh weights, a wider output layer."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch

from .embedding import last_linear_layer


def sizes_from_data(factory: Any, feature_shape: Any, n_classes: int | None) -> dict:
    """Return the ``n_features``, ``in_channels`` and ``n_classes`` arguments ``factory`` takes, from the data.

    Parameters
    ----------
    factory : callable
        A module class or factory function.
    feature_shape : tuple or dict
        The shape of one sample: ``(n_features,)`` for vectors,
        ``(channels, height, width)`` for images.
    n_classes : int or None
        The number of classes, if known.

    Returns
    -------
    dict
        Only the arguments the factory's signature takes.
    """
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    sizes = {}
    if isinstance(feature_shape, tuple) and len(feature_shape) == 1 and "n_features" in accepted:
        sizes["n_features"] = feature_shape[0]
    if isinstance(feature_shape, tuple) and len(feature_shape) == 3 and "in_channels" in accepted:
        sizes["in_channels"] = feature_shape[0]
    if n_classes is not None and "n_classes" in accepted:
        sizes["n_classes"] = n_classes
    return sizes


def reset_parameters(module: torch.nn.Module) -> list[str]:
    """Call ``reset_parameters()`` on every submodule that has one; return the parameters it missed.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    list of str
        Names of parameters owned by submodules without ``reset_parameters``
        (they keep their values).
    """
    missed = []
    for prefix, layer in module.named_modules():
        if callable(getattr(layer, "reset_parameters", None)):
            layer.reset_parameters()
        else:
            missed += [f"{prefix}.{name}" if prefix else name for name, _ in layer.named_parameters(recurse=False)]
    return missed


def widened_output(module: torch.nn.Module, extra: int) -> torch.nn.Module:
    """Return a copy of ``module`` whose last ``torch.nn.Linear`` has ``extra`` more outputs, old weights kept.

    The new units are initialised as ``torch.nn.Linear`` does, from torch's
    current random state. A copy, so the original stays usable (a failed
    round puts it back).

    Parameters
    ----------
    module : torch.nn.Module
    extra : int
        Outputs to add.

    Returns
    -------
    torch.nn.Module
    """
    module = copy.deepcopy(module)
    layer = last_linear_layer(module)
    grown = torch.nn.Linear(layer.in_features, layer.out_features + extra, bias=layer.bias is not None)
    grown = grown.to(device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        grown.weight[: layer.out_features] = layer.weight
        if layer.bias is not None:
            grown.bias[: layer.out_features] = layer.bias
    name = next(name for name, submodule in module.named_modules() if submodule is layer)
    parent, _, attribute = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, attribute, grown)
    return module


def check_state_dict(module: torch.nn.Module, saved: dict) -> None:
    """Raise a ValueError naming the first key or shape where ``saved`` does not fit ``module``.

    Parameters
    ----------
    module : torch.nn.Module
    saved : dict
        A state dict.
    """
    current = module.state_dict()
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        raise ValueError(
            f"the state is for a different module: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Build the estimator with the parameters the checkpoint was made with."
        )
    for key, value in current.items():
        if tuple(saved[key].shape) != tuple(value.shape):
            raise ValueError(
                f"the state is for a different module: {key} has shape {tuple(saved[key].shape)} there, "
                f"{tuple(value.shape)} here."
            )


__all__ = ["check_state_dict", "reset_parameters", "sizes_from_data", "widened_output"]
