"""Data-parallel CAL rounds with Hugging Face Accelerate, through skorch's ``AccelerateMixin``.

skorch's way of training on several GPUs or processes is its
``skorch.hf.AccelerateMixin`` (marked experimental by skorch), and
:class:`~skcal.ContinualActiveClassifier` composes with it exactly as skorch
documents for ``NeuralNet``::

    from accelerate import Accelerator
    from skorch.hf import AccelerateMixin
    from skcal import ContinualActiveClassifier

    class Net(AccelerateMixin, ContinualActiveClassifier):
        pass

    net = Net(MyModule, accelerator=Accelerator(), replay="er", random_state=0)

or with the class provided here, :class:`AcceleratedContinualActiveClassifier`.
Launch the script on every process (``torchrun --nproc_per_node N script.py``
or ``accelerate launch``) and call ``fit``/``partial_fit`` with the same data
on each; then every round, replay rounds included, is data-parallel:

- every process takes its share of each epoch's batches (the accelerator
  prepares the iterators) and draws its own replay batch from the same
  history with its own generator (:func:`skcal.round.process_generator`, from
  ``random_state``, the round and the process's rank);
- the joint forward pass over new and replayed points runs under the
  accelerator's autocast (mixed precision) and the replay loss goes through
  ``accelerator.backward``; the distributed wrapper averages the gradients;
- the device is the accelerator's (``device=None``); the module, criterion
  and the optimizer each round (re)builds are prepared by the accelerator;
- the logits stored with the new points are computed in shards and
  gathered, and the epoch accuracies that stopping rules read and the
  ``rounds_`` counts are summed over the processes, so every process holds
  the same history, weights and records;
- a round that fails on one process fails on all and is rolled back on all
  (:meth:`skcal.round.Round.checkpoint`).

The estimator does all this through :class:`skcal.processes.AcceleratorProcesses`,
which ``net.processes()`` returns when it finds an ``accelerator`` attribute.
"""

from __future__ import annotations

from skorch.hf import AccelerateMixin

from .estimator import ContinualActiveClassifier
from .processes import AcceleratorProcesses


class AcceleratedContinualActiveClassifier(AccelerateMixin, ContinualActiveClassifier):
    """:class:`~skcal.ContinualActiveClassifier` with skorch's ``AccelerateMixin``: data-parallel CAL rounds.

    The same as ``class Net(AccelerateMixin, ContinualActiveClassifier)``
    (see :mod:`skcal.accelerate` for what every round does on several
    processes), except that ``verbose=0`` also silences the epoch table,
    which skorch's mixin prints on the main process whatever ``verbose`` says.
    skorch marks ``AccelerateMixin`` experimental.

    Parameters
    ----------
    *args
        ``module`` (the network, a ``torch.nn.Module`` class or instance, as
        for :class:`~skcal.ContinualActiveClassifier`), and any other
        positional parameter, passed on.
    accelerator : accelerate.Accelerator
        Decides the processes, device and mixed precision. Create it in the
        launched script, before the estimator.
    device : None, default=None
        Leave it to the accelerator.
    unwrap_after_train : bool, default=True
        Take the accelerator's wrappers off after every round, so the module
        can be pickled and predicts unwrapped; each round wraps it afresh.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        ``"auto"``: the accelerator's ``print`` (main process only) when
        ``verbose``, nothing otherwise.
    **kwargs
        Any :class:`~skcal.ContinualActiveClassifier` parameter.

    Examples
    --------
    Run with ``torchrun --nproc_per_node 2 script.py``:

    >>> from accelerate import Accelerator  # doctest: +SKIP
    >>> net = AcceleratedContinualActiveClassifier(  # doctest: +SKIP
    ...     skcal.models.MLP, accelerator=Accelerator(), replay="er", random_state=0)
    >>> net.fit(X_seed, y_seed).partial_fit(X_new, y_new)  # doctest: +SKIP
    """

    def _initialize_callbacks(self) -> AcceleratedContinualActiveClassifier:
        if self.callbacks__print_log__sink == "auto" and not self.verbose:
            self.callbacks__print_log__sink = print  # QuietPrintLog skips the table when verbose=0
        return super()._initialize_callbacks()


__all__ = ["AcceleratedContinualActiveClassifier", "AcceleratorProcesses"]
