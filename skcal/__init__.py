"""skcal: Continual Active Learning for scikit-learn and skorch.

Train an active learner on the newly labelled points with replay from the
labelled history instead of retraining from scratch every round.
"""

from ._version import __version__
from .estimator import ContinualActiveClassifier
from .history import LabelledHistory, ReplayBatch
from .replay import REPLAY_STRATEGIES, ReplayStrategy

__all__ = [
    "REPLAY_STRATEGIES",
    "ContinualActiveClassifier",
    "LabelledHistory",
    "ReplayBatch",
    "ReplayStrategy",
    "__version__",
]
