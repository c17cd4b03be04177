"""A snapshot of an estimator's training state, to undo a round or a load that failed."""

from __future__ import annotations

import copy
from typing import Any

import torch


def _cloned(state: dict) -> dict:
    return {key: value.detach().clone() if isinstance(value, torch.Tensor) else value for key, value in state.items()}


class EstimatorSnapshot:
    """Everything a round may change on a skorch estimator, taken before it starts.

    What the round changes by assignment (``module_``, ``optimizer_``,
    ``classes_``, ``labelled_history_``, ...) is kept as a shallow copy of the
    estimator's attributes; what it changes in place is copied: the weights
    and buffers of every module and criterion, every optimizer's state
    (momentum, learning rates), skorch's training log, the random generator
    ``rng_``, ``rounds_`` and the labelled history's committed length. The
    history's rows themselves are never copied: rounds only append to it.

    Callbacks' own state (skorch's ``EarlyStopping`` counters, for instance)
    is not part of the snapshot.

    Parameters
    ----------
    net : skorch.NeuralNet
        The estimator, initialised or not.
    """

    def __init__(self, net: Any):
        self.attributes = dict(net.__dict__)
        self.states: dict[str, dict] = {}
        if getattr(net, "initialized_", False):
            for name in [*net._modules, *net._criteria]:
                component = getattr(net, name + "_", None)
                if isinstance(component, torch.nn.Module):
                    self.states[name] = _cloned(component.state_dict())
            for name in net._optimizers:
                optimizer = getattr(net, name + "_", None)
                if isinstance(optimizer, torch.optim.Optimizer):
                    self.states[name] = copy.deepcopy(optimizer.state_dict())
        log = net.__dict__.get("history_")
        self.training_log = None if log is None else (list(log), copy.deepcopy(log[-1]) if len(log) else None)
        rng = net.__dict__.get("rng_")
        self.rng_state = None if rng is None else copy.deepcopy(rng.bit_generator.state)
        rounds = net.__dict__.get("rounds_")
        self.rounds = None if rounds is None else list(rounds)
        history = net.__dict__.get("labelled_history_")
        self.history_mark = None if history is None else history.mark()

    def restore(self, net: Any) -> None:
        """Put ``net`` back in the state the snapshot was taken in."""
        net.__dict__.clear()
        net.__dict__.update(self.attributes)
        for name, state in self.states.items():
            getattr(net, name + "_").load_state_dict(state)
        if self.training_log is not None:
            entries, last = self.training_log
            if last is not None:
                entries[-1] = last
            net.history_[:] = entries
        if self.rng_state is not None:
            net.rng_.bit_generator.state = self.rng_state
        if self.rounds is not None:
            net.rounds_[:] = self.rounds
        if self.history_mark is not None:
            net.labelled_history_.rollback(self.history_mark)


__all__ = ["EstimatorSnapshot"]
