"""The network being trained: sizes from the data, fresh weights, a wider output layer."""

from __future__ import annotations

import copy
import inspect
import math
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
    """Call ``reset_parameters()`` on every submodule that has one; return the parameters and buffers it missed.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    list of str
        Names of parameters and buffers owned by submodules without
        ``reset_parameters`` (they keep their values).
    """
    missed = []
    for prefix, layer in module.named_modules():
        if callable(getattr(layer, "reset_parameters", None)):
            layer.reset_parameters()
        else:
            owned = [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]
            missed += [f"{prefix}.{name}" if prefix else name for name, _ in owned]
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


def check_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Raise a ValueError unless ``saved`` fits ``optimizer``: its groups, hyperparameters and state shapes.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    saved : dict
        An optimizer state dict.
    """
    groups, state = saved["param_groups"], saved["state"]
    if not isinstance(groups, list) or not isinstance(state, dict):
        raise ValueError("the optimizer state is malformed")
    if [len(group["params"]) for group in groups] != [len(group["params"]) for group in optimizer.param_groups]:
        raise ValueError("the optimizer state has another parameter-group layout")
    parameters = {}
    for saved_group, group in zip(groups, optimizer.param_groups, strict=True):
        for key, value in saved_group.items():
            if key != "params" and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"the optimizer's {key} is {value}")
        if not isinstance(saved_group.get("lr"), (int, float)) or isinstance(saved_group.get("lr"), bool):
            raise ValueError(f"the optimizer's learning rate is {saved_group.get('lr')!r}")
        parameters.update(zip(saved_group["params"], group["params"], strict=True))
    for index, values in state.items():
        if index not in parameters or not isinstance(values, dict):
            raise ValueError(f"the optimizer state names an unknown parameter {index!r}")
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != parameters[index].shape:
                raise ValueError(f"the optimizer's {key} for parameter {index} has shape {tuple(value.shape)}")


__all__ = ["check_optimizer_state", "check_state_dict", "reset_parameters", "sizes_from_data", "widened_output"]
