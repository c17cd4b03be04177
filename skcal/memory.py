"""Replay memory policies: which labelled points replay draws from, and how they are drawn.

The paper's protocol keeps every labelled point in the replay memory and
draws replay batches uniformly. Two options change that, both on the
positions of points in the :class:`~skcal.LabelledHistory` (every labelled
point stays labelled and in the history; only replay is affected):

- **class-balanced draws** give each class an equal share of a replay batch;
  a class with fewer points than its share gives all it has, and the rest is
  shared among the others (water-filling);
- **a bounded memory** of ``capacity`` points, kept as a reservoir sample of
  every point labelled so far (Vitter's algorithm R: each point is retained
  with probability ``capacity / n_seen``) or class-balanced (a new point
  evicts a random point of the class that holds the most, as GDumb and
  Avalanche's class-balanced buffer do).
"""

from __future__ import annotations

import numpy as np

SAMPLING = ("uniform", "class_balanced")
RETENTION = ("reservoir", "class_balanced")


def balanced_draw(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``min(size, len(labels))`` positions without replacement, an equal share per class.

    Parameters
    ----------
    labels : ndarray of int
        The label of each candidate position.
    size : int
        Points wanted.
    rng : numpy.random.Generator
        The source of the draw's random choices.

    Returns
    -------
    ndarray of int64
        Positions into ``labels``.
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    size = min(int(size), len(labels))
    shares = np.zeros(len(classes), dtype=np.int64)
    remaining, open_classes = size, np.arange(len(classes))
    while remaining > 0 and len(open_classes):
        share, extra = divmod(remaining, len(open_classes))
        quota = np.full(len(open_classes), share)
        quota[rng.choice(len(open_classes), extra, replace=False)] += 1  # the remainder goes to random classes
        take = np.minimum(quota, counts[open_classes] - shares[open_classes])
        shares[open_classes] += take
        remaining -= int(take.sum())
        open_classes = open_classes[shares[open_classes] < counts[open_classes]]
    chosen = [
        rng.choice(np.flatnonzero(inverse == index), share, replace=False)
        for index, share in enumerate(shares)
        if share
    ]
    return np.concatenate(chosen).astype(np.int64) if chosen else np.empty(0, dtype=np.int64)


def reservoir(
    retained: np.ndarray, n_seen: int, n_total: int, capacity: int, rng: np.random.Generator
) -> np.ndarray:
    """Extend a reservoir sample of the first ``n_seen`` positions to the first ``n_total``.

    Parameters
    ----------
    retained : ndarray of int64
        The current reservoir (positions below ``n_seen``).
    n_seen, n_total : int
        Points the reservoir has seen, and points labelled now.
    capacity : int
        The reservoir's size.
    rng : numpy.random.Generator
        The source of the reservoir's random choices.

    Returns
    -------
    ndarray of int64
        The new reservoir (a new array).
    """
    retained = retained.copy()
    for position in range(n_seen, n_total):
        if len(retained) < capacity:
            retained = np.append(retained, position)
        else:
            slot = int(rng.integers(position + 1))
            if slot < capacity:
                retained[slot] = position
    return retained


def class_balanced(
    retained: np.ndarray, labels: np.ndarray, n_seen: int, capacity: int, rng: np.random.Generator
) -> np.ndarray:
    """Add positions ``n_seen..len(labels)-1`` to a class-balanced memory of ``capacity`` points.

    Each new point is added; when the memory is over capacity, a random point
    of the class holding the most points (ties: the lowest label) is evicted,
    which may be the new point itself.

    Parameters
    ----------
    retained : ndarray of int64
        The current memory.
    labels : ndarray of int
        The label of every labelled position.
    n_seen : int
        Positions the memory has seen.
    capacity : int
        The memory's size.
    rng : numpy.random.Generator
        The source of the random choices.

    Returns
    -------
    ndarray of int64
        The new memory (a new array).
    """
    by_class: dict[int, list] = {}
    for position in retained.tolist():
        by_class.setdefault(int(labels[position]), []).append(position)
    size = len(retained)
    for position in range(n_seen, len(labels)):
        by_class.setdefault(int(labels[position]), []).append(position)
        size += 1
        if size > capacity:
            largest = max(sorted(by_class), key=lambda label: len(by_class[label]))
            members = by_class[largest]
            members.pop(int(rng.integers(len(members))))
            size -= 1
    return np.array(sorted(p for members in by_class.values() for p in members), dtype=np.int64)


__all__ = ["RETENTION", "SAMPLING", "balanced_draw", "class_balanced", "reservoir"]
