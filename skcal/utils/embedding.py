"""Penultimate-layer embeddings of a module, for diversity-based selection.

SDS2 (equation (6) of the paper), FASS and core-set compare points by the
representation ``z`` the network's last layer receives. skcal finds it in one
of two ways, in this order:

1. the module has a method ``embed(X)`` (or ``embed(**X)`` for dict input)
   returning it, shape ``(n_samples, n_dims)`` (a submodule called ``embed``,
   such as an ``nn.Embedding``, is not such a method);
2. otherwise, the input of the module's last registered ``torch.nn.Linear``
   layer, captured by a forward pre-hook during one ordinary forward pass.
"""

from __future__ import annotations

from typing import Any

import torch


def _call(module: torch.nn.Module, X: Any, method: str | None = None) -> Any:
    function = getattr(module, method) if method else module
    return function(**X) if isinstance(X, dict) else function(X)


def last_linear_layer(module: torch.nn.Module) -> torch.nn.Linear | None:
    """Return the last ``torch.nn.Linear`` registered in ``module``, or None."""
    layers = [layer for layer in module.modules() if isinstance(layer, torch.nn.Linear)]
    return layers[-1] if layers else None


def embeddings_and_logits(module: torch.nn.Module, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the penultimate embeddings and the logits of ``module`` on ``X``.

    Runs in whatever mode the module is in and records gradients if they are
    enabled; callers choose (``torch.no_grad()``, ``module.eval()``).

    Parameters
    ----------
    module : torch.nn.Module
        The network; see the module docstring for how the embedding is found.
    X : torch.Tensor or dict of torch.Tensor
        A batch, on the module's device.

    Returns
    -------
    embeddings : torch.Tensor of shape (n_samples, n_dims)
    logits : torch.Tensor of shape (n_samples, n_classes)

    Raises
    ------
    TypeError
        If the module has neither an ``embed`` method nor a ``Linear`` layer;
        the message says what to add.
    """
    embed = getattr(module, "embed", None)
    if callable(embed) and not isinstance(embed, torch.nn.Module):
        return _call(module, X, "embed").flatten(1), _call(module, X)
    layer = last_linear_layer(module)
    if layer is None:
        raise TypeError(
            f"{type(module).__name__} exposes no penultimate embedding: add a method "
            "`embed(X)` returning the representation fed to the last layer, or end the "
            "network with a torch.nn.Linear layer."
        )
    captured = []
    handle = layer.register_forward_pre_hook(lambda _, inputs: captured.append(inputs[0]))
    try:
        logits = _call(module, X)
    finally:
        handle.remove()
    return captured[-1].flatten(1), logits


__all__ = ["embeddings_and_logits", "last_linear_layer"]
