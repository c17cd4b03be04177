"""Query strategies: which unlabelled points to label next, at pool scale.

Every strategy has modAL's calling convention,
``strategy(classifier, X_pool, n_instances=1, **kwargs) -> indices`` (a numpy
array of pool row indices, best first), so it drops into
``modAL.models.ActiveLearner(query_strategy=...)``, into
:class:`~skcal.modal.ContinualActiveLearner` and into
:class:`~skcal.simulation.ActiveLearningSimulator`. ``classifier`` is a
:class:`~skcal.ContinualActiveClassifier` or a modAL learner wrapping one; the
uncertainty strategies also accept any scikit-learn classifier with
``predict_proba``.

The pool is scored once, in batches of the estimator's batch size, in eval
mode without gradients; no strategy builds an ``n x n`` matrix of the pool.
Ties are broken towards the lower pool index.

The Bayesian strategies (:func:`bald_sampling`, :func:`batchbald_sampling`)
score the pool with MC dropout (:func:`mc_dropout_proba`): ``T`` stochastic
forward passes per batch with the dropout layers in training mode and every
other module in eval mode, seeded from ``random_state`` inside
:func:`torch.random.fork_rng` so that torch's global RNG is left as it was.

Every strategy checks its request and its data once, on entry: a pool (and
GLISTER's ``X_val``, core-set's ``X_labelled``) holding NaN or infinity is
refused as :meth:`~skcal.ContinualActiveClassifier.fit` refuses it, with a
``ValueError`` that names the offending rows, and every strategy returns
exactly ``n_instances`` distinct pool indices or raises.

One module per family, each importing the shared checks of ``_pool``:

* :mod:`skcal.query.uncertainty`: entropy, margin, least confidence, random;
* :mod:`skcal.query.diversity`: FASS, core-set, BADGE, GLISTER;
* :mod:`skcal.query.bayesian`: MC dropout, BALD, BatchBALD.
"""

from ._pool import pool_outputs, takes_random_state
from .bayesian import bald_sampling, batchbald_sampling, batchbald_selection, mc_dropout_proba, mutual_information
from .diversity import badge_sampling, coreset_sampling, fass_sampling, glister_sampling
from .uncertainty import entropy, entropy_sampling, least_confidence_sampling, margin_sampling, random_sampling

_takes_random_state = takes_random_state  # the name skcal.simulation imports; neither is in __all__

__all__ = [
    "badge_sampling",
    "bald_sampling",
    "batchbald_sampling",
    "batchbald_selection",
    "coreset_sampling",
    "entropy",
    "entropy_sampling",
    "fass_sampling",
    "glister_sampling",
    "least_confidence_sampling",
    "margin_sampling",
    "mc_dropout_proba",
    "mutual_information",
    "pool_outputs",
    "random_sampling",
]
