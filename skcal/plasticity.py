"""Plasticity: keeping a network that trains on round after round able to generalise like a fresh one.

A network trained from the weights of the previous round generalises worse
than one trained from scratch on the same data (Ash & Adams, "On
Warm-Starting Neural Network Training", NeurIPS 2020): continued training
fits the new points from where the old optimum left it, with large,
confident weights whose gradients are small, instead of finding the
solution a fresh initialisation would. Continual active learning trains
exactly that way, so on problems where this matters (noisy labels, classes
whose boundaries shift from round to round) no round length or replay method
closes the gap to retraining.

``plasticity=`` on :class:`~skcal.ContinualActiveClassifier` chooses a remedy,
applied at the start of every round that keeps the previous weights (every
round but the seed round and standard AL's retraining), after the strategy
has built the round's optimizer:

- ``"shrink_perturb"``: :class:`ShrinkPerturb`, Ash & Adams's shrink and
  perturb, ``θ ← λ·θ + σ·θ_fresh``;
- ``"reset_output"``: :class:`ResetOutput`, the output layer re-initialised
  (the periodic reset of Nikishin et al., "The Primacy Bias in Deep
  Reinforcement Learning", ICML 2022, at every round).

Fresh weights are the module's own initialisation (:meth:`fresh_module` of
the estimator), drawn under the round's seeded generator, so the result is
reproducible from ``random_state`` and the same on every process of a
data-parallel round. The change is part of the atomic round: a failed round
puts the weights back. Hyperparameters are ``plasticity__<name>``, visible to
``GridSearchCV``.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar, Protocol

import torch
from sklearn.base import BaseEstimator

from .utils.embedding import last_linear_layer
from .utils.params import Interval, check_parameters, make_component


class Renewable(Protocol):
    """What a plasticity remedy may use of the estimator."""

    def unwrapped_module(self) -> torch.nn.Module:
        """Return the network without distributed or mixed-precision wrappers.

        Returns
        -------
        torch.nn.Module
            The network being trained; change its parameters in place.
        """

    def fresh_module(self) -> tuple[torch.nn.Module, list[str]]:
        """Return a freshly initialised copy of the network and the parameters it could not re-draw.

        The copy is drawn from the module's own initialisation under the
        round's seeded generator, so it is reproducible and the same on every
        process.

        Returns
        -------
        module : torch.nn.Module
            The fresh copy, on the network's device.
        not_redrawn : list of str
            Names of parameters the initialisation does not cover (submodules
            without ``reset_parameters``): their values in the copy are the
            network's own.
        """


class Plasticity(BaseEstimator):
    """Base of the remedies: a change to the weights at the start of a round that keeps them.

    Subclasses set :attr:`name`, declare ``_parameter_constraints`` and
    implement :meth:`renew`.
    """

    #: The alias ``plasticity=`` accepts.
    name: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict] = {}

    def validate(self) -> None:
        """Check the hyperparameters (``plasticity__<name>`` in messages).

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
        """
        check_parameters(self, prefix="plasticity__", named=True)

    def renew(self, net: Renewable) -> None:
        """Change the weights of ``net``'s network in place, before the round trains.

        Parameters
        ----------
        net : Renewable
            The estimator (a :class:`~skcal.ContinualActiveClassifier`);
            torch's random state is the round's.
        """
        raise NotImplementedError


class ShrinkPerturb(Plasticity):
    r"""Shrink and perturb (Ash & Adams 2020): ``θ ← shrink·θ + noise·θ_fresh`` for every parameter.

    Shrinking scales the weights down (in a ReLU network, the logits by
    ``shrink`` per layer), so the new round's gradients are large again and
    training can move away from the old optimum; the perturbation, a fresh
    initialisation of the same network scaled by ``noise``, breaks the
    symmetry shrinking keeps. Parameters the module's initialisation does
    not cover (submodules of an instance without ``reset_parameters``) are
    shrunk but not perturbed. Buffers (batch-norm statistics) are kept.

    Parameters
    ----------
    shrink : float, default=0.6
        ``λ`` in (0, 1]; 1 keeps the weights.
    noise : float, default=0.01
        ``σ`` in [0, 1], the weight of the fresh initialisation.
    """

    name = "shrink_perturb"
    _parameter_constraints: ClassVar[dict] = {
        "shrink": [Interval(Real, 0, 1, closed="right")],
        "noise": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, shrink: float = 0.6, noise: float = 0.01):
        self.shrink = shrink
        self.noise = noise

    def renew(self, net: Renewable) -> None:
        """Shrink every parameter and add ``noise`` times a fresh initialisation of it.

        Parameters
        ----------
        net : Renewable
            The estimator (a :class:`~skcal.ContinualActiveClassifier`).
        """
        module = net.unwrapped_module()
        fresh, not_redrawn = net.fresh_module()
        fresh_parameters = dict(fresh.named_parameters())
        skipped = set(not_redrawn)
        with torch.no_grad():
            for name, parameter in module.named_parameters():
                parameter.mul_(float(self.shrink))
                if self.noise and name not in skipped:
                    fresh_value = fresh_parameters[name].to(parameter.device, parameter.dtype)
                    parameter.add_(fresh_value, alpha=float(self.noise))


class ResetOutput(Plasticity):
    """Re-initialise the network's last ``torch.nn.Linear`` layer at the start of every round.

    The layer that maps the learned representation to classes is drawn
    afresh from the module's own initialisation, so the round relearns the
    decision boundaries on the kept features.
    """

    name = "reset_output"

    def renew(self, net: Renewable) -> None:
        """Copy a fresh initialisation of the output layer into the network.

        Parameters
        ----------
        net : Renewable
            The estimator (a :class:`~skcal.ContinualActiveClassifier`).

        Raises
        ------
        ValueError
            If the network has no ``torch.nn.Linear`` layer.
        """
        layer = last_linear_layer(net.unwrapped_module())
        if layer is None:
            raise ValueError("plasticity='reset_output' needs a module whose output layer is a torch.nn.Linear.")
        fresh = last_linear_layer(net.fresh_module()[0])
        with torch.no_grad():
            for parameter, value in zip(layer.parameters(), fresh.parameters(), strict=True):
                parameter.copy_(value)


#: Remedy classes by the alias ``plasticity=`` accepts.
PLASTICITY: dict[str, type[Plasticity]] = {cls.name: cls for cls in (ShrinkPerturb, ResetOutput)}


def make_plasticity(plasticity: Any, params: dict | None = None) -> Plasticity | None:
    """Build the remedy ``plasticity=`` names, with ``plasticity__*`` hyperparameters set and checked.

    Parameters
    ----------
    plasticity : None, str, type or Plasticity
        None (no remedy), an alias from :data:`PLASTICITY`, a subclass of
        :class:`Plasticity`, or an instance (cloned, not modified).
    params : dict, optional
        Hyperparameters, e.g. ``{"shrink": 0.8}`` from ``plasticity__shrink``.
        A name the remedy lacks but another built-in remedy accepts is
        ignored (one grid can mix remedies); any other unknown name is an error.

    Returns
    -------
    Plasticity or None
        A new remedy, its hyperparameters set and checked; None for no remedy.

    Raises
    ------
    ValueError
        For an unknown alias or hyperparameter, or a value out of range.
    TypeError
        For anything that is not a remedy.
    """
    return make_component(plasticity, PLASTICITY, Plasticity, params, "plasticity", "plasticity", optional=True)


__all__ = ["PLASTICITY", "Plasticity", "Renewable", "ResetOutput", "ShrinkPerturb", "make_plasticity"]
