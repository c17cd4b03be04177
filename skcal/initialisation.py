"""Building the network: sizes from the data, fresh weights for a campaign, fresh draws for plasticity.

:class:`NetworkInitialisation` is the part of
:class:`~skcal.ContinualActiveClassifier` that builds ``module_`` (skorch's
``initialize_module`` hook): a module class gets the sizes it takes from the
labelled data, an instance gets fresh weights for a new campaign, standard
AL's rounds start from fresh weights, and plasticity remedies draw a fresh
copy of the network (:meth:`~NetworkInitialisation.fresh_module`).
"""

from __future__ import annotations

import copy
import warnings

import torch

from .utils.network import reset_parameters, sizes_from_data


class NetworkInitialisation:
    """How :class:`~skcal.ContinualActiveClassifier` builds and renews its network (a mixin)."""

    def initialize_module(self) -> NetworkInitialisation:
        """Initialise the module, filling in ``n_features`` and ``n_classes`` from the data.

        When the module is a class (or factory) whose signature takes
        ``n_features``, ``in_channels`` or ``n_classes`` and they were not set
        as ``module__*`` parameters, the seed round's feature width, image
        channels and label count are passed, so
        ``ContinualActiveClassifier(skcal.models.MLP)`` needs no sizes. A
        module instance gets fresh weights unless ``warm_start=True``.

        Returns
        -------
        self
            The estimator itself, ``module_`` set.
        """
        module = self.initialized_instance(self.module, self._module_kwargs())
        if module is self.module and not self.warm_start:
            self._reset_instance(module)
        self.module_ = module
        return self

    def _module_kwargs(self) -> dict:
        """Return the ``module__*`` parameters, with the sizes a module class takes filled in from the data."""
        kwargs = self.get_params_for("module")
        history = getattr(self, "labelled_history_", None)
        if callable(self.module) and not isinstance(self.module, torch.nn.Module) and history is not None:
            n_classes = len(self.fitted_classes_) if hasattr(self, "fitted_classes_") else None
            kwargs = {**sizes_from_data(self.module, history.feature_shape, n_classes), **kwargs}
        return kwargs

    def fresh_module(self) -> tuple[torch.nn.Module, list[str]]:
        """Return a freshly initialised copy of the network, and the parameters that copy could not re-draw.

        A module class is built again, as :meth:`initialize_module` builds it;
        an instance (or a class whose new build differs in shape from the
        current network, as after ``grow_output``) is deep-copied and every
        submodule's ``reset_parameters()`` called. Weights are drawn from
        torch's current random state; the network itself is not touched.
        Plasticity remedies (:mod:`skcal.plasticity`) draw from it.

        Returns
        -------
        module : torch.nn.Module
            On the CPU or the network's device.
        not_redrawn : list of str
            Parameters and buffers of submodules without ``reset_parameters``
            (they hold copies of the current values).
        """
        current = self.unwrapped_module()
        if callable(self.module) and not isinstance(self.module, torch.nn.Module):
            fresh = self.initialized_instance(self.module, self._module_kwargs())
            shapes = {name: value.shape for name, value in current.state_dict().items()}
            if {name: value.shape for name, value in fresh.state_dict().items()} == shapes:
                return fresh, []
        fresh = copy.deepcopy(current)
        return fresh, reset_parameters(fresh)

    @staticmethod
    def _reset_instance(module: torch.nn.Module) -> None:
        missed = reset_parameters(module)
        if missed:
            warnings.warn(
                f"The module instance's parameters or buffers {missed[:5]} belong to submodules without "
                "reset_parameters(), so a new campaign cannot re-initialise them and they keep their "
                "current (possibly trained) values. Pass the module's class instead of an instance.",
                UserWarning,
                stacklevel=4,
            )

    def reinitialize_module(self) -> None:
        """Draw fresh random weights (a new module, or reset parameters of an instance); new criterion and optimizer."""
        previous = self.module_
        self.initialize_module()
        if self.module_ is previous:  # an instance kept with warm_start=True: standard AL still starts afresh
            self._reset_instance(self.module_)
        self._widen_output_to_classes()
        self.initialize_criterion()
        self.initialize_optimizer()


__all__ = ["NetworkInitialisation"]
