"""The processes that train a round together: one, or every process of a Hugging Face accelerator.

The estimator never asks whether it runs under an accelerator; it asks
``net.processes()`` for a :class:`Processes` and calls its methods:
:class:`SingleProcess` for ordinary training, where every method is the
plain thing (``loss.backward()``, no autocast, the module itself), and
:class:`AcceleratorProcesses` under skorch's ``AccelerateMixin``
(:mod:`skcal.accelerate`), where they are the accelerator's.

A round's processes also talk to each other through :class:`Agreement`:
each process contributes one row of numbers and gets everybody's, in
step, so that they agree on the round's inputs, on stopping, on failure and
on the round's totals.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import numpy as np
import torch

from .exceptions import RoundFailedOnAnotherProcess

#: Values in one process's row of an exchange (:meth:`Processes.exchange`).
EXCHANGE_WIDTH = 8
# the row: [failed, kind, sequence number, up to 5 values]
_CHECKPOINT, _EPOCH, _EVENT, _FINISH, _INPUTS = 1, 2, 3, 4, 5


class Processes(Protocol):
    """The processes that train a round together, as the estimator and the round see them.

    Attributes
    ----------
    rank : int
        This process's index, ``0 <= rank < world_size``.
    world_size : int
        How many processes train the round.
    shards_data_loaders : bool
        Whether training data must come through ``torch.utils.data.DataLoader``
        (which the accelerator shards over the processes).
    """

    rank: int
    world_size: int
    shards_data_loaders: bool

    def exchange(self, row: np.ndarray) -> np.ndarray:
        """Give every process every process's ``row``: a collective all processes must call.

        Parameters
        ----------
        row : ndarray of shape (EXCHANGE_WIDTH,)
            This process's values (float64).

        Returns
        -------
        ndarray of shape (world_size, EXCHANGE_WIDTH)
            Row ``r`` is process ``r``'s, the same on every process.
        """

    def local_size(self, size: int) -> int:
        """Return the share of a batch of ``size`` points each process takes per step.

        Parameters
        ----------
        size : int
            Points in a step's batch, over every process.

        Returns
        -------
        int
            This process's share.
        """

    def replay_generator(self, seed: int, shared: np.random.Generator) -> np.random.Generator:
        """Return this process's generator for a round's replay draws: ``shared`` in one process.

        Parameters
        ----------
        seed : int
            The round's seed.
        shared : numpy.random.Generator
            The round's generator, which every process draws alike.

        Returns
        -------
        numpy.random.Generator
            The generator of this process's replay draws.
        """

    def shared_seed(self, seed: int | None) -> int | None:
        """Return the campaign seed every process uses (``seed``, or process 0's fresh entropy).

        Parameters
        ----------
        seed : int or None
            This process's seed from ``random_state`` (None: fresh entropy).

        Returns
        -------
        int or None
            The seed every process uses.
        """

    def device(self) -> torch.device | None:
        """Return the device the processes decide (the accelerator's), or None to use the estimator's ``device``.

        Returns
        -------
        torch.device or None
            Where this process trains, or None.
        """

    def release_round(self, net: Any) -> None:
        """Take any wrappers off ``net``'s components before a round's strategy rebuilds them.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def prepare_round(self, net: Any) -> None:
        """Wrap ``net``'s components for the round about to train.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def prepare_components(self, net: Any) -> None:
        """Wrap ``net``'s module, criterion and optimizer (skorch's ``_initialize_accelerator``).

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate a step's loss.

        Parameters
        ----------
        loss : torch.Tensor
            The step's scalar loss.
        """

    def autocast(self) -> AbstractContextManager:
        """Return the context a step's forward pass and loss run in.

        Returns
        -------
        contextlib.AbstractContextManager
            The context (mixed precision, or a no-op).
        """

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """Return ``module`` without distributed or mixed-precision wrappers.

        Parameters
        ----------
        module : torch.nn.Module
            A module, wrapped or not.

        Returns
        -------
        torch.nn.Module
            The bare module (the same parameters).
        """

    def gather(self, output: torch.Tensor) -> torch.Tensor:
        """Return every process's ``output`` (its share of a batch), in order.

        Parameters
        ----------
        output : torch.Tensor
            This process's share.

        Returns
        -------
        torch.Tensor
            Every process's shares, concatenated in rank order.
        """

    def on_main_process(self, write: Callable[[], Any], what: str) -> Any:
        """Run ``write`` on process 0 only; every process returns its result once it has finished.

        Parameters
        ----------
        write : callable
            What process 0 does (writing a file, say).
        what : str
            Named in the error the other processes raise if ``write`` fails.

        Returns
        -------
        object
            ``write()``'s result.
        """


def process_generator(seed: int, rank: int) -> np.random.Generator:
    """Return process ``rank``'s generator for a round seeded with ``seed``.

    Processes training one round together share its seed (it comes from
    ``random_state``) and each draws its replay batches from
    ``numpy.random.SeedSequence(seed).spawn(world_size)[rank]``: independent
    streams, reproducible from ``random_state`` and the process count.

    Parameters
    ----------
    seed : int
        The round's seed.
    rank : int
        The process's index.

    Returns
    -------
    numpy.random.Generator
        The process's own stream.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(rank,)))


class SingleProcess:
    """The one process of ordinary training: every collective is the identity."""

    rank = 0
    world_size = 1
    shards_data_loaders = False

    def exchange(self, row: np.ndarray) -> np.ndarray:
        """Return ``row`` as a one-row table.

        Parameters
        ----------
        row : ndarray of shape (EXCHANGE_WIDTH,)
            This process's values.

        Returns
        -------
        ndarray of shape (1, EXCHANGE_WIDTH)
            The row, as float64.
        """
        return np.asarray(row, dtype=np.float64)[None]

    def local_size(self, size: int) -> int:
        """Return ``size``: the one process takes every point.

        Parameters
        ----------
        size : int
            Points in a step's batch.

        Returns
        -------
        int
            ``size``.
        """
        return size

    def replay_generator(self, seed: int, shared: np.random.Generator) -> np.random.Generator:
        """Return ``shared``, the round's own generator.

        Parameters
        ----------
        seed : int
            The round's seed (unused).
        shared : numpy.random.Generator
            The round's generator.

        Returns
        -------
        numpy.random.Generator
            ``shared``.
        """
        return shared

    def shared_seed(self, seed: int | None) -> int | None:
        """Return ``seed``.

        Parameters
        ----------
        seed : int or None
            The seed from ``random_state``.

        Returns
        -------
        int or None
            ``seed``.
        """
        return seed

    def device(self) -> None:
        """Return None: the estimator's ``device`` decides."""
        return None

    def release_round(self, net: Any) -> None:
        """Do nothing: there are no wrappers to release.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def prepare_round(self, net: Any) -> None:
        """Do nothing: there is nothing to prepare.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def prepare_components(self, net: Any) -> None:
        """Do nothing: there is nothing to wrap.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        """

    def backward(self, loss: torch.Tensor) -> None:
        """Call ``loss.backward()``.

        Parameters
        ----------
        loss : torch.Tensor
            The step's scalar loss.
        """
        loss.backward()

    def autocast(self) -> AbstractContextManager:
        """Return a no-op context: no autocast.

        Returns
        -------
        contextlib.AbstractContextManager
            ``contextlib.nullcontext()``.
        """
        return nullcontext()

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """Return ``module`` itself.

        Parameters
        ----------
        module : torch.nn.Module
            The module.

        Returns
        -------
        torch.nn.Module
            ``module``.
        """
        return module

    def gather(self, output: torch.Tensor) -> torch.Tensor:
        """Return ``output``: it is every process's.

        Parameters
        ----------
        output : torch.Tensor
            The outputs.

        Returns
        -------
        torch.Tensor
            ``output``.
        """
        return output

    def on_main_process(self, write: Callable[[], Any], what: str) -> Any:
        """Return ``write()``.

        Parameters
        ----------
        write : callable
            What to do.
        what : str
            Unused (named in the errors of several processes).

        Returns
        -------
        object
            ``write()``'s result.
        """
        return write()


SINGLE_PROCESS = SingleProcess()


class AcceleratorProcesses:
    """Every process a Hugging Face accelerator runs (skorch's ``AccelerateMixin``).

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

    shards_data_loaders = True

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
            This process's values.

        Returns
        -------
        ndarray of shape (world_size, EXCHANGE_WIDTH)
            Row ``r`` is process ``r``'s, the same on every process.
        """
        table = torch.zeros((self.world_size, EXCHANGE_WIDTH), dtype=torch.float64, device=self.accelerator.device)
        table[self.rank] = torch.as_tensor(np.asarray(row, dtype=np.float64), device=table.device)
        return self.accelerator.reduce(table, reduction="sum").cpu().numpy()

    def local_size(self, size: int) -> int:
        """Return each process's share of ``size`` points per step: all of them, or ``ceil(size / world_size)``.

        Parameters
        ----------
        size : int
            Points in a step's batch, over every process.

        Returns
        -------
        int
            This process's share.
        """
        return -(-size // self.world_size) if self.split_batches else size

    def replay_generator(self, seed: int, shared: np.random.Generator) -> np.random.Generator:
        """Return :func:`process_generator` of ``seed`` and this rank (``shared`` in one process).

        Parameters
        ----------
        seed : int
            The round's seed.
        shared : numpy.random.Generator
            The round's generator, which every process draws alike.

        Returns
        -------
        numpy.random.Generator
            The generator of this process's replay draws.
        """
        return process_generator(seed, self.rank) if self.world_size > 1 else shared

    def shared_seed(self, seed: int | None) -> int | None:
        """Return the campaign seed every process uses: ``seed``, or fresh entropy drawn by process 0.

        Parameters
        ----------
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
        if self.world_size == 1:
            return seed
        row = np.zeros(EXCHANGE_WIDTH)
        row[0] = seed is None
        row[1] = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
        table = self.exchange(row)
        if len(set(table[:, 0].tolist())) > 1 or (seed is not None and len(set(table[:, 1].tolist())) > 1):
            raise ValueError(
                f"The {self.world_size} processes have different random_state values "
                f"({table[:, 1].astype(np.int64).tolist()}); give every process the same one."
            )
        return int(table[0, 1])

    def device(self) -> torch.device:
        """Return the accelerator's device.

        Returns
        -------
        torch.device
            Where this process trains.
        """
        device = torch.device(self.accelerator.device)
        return torch.device("cpu") if device.type == "cpu" else device

    def release_round(self, net: Any) -> None:
        """Take the accelerator's wrappers off ``net``'s module, criterion and optimizer, before a round starts.

        The round's strategy then (re)builds and resets bare components
        (:meth:`~skcal.replay.ReplayStrategy.prepare_model`), and
        :meth:`prepare_round` wraps them again. The accelerator forgets the
        previous round's objects (``Accelerator.free_memory``), so their
        distributed wrappers and loaders are released.

        Parameters
        ----------
        net : ContinualActiveClassifier with AccelerateMixin
            The estimator.
        """
        from accelerate.optimizer import AcceleratedOptimizer

        net._unwrap_accelerator()
        for name in net._optimizers:
            optimizer = getattr(net, name + "_", None)
            if isinstance(optimizer, AcceleratedOptimizer):
                setattr(net, name + "_", optimizer.optimizer)
        net._wrapped_with_accelerator = False
        self.accelerator.free_memory()

    def prepare_round(self, net: Any) -> None:
        """Prepare ``net``'s module, criterion and optimizer for the round about to train.

        The distributed wrapper copies process 0's weights to every process.

        Parameters
        ----------
        net : ContinualActiveClassifier with AccelerateMixin
            The estimator.
        """
        if getattr(net, "_wrapped_with_accelerator", False):  # skorch's initialize() wrapped them; wrap afresh
            self.release_round(net)
        self.prepare_components(net)

    def prepare_components(self, net: Any) -> None:
        """Prepare ``net``'s modules, criteria and optimizers (skorch's ``_initialize_accelerator``).

        As skorch's ``AccelerateMixin`` does, except that a module or
        criterion without trainable parameters is only moved to the
        accelerator's device: accelerate wraps it in
        ``DistributedDataParallel`` on several CPU processes, which refuses
        modules without trainable parameters.

        Parameters
        ----------
        net : ContinualActiveClassifier with AccelerateMixin
            The estimator.
        """
        from skorch.callbacks import LRScheduler

        if net._wrapped_with_accelerator:
            return
        accelerator = self.accelerator
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
        for _, callback in net.callbacks_:
            if isinstance(callback, LRScheduler) and getattr(callback, "policy_", None) is not None:
                callback.policy_ = accelerator.prepare(callback.policy_)
        net._wrapped_with_accelerator = True

    def backward(self, loss: torch.Tensor) -> None:
        """Call ``accelerator.backward``: mixed-precision scaling and gradient accumulation; the wrapper averages.

        Parameters
        ----------
        loss : torch.Tensor
            The step's scalar loss.
        """
        self.accelerator.backward(loss)

    def autocast(self) -> AbstractContextManager:
        """Return ``accelerator.autocast()`` (mixed precision per its ``mixed_precision``).

        Returns
        -------
        contextlib.AbstractContextManager
            The accelerator's autocast context.
        """
        return self.accelerator.autocast()

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """Return ``accelerator.unwrap_model(module)``.

        Parameters
        ----------
        module : torch.nn.Module
            A module, wrapped or not.

        Returns
        -------
        torch.nn.Module
            The bare module (the same parameters).
        """
        return self.accelerator.unwrap_model(module)

    def gather(self, output: torch.Tensor) -> torch.Tensor:
        """Return ``accelerator.gather_for_metrics(output)``: every process's share, in order, padding dropped.

        Parameters
        ----------
        output : torch.Tensor
            This process's share.

        Returns
        -------
        torch.Tensor
            Every process's shares, in rank order.
        """
        return self.accelerator.gather_for_metrics(output)

    def on_main_process(self, write: Callable[[], Any], what: str) -> Any:
        """Run ``write`` on process 0 only; every process returns its result once it has finished.

        Parameters
        ----------
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
        from accelerate.utils import broadcast_object_list

        result, error = None, None
        if self.rank == 0:
            try:
                result = write()
            except Exception as caught:
                error = caught
        row = np.zeros(EXCHANGE_WIDTH)
        row[0] = error is not None
        table = self.exchange(row)  # also the barrier: nobody reads before process 0 has written
        if error is not None:
            raise error
        if table[0, 0]:
            raise RuntimeError(f"{what} failed on process 0; see its error.")
        if self.world_size > 1:
            result = broadcast_object_list([result if self.rank == 0 else None], from_process=0)[0]
        return result


class Agreement:
    """The exchanges of one round among its processes, kept in step.

    Every exchange carries its kind and sequence number, so processes that
    ran different numbers of steps are caught, and a failed process's
    report (:meth:`report_failure`) makes every other process raise
    :class:`~skcal.exceptions.RoundFailedOnAnotherProcess` at its next
    exchange. In a single process nothing is exchanged.

    Parameters
    ----------
    processes : Processes
        The round's processes.
    round_index : int
        The round's id, named in errors.

    Attributes
    ----------
    settled : bool
        The processes exchange nothing more for this round (it finished or failed).
    """

    def __init__(self, processes: Processes, round_index: int):
        self.processes = processes
        self.round_index = round_index
        self.settled = False
        self._exchanges = 0

    @property
    def several(self) -> bool:
        """Whether more than one process trains the round."""
        return self.processes.world_size > 1

    def checkpoint(self) -> None:
        """Confirm that every process got here without failing.

        Raises
        ------
        RoundFailedOnAnotherProcess
            If another process reported a failure.
        """
        if self.several:
            self._exchange(_CHECKPOINT)

    def sum_epoch(self, counts: list) -> np.ndarray:
        """Return the sum over processes of an epoch's ``[correct, n, correct_new, n_new]`` counts.

        Parameters
        ----------
        counts : list of int
            This process's counts.

        Returns
        -------
        ndarray of shape (4,)
            The counts over every process.
        """
        return self._exchange(_EPOCH, counts).sum(axis=0)[:4]

    def agree_on_inputs(self, n_new: int, n_history: int, y: torch.Tensor, n_train: int) -> None:
        """Check that every process was given the same round: new points, labels and history.

        Compared: ``n_new``, ``n_history``, the number of training points and
        two checksums of the encoded labels (exact integers; the features are
        not compared).

        Parameters
        ----------
        n_new, n_history : int
            The round's new and earlier points.
        y : torch.Tensor of shape (n_new,)
            The round's encoded labels.
        n_train : int
            How many points the strategy trains on.

        Raises
        ------
        ValueError
            On every process, if they differ.
        """
        if not self.several:
            return
        labels = y.detach().reshape(-1).cpu().to(torch.int64) + 1
        weights = torch.arange(len(labels), dtype=torch.int64) % 65521 + 1  # exact in float64 below 2**53
        local = [n_new, n_history, n_train, int(labels.sum()), int((labels * weights).sum())]
        table = self._exchange(_INPUTS, local)[:, : len(local)]
        if (table != table[0]).any():
            self.settled = True  # every process raises here: nothing more to exchange
            raise ValueError(
                f"Round {self.round_index}: the {self.processes.world_size} processes were given different data "
                f"(new points, training points and label checksums per process: "
                f"{[[int(v) for v in row[[0, 2, 3]]] for row in table]}, history sizes "
                f"{table[:, 1].astype(int).tolist()}); call fit and partial_fit with the same X and y on every process."
            )

    def agree_to_stop(self, stop: bool) -> bool:
        """Return whether any process wants to end the round now (a checkpoint too).

        Parameters
        ----------
        stop : bool
            Whether a callback of this process ended the round.

        Returns
        -------
        bool
            True if any process's did.
        """
        if not self.several:
            return stop
        return bool(self._exchange(_EVENT, [float(stop)])[:, 0].any())

    def totals(self, forwarded: int, backpropagated: int, seconds: float) -> tuple[int, int, float]:
        """Return the round's work summed over processes and its slowest process's time; the round is settled.

        Parameters
        ----------
        forwarded, backpropagated : int
            This process's samples.
        seconds : float
            This process's training time.

        Returns
        -------
        tuple
            ``(forwarded, backpropagated, seconds)`` over every process.
        """
        if self.several:
            table = self._exchange(_FINISH, [forwarded, backpropagated, seconds])
            forwarded, backpropagated = int(table[:, 0].sum()), int(table[:, 1].sum())
            seconds = float(table[:, 2].max())
        self.settled = True
        return forwarded, backpropagated, seconds

    def report_failure(self, error: BaseException) -> None:
        """Tell the other processes that this process's round failed.

        Joins the exchange the others are waiting in, unless the failure
        came from an exchange (they know already) or the round had settled.
        An error while reporting is added to ``error`` as a note.

        Parameters
        ----------
        error : BaseException
            The failure, re-raised by the caller afterwards.
        """
        if not self.several or self.settled:
            return
        self.settled = True
        row = np.zeros(EXCHANGE_WIDTH)
        row[0] = 1.0
        try:
            self.processes.exchange(row)
        except Exception as report_error:  # the peers may be gone; the original error matters more
            if hasattr(error, "add_note"):
                error.add_note(f"Telling the other processes about this failure failed too: {report_error!r}")

    def _exchange(self, kind: int, values: Any = ()) -> np.ndarray:
        """Exchange ``values`` with every process; return the table of values (one row per process)."""
        if self.settled:
            raise RuntimeError(f"Round {self.round_index} is settled: its processes exchange nothing more.")
        self._exchanges += 1
        row = np.zeros(EXCHANGE_WIDTH)
        row[1], row[2] = kind, self._exchanges
        row[3 : 3 + len(values)] = values
        table = self.processes.exchange(row)
        failed = np.flatnonzero(table[:, 0])
        if len(failed):
            self.settled = True
            raise RoundFailedOnAnotherProcess(self.round_index, failed.tolist())
        if (table[:, 1] != kind).any() or (table[:, 2] != self._exchanges).any():
            self.settled = True
            raise RuntimeError(
                f"Round {self.round_index}: the processes are out of step (exchange kinds {table[:, 1].tolist()}, "
                f"numbers {table[:, 2].tolist()}); a process ran a different number of steps or epochs."
            )
        return table[:, 3:]


__all__ = [
    "EXCHANGE_WIDTH",
    "SINGLE_PROCESS",
    "AcceleratorProcesses",
    "Agreement",
    "Processes",
    "SingleProcess",
    "process_generator",
]
