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

The estimator does all this itself when it finds an ``accelerator``
attribute; it imports this module only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from skorch.hf import AccelerateMixin

from .estimator import ContinualActiveClassifier
from .round import EXCHANGE_WIDTH, Processes


class AcceleratorProcesses:
    """Every process an accelerator runs, as a round sees them (:class:`skcal.round.Processes`).

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        The estimator's accelerator.

    Attributes
    ----------
    rank : int
        ``accelerator.process_index``.
    world_size : int
        ``accelerator.num_processes``.
    split_batches : bool
        Whether the accelerator splits each batch over the processes (then
        each process replays its share of the replay size too).
    """

    def __init__(self, accelerator: Any):
        self.accelerator = accelerator
        self.rank = int(accelerator.process_index)
        self.world_size = int(accelerator.num_processes)
        self.split_batches = bool(getattr(accelerator, "split_batches", False))
        if self.world_size > 1 and not getattr(accelerator, "even_batches", True):
            raise ValueError(
                "skcal's data-parallel rounds need Accelerator(even_batches=True) (the default): with uneven "
                "batches the processes run different numbers of steps."
            )

    def exchange(self, row: np.ndarray) -> np.ndarray:
        """Give every process every process's ``row`` (an all-reduce of a ``(world_size, width)`` table).

        Parameters
        ----------
        row : ndarray of shape (EXCHANGE_WIDTH,)

        Returns
        -------
        ndarray of shape (world_size, EXCHANGE_WIDTH)
        """
        table = torch.zeros((self.world_size, EXCHANGE_WIDTH), dtype=torch.float64, device=self.accelerator.device)
        table[self.rank] = torch.as_tensor(np.asarray(row, dtype=np.float64), device=table.device)
        return self.accelerator.reduce(table, reduction="sum").cpu().numpy()

    def local_size(self, size: int) -> int:
        """Return each process's share of ``size`` points per step: all of them, or ``ceil(size / world_size)``.

        Parameters
        ----------
        size : int

        Returns
        -------
        int
        """
        return -(-size // self.world_size) if self.split_batches else size


def shared_seed(processes: Processes, seed: int | None) -> int | None:
    """Return the campaign seed every process uses: ``seed``, or fresh entropy drawn by process 0.

    Parameters
    ----------
    processes : Processes
        The processes of the campaign.
    seed : int or None
        This process's seed from ``random_state`` (None: fresh entropy).

    Returns
    -------
    int or None
        ``seed`` in a single process; otherwise the seed of process 0.

    Raises
    ------
    ValueError
        If the processes were given different ``random_state`` values.
    """
    if processes.world_size == 1:
        return seed
    row = np.zeros(EXCHANGE_WIDTH)
    row[0] = seed is None
    row[1] = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
    table = processes.exchange(row)
    if len(set(table[:, 0].tolist())) > 1 or (seed is not None and len(set(table[:, 1].tolist())) > 1):
        raise ValueError(
            f"The {processes.world_size} processes have different random_state values "
            f"({table[:, 1].astype(np.int64).tolist()}); give every process the same one."
        )
    return int(table[0, 1])


def release_round(net: Any) -> None:
    """Take the accelerator's wrappers off ``net``'s module, criterion and optimizer, before a round starts.

    The round's strategy then (re)builds and resets bare components
    (:meth:`~skcal.replay.ReplayStrategy.prepare_model`), and
    :func:`prepare_round` wraps them again. The accelerator forgets the
    previous round's objects (``Accelerator.free_memory``), so their
    distributed wrappers and loaders are released.

    Parameters
    ----------
    net : ContinualActiveClassifier with AccelerateMixin
    """
    from accelerate.optimizer import AcceleratedOptimizer

    net._unwrap_accelerator()
    for name in net._optimizers:
        optimizer = getattr(net, name + "_", None)
        if isinstance(optimizer, AcceleratedOptimizer):
            setattr(net, name + "_", optimizer.optimizer)
    net._wrapped_with_accelerator = False
    net.accelerator.free_memory()


def prepare_components(net: Any) -> None:
    """Prepare ``net``'s modules, criteria and optimizers with its accelerator (skorch's ``_initialize_accelerator``).

    As skorch's ``AccelerateMixin`` does, except that a module or criterion
    without trainable parameters is only moved to the accelerator's device:
    accelerate wraps it in ``DistributedDataParallel`` on several CPU
    processes, which refuses modules without trainable parameters.

    Parameters
    ----------
    net : ContinualActiveClassifier with AccelerateMixin
    """
    if net._wrapped_with_accelerator:
        return
    accelerator = net.accelerator
    for kind, names in (("criterion", net._criteria), ("module", net._modules)):
        with net._current_init_context(kind):
            for name in names:
                component = getattr(net, name + "_")
                if not isinstance(component, torch.nn.Module):
                    continue
                if any(parameter.requires_grad for parameter in component.parameters()):
                    component = accelerator.prepare(component)
                elif accelerator.device_placement:
                    component = component.to(accelerator.device)
                setattr(net, name + "_", component)
    with net._current_init_context("optimizer"):
        for name in net._optimizers:
            optimizer = getattr(net, name + "_")
            if isinstance(optimizer, torch.optim.Optimizer):
                setattr(net, name + "_", accelerator.prepare(optimizer))
    from skorch.callbacks import LRScheduler

    for _, callback in net.callbacks_:
        if isinstance(callback, LRScheduler) and getattr(callback, "policy_", None) is not None:
            callback.policy_ = accelerator.prepare(callback.policy_)
    net._wrapped_with_accelerator = True


def prepare_round(net: Any) -> None:
    """Prepare ``net``'s module, criterion and optimizer with its accelerator for the round about to train.

    The distributed wrapper copies process 0's weights to every process.

    Parameters
    ----------
    net : ContinualActiveClassifier with AccelerateMixin
    """
    if getattr(net, "_wrapped_with_accelerator", False):  # skorch's initialize() wrapped them; wrap afresh
        release_round(net)
    net._initialize_accelerator()


def on_main_process(processes: Processes, write: Callable[[], Any], what: str) -> Any:
    """Run ``write`` on process 0 only; every process returns its result once it has finished.

    Parameters
    ----------
    processes : Processes
        Every process must call this.
    write : callable
        What process 0 does (writing a file, say).
    what : str
        Named in the error the other processes raise if ``write`` fails.

    Returns
    -------
    object
        ``write()``'s result (the same on every process, when it is a path).

    Raises
    ------
    Exception
        ``write``'s own error on process 0; RuntimeError on the others.
    """
    result, error = None, None
    if processes.rank == 0:
        try:
            result = write()
        except Exception as caught:
            error = caught
    row = np.zeros(EXCHANGE_WIDTH)
    row[0] = error is not None
    table = processes.exchange(row)  # also the barrier: nobody reads before process 0 has written
    if error is not None:
        raise error
    if table[0, 0]:
        raise RuntimeError(f"{what} failed on process 0; see its error.")
    if processes.world_size > 1:
        result = _broadcast_object(processes, result)
    return result


def _broadcast_object(processes: Any, value: Any) -> Any:
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value if processes.rank == 0 else None], from_process=0)[0]


class AcceleratedContinualActiveClassifier(AccelerateMixin, ContinualActiveClassifier):
    """:class:`~skcal.ContinualActiveClassifier` with skorch's ``AccelerateMixin``: data-parallel CAL rounds.

    The same as ``class Net(AccelerateMixin, ContinualActiveClassifier)``
    (see :mod:`skcal.accelerate` for what every round does on several
    processes), except that ``verbose=0`` also silences the epoch table,
    which skorch's mixin prints on the main process whatever ``verbose`` says.
    skorch marks ``AccelerateMixin`` experimental.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        As for :class:`~skcal.ContinualActiveClassifier`.
    *args
        Passed on.
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


__all__ = [
    "AcceleratedContinualActiveClassifier",
    "AcceleratorProcesses",
    "on_main_process",
    "prepare_components",
    "prepare_round",
    "release_round",
    "shared_seed",
]
