"""A snapshot of an estimator's training state, to undo a round or a load that failed."""

from __future__ import annotations

import copy
from itertools import chain
from typing import Any

import numpy as np
import torch


class _ModuleState:
    """Every parameter and buffer (persistent or not) of a module, and each submodule's training flag."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.tensors = {
            name: value.detach().clone() for name, value in chain(module.named_parameters(), module.named_buffers())
        }
        self.training = [layer.training for layer in module.modules()]

    def restore(self) -> None:
        current = dict(chain(self.module.named_parameters(), self.module.named_buffers()))
        with torch.no_grad():
            for name, value in self.tensors.items():
                current[name].copy_(value)
        for layer, training in zip(self.module.modules(), self.training, strict=True):
            layer.training = training


class EstimatorSnapshot:
    """Everything a round may change on a skorch estimator, taken before it starts.

    What the round changes by assignment (``module_``, ``optimizer_``,
    ``classes_``, ``labelled_history_``, ...) is kept as a shallow copy of the
    estimator's attributes; what it changes in place is copied: the parameters,
    buffers and train/eval flags of every module and criterion (including a
    module instance the user passed, which an uninitialised estimator trains
    in place), every optimizer's state (momentum, learning rates), skorch's
    training log, the random generator ``rng_`` (and a ``RandomState`` passed
    as ``random_state``), ``rounds_`` and the labelled history's committed
    length and replay memory. The history's rows themselves are never copied:
    rounds only append to it.

    Callbacks' own state (skorch's ``EarlyStopping`` counters, for instance)
    is not part of the snapshot.

    Parameters
    ----------
    net : skorch.NeuralNet
        The estimator, initialised or not.
    """

    def __init__(self, net: Any):
        self.attributes = dict(net.__dict__)
        self.modules: list[_ModuleState] = []
        self.optimizers: dict[str, dict] = {}
        initialized = getattr(net, "initialized_", False)
        # skorch registers its modules when it initialises; before that, they are "module" and "criterion"
        for name in dict.fromkeys(["module", "criterion", *net._modules, *net._criteria]):
            for component in (getattr(net, name + "_", None) if initialized else None, getattr(net, name, None)):
                if isinstance(component, torch.nn.Module) and all(s.module is not component for s in self.modules):
                    self.modules.append(_ModuleState(component))
        if initialized:
            for name in net._optimizers:
                optimizer = getattr(net, name + "_", None)
                if isinstance(optimizer, torch.optim.Optimizer):
                    self.optimizers[name] = copy.deepcopy(optimizer.state_dict())
        log = net.__dict__.get("history_")
        self.training_log = None if log is None else (list(log), copy.deepcopy(log[-1]) if len(log) else None)
        rng = net.__dict__.get("rng_")
        self.rng_state = None if rng is None else copy.deepcopy(rng.bit_generator.state)
        random_state = getattr(net, "random_state", None)
        self.random_state = random_state.get_state() if isinstance(random_state, np.random.RandomState) else None
        rounds = net.__dict__.get("rounds_")
        self.rounds = None if rounds is None else list(rounds)
        history = net.__dict__.get("labelled_history_")
        self.history_mark = None if history is None else history.mark()

    def restore(self, net: Any) -> None:
        """Put ``net`` back in the state the snapshot was taken in."""
        net.__dict__.clear()
        net.__dict__.update(self.attributes)
        for state in self.modules:
            state.restore()
        for name, state in self.optimizers.items():
            getattr(net, name + "_").load_state_dict(state)
        if self.training_log is not None:
            entries, last = self.training_log
            if last is not None:
                entries[-1] = last
            net.history_[:] = entries
        if self.rng_state is not None:
            net.rng_.bit_generator.state = self.rng_state
        if self.random_state is not None:
            net.random_state.set_state(self.random_state)
        if self.rounds is not None:
            net.rounds_[:] = self.rounds
        if self.history_mark is not None:
            net.labelled_history_.rollback(self.history_mark)


__all__ = ["EstimatorSnapshot"]
